// The ops builders wired with the Synapse component's own names select what that component creates.
import { describe, expect, it } from "vitest";
import { bridgeDatabaseToDump, synapseDatabaseToDump, synapseMedia } from "../backup/wiring.ts";
import { BRIDGE_DB_SETUP_NAME } from "../bridge-deploy/spec.ts";
import { SYNAPSE_SCRAPE } from "../observability/wiring.ts";
import {
  DATA_PVC_NAME,
  METRICS_PORT_NAME,
  POD_MEDIA_STORE,
  processSpec,
  SYNAPSE_LABELS,
  SYNAPSE_NAME,
  SYNAPSE_UID,
} from "../synapse/deployment-spec.ts";
import { SYNAPSE_ENDPOINTS } from "./wiring.ts";

describe("ops wiring from the Synapse component's names", () => {
  it("scrapes the Service and pods the Synapse component labels, on its named metrics port", () => {
    expect(SYNAPSE_SCRAPE).toMatchObject({
      name: SYNAPSE_NAME,
      selector: SYNAPSE_LABELS,
      metricsPortName: METRICS_PORT_NAME,
      mediaClaimName: DATA_PVC_NAME,
    });
  });

  it("archives the media store directory inside the data PVC, as Synapse's uid, beside the pod that mounts it", () => {
    for (const workerMode of [false, true]) {
      const media = synapseMedia(workerMode);
      expect(POD_MEDIA_STORE.endsWith(`/${media.subPath}`)).toBe(true);
      expect(media).toMatchObject({ claimName: DATA_PVC_NAME, runAsUser: SYNAPSE_UID });
    }
    expect(synapseMedia(false).synapsePodSelector).toEqual(SYNAPSE_LABELS);
    // Worker mode: only the media worker mounts the volume (the stack tests check the rendered pods).
    expect(processSpec("media").mountsMedia).toBe(true);
    expect(processSpec("main").mountsMedia).toBe(false);
    expect(synapseMedia(true).synapsePodSelector).toEqual({ app: "matrix-synapse-media" });
  });

  it("dumps the bridge's database as its role, with the password its setup Secret keeps", () => {
    const bridge = bridgeDatabaseToDump({
      host: "postgres",
      port: 5432,
      name: "nova_bridge",
      user: "nova_bridge",
    });
    expect(bridge).toEqual({
      database: "nova_bridge",
      host: "postgres",
      port: 5432,
      user: "nova_bridge",
      excludeTableData: [],
      passwordSecret: { name: BRIDGE_DB_SETUP_NAME, key: "SYNAPSE_DB_PASSWORD" },
    });
  });

  it("isolates the pods and ports the Synapse component exposes", () => {
    expect(SYNAPSE_ENDPOINTS).toEqual({ podSelector: SYNAPSE_LABELS, clientPort: 8008, metricsPort: 9000 });
  });

  it("dumps Synapse's database with the setup Secret's password, and its CA on Cloud SQL", () => {
    const staging = synapseDatabaseToDump({
      host: "postgres",
      port: 5432,
      name: "synapse",
      user: "synapse",
      tls: false,
    });
    expect(staging.passwordSecret).toEqual({ name: "matrix-synapse-db-setup", key: "SYNAPSE_DB_PASSWORD" });
    expect(staging.excludeTableData).toEqual(["e2e_one_time_keys_json"]);
    expect(staging).not.toHaveProperty("serverCa");
    const prod = synapseDatabaseToDump({
      host: "10.0.0.3",
      port: 5432,
      name: "synapse",
      user: "synapse",
      tls: true,
    });
    expect(prod.serverCa).toEqual({ name: "matrix-synapse-db-setup", key: "ca.pem" });
  });
});
