// Synapse's side of the backup args, from the names the Synapse component uses (one source of truth).
import { posix } from "node:path";
import {
  DATA_PVC_NAME,
  MOUNTS,
  POD_MEDIA_STORE,
  SYNAPSE_LABELS,
  SYNAPSE_UID,
} from "../synapse/deployment-spec.ts";
import type { BackupArgs } from "./index.ts";

export const SYNAPSE_MEDIA: BackupArgs["media"] = {
  claimName: DATA_PVC_NAME,
  // The PVC is mounted at MOUNTS.data and Synapse's media store is POD_MEDIA_STORE inside it.
  subPath: posix.relative(MOUNTS.data, POD_MEDIA_STORE),
  runAsUser: SYNAPSE_UID,
  synapsePodSelector: SYNAPSE_LABELS,
};
