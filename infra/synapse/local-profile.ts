// The deployed Synapse config, pointed at the dev harness (loopback ports, the harness's data dir and Postgres).
// Used by the bridge's tests and `npm run local`. Pure apart from node:crypto for fresh secrets.
import { randomBytes } from "node:crypto";
import { APPSERVICE_ID } from "@nova-matrix/contracts";
import {
  appserviceRegistration,
  databaseConfig,
  FILE_NAMES,
  homeserverConfig,
  logConfig,
  type SynapseFilePaths,
  signingKeyFile,
  toYaml,
} from "./homeserver.ts";

export interface SynapseSecrets {
  registrationSharedSecret: string;
  macaroonSecretKey: string;
  formSecret: string;
  asToken: string;
  hsToken: string;
  /** The full file line `ed25519 a_xxx <unpadded base64>`. */
  signingKey: string;
}

/** Fresh random secrets, in the same formats the Pulumi program generates. */
export function generateLocalSecrets(): SynapseSecrets {
  const token = () => randomBytes(32).toString("base64url");
  return {
    registrationSharedSecret: token(),
    macaroonSecretKey: token(),
    formSecret: token(),
    asToken: token(),
    hsToken: token(),
    signingKey: signingKeyFile(`a_${randomBytes(3).toString("hex")}`, randomBytes(32).toString("base64")),
  };
}

export interface LocalSynapseInput {
  /** The harness's `SynapsePaths`. */
  paths: { dataDir: string; port: number; metricsPort: number };
  serverName: string;
  database: { host: string; port: number; name: string; user: string; password: string };
  secrets: SynapseSecrets;
  /** Shallow-merged over homeserver.yaml (for example, tests that turn rate limits on). */
  homeserverOverrides?: Record<string, unknown>;
  /** Shallow-merged over the appservice registration. */
  registrationOverrides?: Record<string, unknown>;
}

/** The config files to pass to Synapse (`--config-path`, in order), relative to the data dir. */
export const LOCAL_CONFIG_FILES: readonly string[] = [FILE_NAMES.homeserver, FILE_NAMES.database];

/** Files for the harness's `startSynapse({ files, configFiles })`, by path relative to the data dir. */
export function localSynapseFiles(input: LocalSynapseInput): {
  files: Record<string, string>;
  configFiles: string[];
} {
  const { dataDir } = input.paths;
  const at = (name: string) => `${dataDir}/${name}`;
  const files: SynapseFilePaths = {
    signingKey: at(FILE_NAMES.signingKey),
    registrationSharedSecret: at(FILE_NAMES.registrationSharedSecret),
    macaroonSecretKey: at(FILE_NAMES.macaroonSecretKey),
    formSecret: at(FILE_NAMES.formSecret),
    appserviceRegistration: at(FILE_NAMES.appserviceRegistration),
    logConfig: at(FILE_NAMES.logConfig),
  };
  const homeserver = {
    ...homeserverConfig({
      serverName: input.serverName,
      bindAddresses: ["127.0.0.1"],
      clientPort: input.paths.port,
      metricsPort: input.paths.metricsPort,
      xForwarded: false,
      mediaStorePath: at("media"),
      maxUploadSize: "50M",
      presence: false,
      files,
    }),
    pid_file: at("homeserver.pid"),
    ...input.homeserverOverrides,
  };
  const registration = {
    ...appserviceRegistration({
      id: APPSERVICE_ID,
      serverName: input.serverName,
      asToken: input.secrets.asToken,
      hsToken: input.secrets.hsToken,
    }),
    ...input.registrationOverrides,
  };
  const { password, ...settings } = input.database;
  return {
    files: {
      [FILE_NAMES.homeserver]: toYaml(homeserver),
      [FILE_NAMES.database]: toYaml(databaseConfig({ ...settings, cpMin: 1, cpMax: 5 }, password)),
      [FILE_NAMES.logConfig]: toYaml(logConfig("INFO")),
      [FILE_NAMES.signingKey]: input.secrets.signingKey,
      [FILE_NAMES.registrationSharedSecret]: input.secrets.registrationSharedSecret,
      [FILE_NAMES.macaroonSecretKey]: input.secrets.macaroonSecretKey,
      [FILE_NAMES.formSecret]: input.secrets.formSecret,
      [FILE_NAMES.appserviceRegistration]: toYaml(registration),
    },
    configFiles: [...LOCAL_CONFIG_FILES],
  };
}
