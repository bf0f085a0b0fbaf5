// Synapse on its own generated default config (`--generate-config` in the chroot), pointed at PostgreSQL: the
// "untuned" side of the homeserver comparison. Only what the workload needs is changed: the listener's port and
// address, the database, and the appservice registration (the workload's identity). Everything else stays default.
import { randomBytes } from "node:crypto";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import {
  type PostgresServer,
  type RunningSynapse,
  runInChroot,
  type SynapseChroot,
  startSynapse,
} from "@nova-matrix/dev/harness";
import { parse, stringify } from "yaml";

export interface DefaultSynapseInput {
  chroot: SynapseChroot;
  serverName: string;
  postgres: PostgresServer;
  database: { name: string; user: string; password: string };
  /** The appservice registration (YAML), as the shipped config has it. */
  registrationYaml: string;
}

export async function startDefaultSynapse(
  input: DefaultSynapseInput,
): Promise<{ synapse: RunningSynapse; generated: Record<string, unknown>; dispose(): Promise<void> }> {
  const genDir = `/var/lib/nova-harness/bench-default-${randomBytes(4).toString("hex")}`;
  const generate = await runInChroot(input.chroot, [
    "sh",
    "-c",
    `mkdir -p ${genDir} && python3 -m synapse.app.homeserver --server-name ${input.serverName} ` +
      `--config-path ${genDir}/homeserver.yaml --data-directory ${genDir} --generate-config --report-stats=no`,
  ]);
  if (generate.code !== 0) throw new Error(`--generate-config failed:\n${generate.stderr}`);
  const hostGenDir = join(input.chroot.root, genDir);
  const generated = parse(await readFile(join(hostGenDir, "homeserver.yaml"), "utf8")) as Record<
    string,
    unknown
  >;
  const synapse = await startSynapse({
    chroot: input.chroot,
    files: (paths) => ({
      "homeserver.yaml": stringify(
        {
          ...generated,
          // The generated listener, moved to the harness's port on loopback only.
          listeners: (generated.listeners as Record<string, unknown>[]).map((listener) => ({
            ...listener,
            port: paths.port,
            bind_addresses: ["127.0.0.1"],
          })),
          database: {
            name: "psycopg2",
            args: {
              user: input.database.user,
              password: input.database.password,
              dbname: input.database.name,
              host: input.postgres.host,
              port: input.postgres.port,
            },
          },
          app_service_config_files: [`${paths.dataDir}/appservice.yaml`],
        },
        { lineWidth: 0 },
      ),
      "appservice.yaml": input.registrationYaml,
    }),
  });
  return {
    synapse,
    generated,
    async dispose() {
      await synapse.dispose();
      await rm(hostGenDir, { recursive: true, force: true });
    },
  };
}
