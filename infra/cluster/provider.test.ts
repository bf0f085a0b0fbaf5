// The right cluster: the kube context check (pure), then the real program: every Kubernetes object of both stacks
// goes through the explicit provider of the stack's cluster, and a context pointing elsewhere stops the program.
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import type { RecordedResource } from "../render/mocks.ts";
import { mockKubeconfig } from "../render/mocks.ts";
import { PROJECT_DIR, runStack } from "../render/run.ts";
import { checkKubeContext, currentKubeContext, gkeContextName, WrongClusterError } from "./context.ts";

const prod = { project: "nova-chat-prod", location: "europe-west1", name: "nova-prod" };
const staging = { project: "nova-chat-staging", location: "europe-west1", name: "nova-staging" };
const file = (path: string, text: string) => ({ path, text });
/** A kubeconfig as `gcloud container clusters get-credentials` writes it: everything named gke_... */
const gcloudKubeconfig = (cluster: typeof prod, current = gkeContextName(cluster)) =>
  stringify({
    clusters: [{ name: gkeContextName(cluster), cluster: { server: "https://198.51.100.7" } }],
    contexts: [
      { name: gkeContextName(cluster), context: { cluster: gkeContextName(cluster), user: "u" } },
      { name: "minikube", context: { cluster: "minikube", user: "m" } },
    ],
    "current-context": current,
  });

describe("checkKubeContext", () => {
  it("accepts the stack's cluster as gcloud and get-gke-credentials name it", () => {
    expect(checkKubeContext("prod", prod, [file("/k/gcloud", gcloudKubeconfig(prod))])).toBe(
      "gke_nova-chat-prod_europe-west1_nova-prod",
    );
    expect(checkKubeContext("prod", prod, [file("/k/action", mockKubeconfig(prod))])).toBe(
      "gke_nova-chat-prod_europe-west1_nova-prod",
    );
  });

  it("refuses another cluster, naming the stack's cluster, the current context and the command that fixes it", () => {
    const files = [file("/home/me/.kube/config", gcloudKubeconfig(staging))];
    expect(() => checkKubeContext("prod", prod, files)).toThrow(WrongClusterError);
    expect(() => checkKubeContext("prod", prod, files)).toThrow(
      "stack prod deploys to GKE cluster nova-prod (project nova-chat-prod, location europe-west1; kube context " +
        "gke_nova-chat-prod_europe-west1_nova-prod), but the current kube context is " +
        "gke_nova-chat-staging_europe-west1_nova-staging (cluster gke_nova-chat-staging_europe-west1_nova-staging, " +
        "from /home/me/.kube/config): point kubectl at it with " +
        "`gcloud container clusters get-credentials nova-prod --location europe-west1 --project nova-chat-prod`",
    );
    // The right name on a context that uses another cluster entry is refused too.
    const renamed = stringify({
      contexts: [{ name: gkeContextName(prod), context: { cluster: "minikube" } }],
      "current-context": gkeContextName(prod),
    });
    expect(() => checkKubeContext("prod", prod, [file("/k", renamed)])).toThrow(/cluster minikube/);
  });

  it("refuses when there is no kubeconfig or no current context", () => {
    expect(() => checkKubeContext("prod", prod, [])).toThrow(
      /but there is no current kube context \(no kubeconfig file found\)/,
    );
    expect(() => checkKubeContext("prod", prod, [file("/k/empty", "")])).toThrow(/\(\/k\/empty\)/);
  });

  it("reads KUBECONFIG's list as kubectl does: the first current-context and the first definition win", () => {
    const first = file("/a", stringify({ contexts: [{ name: "x", context: { cluster: "from-a" } }] }));
    const second = file(
      "/b",
      stringify({ "current-context": "x", contexts: [{ name: "x", context: { cluster: "from-b" } }] }),
    );
    expect(currentKubeContext([first, second])).toEqual({ name: "x", cluster: "from-a", source: "/b" });
  });
});

const PROVIDER_TYPE = "pulumi:providers:kubernetes";

function renderedResources(stack: string): RecordedResource[] {
  const output = execFileSync(
    process.execPath,
    [join(PROJECT_DIR, "infra/testing/run-stack-json.ts"), stack],
    { cwd: PROJECT_DIR, encoding: "utf8", maxBuffer: 64 << 20 },
  );
  return (JSON.parse(output) as { resources: RecordedResource[] }).resources;
}

describe.each(["staging", "prod"])("stack %s", (stack) => {
  it("sends every Kubernetes object through the provider pinned to its cluster's context", () => {
    const resources = renderedResources(stack);
    const providers = resources.filter((r) => r.type === PROVIDER_TYPE);
    expect(providers.map((p) => [p.name, p.inputs.context])).toEqual([
      ["cluster", gkeContextName(stack === "prod" ? prod : staging)],
    ]);
    // Staging adopts the hand-made objects; prod's namespace is new and adopts nothing by accident.
    const adopting = stack === "staging" ? "true" : undefined;
    expect(providers[0]?.inputs.upsertExistingObjects).toBe(adopting);
    expect(providers[0]?.inputs.enablePatchForce).toBe(adopting);
    const objects = resources.filter((r) => r.type.startsWith("kubernetes:"));
    expect(objects.length).toBeGreaterThan(10);
    const strays = objects
      .filter((r) => !r.provider?.startsWith(`urn:pulumi:${stack}::nova-matrix::${PROVIDER_TYPE}::cluster::`))
      .map((r) => `${r.type} ${r.name} (provider ${r.provider ?? "default"})`);
    expect(strays).toEqual([]);
  });
});

describe("the program under a kube context of another cluster", () => {
  it("stops before declaring anything, naming both clusters", async () => {
    await expect(
      runStack("prod", undefined, { kubeconfig: gcloudKubeconfig(staging, "minikube") }),
    ).rejects.toThrow(
      /stack prod deploys to GKE cluster nova-prod .* but the current kube context is minikube \(cluster minikube, from /,
    );
  });
});
