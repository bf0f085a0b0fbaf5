// The Kubernetes provider of the stack's own cluster. Every component gets it through `providers` (infra/index.ts),
// so no Kubernetes object ever goes through Pulumi's default provider, which follows whatever context is current.
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, join } from "node:path";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { type ClusterRef, checkKubeContext, type KubeconfigFile, WrongClusterError } from "./context.ts";

/** The kubeconfig files kubectl would read: $KUBECONFIG's list, or ~/.kube/config. */
export function kubeconfigFiles(env: NodeJS.ProcessEnv = process.env): KubeconfigFile[] {
  const paths = env.KUBECONFIG
    ? env.KUBECONFIG.split(delimiter).filter(Boolean)
    : [join(homedir(), ".kube/config")];
  return paths.filter((path) => existsSync(path)).map((path) => ({ path, text: readFileSync(path, "utf8") }));
}

/**
 * Refuses to go on unless the current kube context is the stack's cluster; then a provider pinned to it.
 * `adoptExisting`: objects that already exist are taken over (upsert, server-side apply forced over other field
 * managers) instead of failing with AlreadyExists, the provider's default since pulumi-kubernetes 4.29.
 */
export function clusterProvider(name: string, cluster: ClusterRef, adoptExisting = false): k8s.Provider {
  let context: string;
  try {
    context = checkKubeContext(pulumi.getStack(), cluster, kubeconfigFiles());
  } catch (error) {
    if (error instanceof WrongClusterError) throw new pulumi.RunError(error.message);
    throw error;
  }
  // The provider reads the same kubeconfig ($KUBECONFIG) at deploy time, pinned to this context: switching
  // contexts mid-run changes nothing. The identifier is what makes it another cluster: a new kubeconfig path or
  // token (each CI run has both) is an update of the provider, never a replacement of every object on it.
  return new k8s.Provider(name, {
    context,
    clusterIdentifier: context,
    ...(adoptExisting ? { upsertExistingObjects: true, enablePatchForce: true } : {}),
  });
}
