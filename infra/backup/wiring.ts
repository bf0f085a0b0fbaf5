// Synapse's side of the backup args, from the names the Synapse component uses (one source of truth).
import { posix } from "node:path";
import { SETUP_SECRET } from "../database/setup-spec.ts";
import { PASSWORD_ENV } from "../database/sql.ts";
import {
  DATA_PVC_NAME,
  MOUNTS,
  POD_MEDIA_STORE,
  SYNAPSE_LABELS,
  SYNAPSE_UID,
} from "../synapse/deployment-spec.ts";
import type { BackupArgs } from "./index.ts";
import { type DatabaseToDump, SYNAPSE_EXCLUDED_TABLE_DATA } from "./plan.ts";

export const SYNAPSE_MEDIA: BackupArgs["media"] = {
  claimName: DATA_PVC_NAME,
  // The PVC is mounted at MOUNTS.data and Synapse's media store is POD_MEDIA_STORE inside it.
  subPath: posix.relative(MOUNTS.data, POD_MEDIA_STORE),
  runAsUser: SYNAPSE_UID,
  synapsePodSelector: SYNAPSE_LABELS,
};

/**
 * Synapse's database as the backup job dumps it: as the `synapse` role, with the password the database component
 * keeps in its setup Secret, and (Cloud SQL) verifying the server against the CA stored beside it.
 */
export function synapseDatabaseToDump(database: {
  host: string;
  port: number;
  name: string;
  user: string;
  tls: boolean;
}): DatabaseToDump {
  return {
    database: database.name,
    host: database.host,
    port: database.port,
    user: database.user,
    excludeTableData: SYNAPSE_EXCLUDED_TABLE_DATA,
    passwordSecret: { name: SETUP_SECRET, key: PASSWORD_ENV },
    // The database component writes Cloud SQL's server CA as `ca.pem` in the same Secret.
    ...(database.tls ? { serverCa: { name: SETUP_SECRET, key: "ca.pem" } } : {}),
  };
}
