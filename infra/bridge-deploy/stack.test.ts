// The bridge as the staging stack declares it: the real program under Pulumi's mocks, the bridge's objects checked.

import { stackOutputsSchema } from "@nova-matrix/contracts";
import { beforeAll, describe, expect, it } from "vitest";
import { MOCK_IMAGE_DIGEST } from "../render/mocks.ts";
import { runStack, type StackRun } from "../render/run.ts";
import { CONFIG_MAP_NAME } from "../synapse/deployment-spec.ts";
import { findObject, kubernetesObjects } from "../testing/stack-invariants.ts";
import { deployedImage } from "./index.ts";
import { BRIDGE_DB_SETUP_NAME, BRIDGE_NAME, BRIDGE_SECRET } from "./spec.ts";

let run: StackRun;
beforeAll(async () => {
  run = await runStack("staging");
});

describe("the bridge in the staging stack", () => {
  it("exports the bridge URL and its API token as a secret output, in the stack outputs' schema", () => {
    const outputs = stackOutputsSchema.parse(run.outputs);
    expect(outputs.bridgeUrl).toBe("http://nova-bridge:8080");
    expect(outputs.bridgeApiToken).toMatch(/^[A-Za-z0-9]{48}$/);
    expect(run.secretOutputs.has("bridgeApiToken")).toBe(true);
  });

  it("deploys the image from stack config with the bridge's own Secret from generated values", () => {
    const deployment = findObject<{
      spec: {
        template: {
          spec: { containers: { image: string }[] };
          metadata: { annotations: Record<string, string> };
        };
      };
    }>(run, "Deployment", BRIDGE_NAME);
    // By digest: the stack file names the repository, the image job (here the render's stand-in) the digest.
    expect(deployment.spec.template.spec.containers[0]?.image).toBe(
      `europe-docker.pkg.dev/nova-chat-prod/nova/nova-bridge@${MOCK_IMAGE_DIGEST}`,
    );
    const secret = findObject<{ stringData: Record<string, string> }>(run, "Secret", BRIDGE_SECRET);
    expect(Object.keys(secret.stringData).sort()).toEqual([
      "BRIDGE_API_TOKEN",
      "BRIDGE_DATABASE_URL",
      "BRIDGE_WS_SIGNING_KEY",
    ]);
    expect(secret.stringData.BRIDGE_API_TOKEN).toBe(run.outputs.bridgeApiToken);
    expect(secret.stringData.BRIDGE_WS_SIGNING_KEY).toMatch(/^[A-Za-z0-9]{64}$/);
    const url = new URL(secret.stringData.BRIDGE_DATABASE_URL ?? "");
    expect([url.hostname, url.port, url.pathname, url.username]).toEqual([
      "postgres",
      "5432",
      "/nova_bridge",
      "nova_bridge",
    ]);
    // Every generated value is a known secret (so the stack's leak checks cover them).
    for (const value of Object.values(secret.stringData)) expect(run.secretValues.has(value)).toBe(true);
  });

  it("never deploys without a digest: an update of a stack file's bare repository stops, naming the key and the fix", () => {
    const repository = "europe-docker.pkg.dev/nova-chat-prod/nova/nova-bridge";
    expect(() => deployedImage(repository)).toThrow(
      `nova-matrix:bridge.image: ${repository} has no digest, and the bridge is deployed by digest only: ` +
        `pulumi config set --path nova-matrix:bridge.image ${repository}@sha256:<digest>`,
    );
  });

  it("creates its role and database with a setup Job that reads only the password's SCRAM verifier", () => {
    const jobs = kubernetesObjects(run).filter(
      (o) => o.kind === "Job" && o.metadata.labels?.app === BRIDGE_DB_SETUP_NAME,
    );
    expect(jobs).toHaveLength(1);
    const env = (
      jobs[0] as unknown as {
        spec: { template: { spec: { containers: { env: { name: string; valueFrom?: unknown }[] }[] } } };
      }
    ).spec.template.spec.containers[0]?.env;
    expect(env?.find((e) => e.name === "PGPASSWORD")?.valueFrom).toEqual({
      secretKeyRef: { name: "postgres-credentials", key: "POSTGRES_PASSWORD" },
    });
    const job = JSON.stringify(jobs[0]);
    const setup = findObject<{ stringData: Record<string, string> }>(run, "Secret", BRIDGE_DB_SETUP_NAME);
    // The verifier for the Job, and the password itself beside it for the backup job (it dumps as this role).
    expect(Object.keys(setup.stringData).sort()).toEqual([
      "SYNAPSE_DB_PASSWORD",
      "SYNAPSE_DB_PASSWORD_SCRAM",
    ]);
    expect(setup.stringData.SYNAPSE_DB_PASSWORD_SCRAM).toMatch(/^SCRAM-SHA-256\$4096:/);
    const password = new URL(
      findObject<{ stringData: Record<string, string> }>(run, "Secret", BRIDGE_SECRET).stringData
        .BRIDGE_DATABASE_URL ?? "",
    ).password;
    expect(decodeURIComponent(password)).toBe(setup.stringData.SYNAPSE_DB_PASSWORD);
    expect(job).not.toContain(password);
    expect(job).not.toContain('"SYNAPSE_DB_PASSWORD"');
  });
});

describe("the bridge's upload limit and pages switch in staging", () => {
  const env = (stack: StackRun) => {
    const deployment = findObject<{
      spec: { template: { spec: { containers: { env: { name: string; value: string }[] }[] } } };
    }>(stack, "Deployment", BRIDGE_NAME);
    return Object.fromEntries(
      (deployment.spec.template.spec.containers[0]?.env ?? []).map((e) => [e.name, e.value]),
    );
  };

  it("staging: uploads up to Synapse's max_upload_size (50M), docs and console on", () => {
    expect(env(run)).toMatchObject({
      BRIDGE_MAX_UPLOAD_BYTES: String(50 * 2 ** 20),
      BRIDGE_DEV_PAGES: "true",
    });
    const synapseConfig = findObject<{ data: Record<string, string> }>(run, "ConfigMap", CONFIG_MAP_NAME);
    expect(JSON.stringify(synapseConfig.data)).toMatch(/max_upload_size: 50M/);
  });
});
