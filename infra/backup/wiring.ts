// Synapse's and the bridge's side of the backup args, from the names their components use (one source of truth).
import { posix } from "node:path";
import { BRIDGE_DB_SETUP_NAME } from "../bridge-deploy/spec.ts";
import { SETUP_SECRET } from "../database/setup-spec.ts";
import { PASSWORD_ENV } from "../database/sql.ts";
import {
  DATA_PVC_NAME,
  MOUNTS,
  POD_MEDIA_STORE,
  SYNAPSE_LABELS,
  SYNAPSE_UID,
} from "../synapse/deployment-spec.ts";
import { groupLabels } from "../synapse/workers-component.ts";
import type { BackupArgs } from "./index.ts";
import { type DatabaseToDump, SYNAPSE_EXCLUDED_TABLE_DATA } from "./plan.ts";

/**
 * The media volume as the archive job mounts it. The PVC is ReadWriteOnce, so the job runs beside the one pod that
 * mounts it: Synapse's on one process, the media worker's in worker mode (processSpec: only it mounts media).
 */
export function synapseMedia(workerMode: boolean): BackupArgs["media"] {
  return {
    claimName: DATA_PVC_NAME,
    // The PVC is mounted at MOUNTS.data and Synapse's media store is POD_MEDIA_STORE inside it.
    subPath: posix.relative(MOUNTS.data, POD_MEDIA_STORE),
    runAsUser: SYNAPSE_UID,
    synapsePodSelector: workerMode ? groupLabels("media") : SYNAPSE_LABELS,
  };
}

/** A database on the stack's server, as its role reaches it. */
interface RoleOnServer {
  host: string;
  port: number;
  name: string;
  user: string;
}

/** A database dumped as its own role, the password read from its setup Secret (kept beside the verifier). */
const dumpedAsRole = (database: RoleOnServer, setupSecret: string, excludeTableData: readonly string[]) => ({
  database: database.name,
  host: database.host,
  port: database.port,
  user: database.user,
  excludeTableData,
  passwordSecret: { name: setupSecret, key: PASSWORD_ENV },
});

/**
 * Synapse's database as the backup job dumps it: as the `synapse` role, with the password the database component
 * keeps in its setup Secret, and (Cloud SQL) verifying the server against the CA stored beside it.
 */
export function synapseDatabaseToDump(database: RoleOnServer & { tls: boolean }): DatabaseToDump {
  return {
    ...dumpedAsRole(database, SETUP_SECRET, SYNAPSE_EXCLUDED_TABLE_DATA),
    // The database component writes Cloud SQL's server CA as `ca.pem` in the same Secret.
    ...(database.tls ? { serverCa: { name: SETUP_SECRET, key: "ca.pem" } } : {}),
  };
}

/**
 * The bridge's database (in-cluster only: on Cloud SQL the instance's backups hold it), dumped whole as the bridge's
 * role with the password its setup Secret keeps (infra/bridge-deploy). No TLS inside the cluster.
 */
export function bridgeDatabaseToDump(database: RoleOnServer): DatabaseToDump {
  return dumpedAsRole(database, BRIDGE_DB_SETUP_NAME, []);
}
