// Starts the real Synapse on a stack's rendered files (ConfigMap + Secret), with the pod's paths, ports and database
// re-pointed at the harness, then proves the service user's identity works with the generated as_token.

import type { SynapseChroot } from "@nova-matrix/dev/harness";
import {
  checkSynapseConfig,
  type PostgresServer,
  type RunningSynapse,
  startSynapse,
} from "@nova-matrix/dev/harness";
import { parse, stringify } from "yaml";
import type { RecordedResource } from "../render/mocks.ts";
import { CONFIG_MAP_NAME, MOUNTS, SECRET_NAME } from "../synapse/deployment-spec.ts";
import { FILE_NAMES } from "../synapse/homeserver.ts";

/** The data of the ConfigMap or Secret called `name` in a run. */
export function objectData(
  resources: readonly RecordedResource[],
  kind: "ConfigMap" | "Secret",
  name: string,
) {
  const found = resources.find(
    (resource) =>
      resource.inputs.kind === kind &&
      (resource.inputs.metadata as { name?: string } | undefined)?.name === name,
  );
  if (!found) throw new Error(`no ${kind} ${name} in the run`);
  const data = (kind === "ConfigMap" ? found.inputs.data : found.inputs.stringData) as Record<string, string>;
  return data;
}

/** Replaces the pod's mount points in every string with the harness data dir. */
function repointPaths(value: unknown, dataDir: string): unknown {
  if (typeof value === "string")
    return value.replace(new RegExp(`^(${Object.values(MOUNTS).join("|")})/`), `${dataDir}/`);
  if (Array.isArray(value)) return value.map((item) => repointPaths(item, dataDir));
  if (value !== null && typeof value === "object")
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, repointPaths(item, dataDir)]));
  return value;
}

export interface RenderedSynapse {
  synapse: RunningSynapse;
  configCheck: { ok: boolean; output: string };
  /** The database settings Synapse was given by the stack (before re-pointing). */
  stackDatabaseArgs: Record<string, unknown>;
}

/** Creates the stack's role and database on the harness Postgres and starts Synapse on the stack's files. */
export async function startRenderedSynapse(
  chroot: SynapseChroot,
  postgres: PostgresServer,
  resources: readonly RecordedResource[],
): Promise<RenderedSynapse> {
  const publicFiles = objectData(resources, "ConfigMap", CONFIG_MAP_NAME);
  const secretFiles = objectData(resources, "Secret", SECRET_NAME);
  const databaseFile = parse(secretFiles[FILE_NAMES.database] ?? "") as {
    database: { args: Record<string, unknown> };
  };
  const stackDatabaseArgs = { ...databaseFile.database.args };
  const user = String(stackDatabaseArgs.user);
  const name = String(stackDatabaseArgs.dbname);
  await postgres.createRole(user, String(stackDatabaseArgs.password));
  await postgres.createDatabase(name, user);

  const configFiles = [FILE_NAMES.homeserver, FILE_NAMES.database];
  const synapse = await startSynapse({
    chroot,
    configFiles,
    files: (paths) => {
      const homeserver = repointPaths(parse(publicFiles[FILE_NAMES.homeserver] ?? ""), paths.dataDir) as {
        listeners: { type: string; port: number; bind_addresses: string[] }[];
      };
      for (const listener of homeserver.listeners) {
        listener.port = listener.type === "metrics" ? paths.metricsPort : paths.port;
        listener.bind_addresses = ["127.0.0.1"];
      }
      // The harness's Postgres has no TLS: drop the prod-only sslmode/sslrootcert, keep everything else.
      const { sslmode: _sslmode, sslrootcert: _sslrootcert, ...args } = stackDatabaseArgs;
      const database = {
        database: { ...databaseFile.database, args: { ...args, host: postgres.host, port: postgres.port } },
      };
      return {
        ...publicFiles,
        ...secretFiles,
        [FILE_NAMES.homeserver]: stringify({ ...homeserver, pid_file: `${paths.dataDir}/homeserver.pid` }),
        [FILE_NAMES.database]: stringify(database),
      };
    },
  });
  const configCheck = await checkSynapseConfig(
    chroot,
    configFiles.map((file) => `${synapse.paths.dataDir}/${file}`),
  );
  return { synapse, configCheck, stackDatabaseArgs };
}

/** Registers the service user with the as_token (idempotent) and returns whoami's user_id for it. */
export async function whoamiAsServiceUser(
  baseUrl: string,
  asToken: string,
  serviceUser: string,
  localpart: string,
) {
  const headers = { authorization: `Bearer ${asToken}`, "content-type": "application/json" };
  const register = await fetch(`${baseUrl}/_matrix/client/v3/register`, {
    method: "POST",
    headers,
    body: JSON.stringify({ type: "m.login.application_service", username: localpart }),
  });
  if (!register.ok && register.status !== 400) throw new Error(`register answered HTTP ${register.status}`);
  const whoami = await fetch(
    `${baseUrl}/_matrix/client/v3/account/whoami?user_id=${encodeURIComponent(serviceUser)}`,
    { headers },
  );
  return { status: whoami.status, body: (await whoami.json()) as { user_id?: string } };
}
