// Which Kubernetes cluster a stack deploys to, and whether the kube context at hand is that cluster (pure: the
// kubeconfig files come in as text). GKE contexts are named gke_<project>_<location>_<cluster> by both
// `gcloud container clusters get-credentials` and google-github-actions/get-gke-credentials.
import { parse } from "yaml";

/** A GKE cluster (`nova-matrix:cluster`). */
export interface ClusterRef {
  /** GCP project ID, e.g. nova-chat-prod. */
  readonly project: string;
  /** Region or zone, e.g. europe-west1. */
  readonly location: string;
  /** The cluster's name in that project and location. */
  readonly name: string;
}

/** The kube context name gcloud and get-gke-credentials give this cluster. */
export const gkeContextName = (cluster: ClusterRef) =>
  `gke_${cluster.project}_${cluster.location}_${cluster.name}`;

/** The command that points kubectl (and this program) at the cluster. */
export const getCredentialsCommand = (cluster: ClusterRef) =>
  `gcloud container clusters get-credentials ${cluster.name} --location ${cluster.location} --project ${cluster.project}`;

export interface KubeconfigFile {
  path: string;
  text: string;
}

export interface KubeContext {
  name: string;
  /** The `cluster:` entry the context uses. */
  cluster: string;
  /** The file that set `current-context`. */
  source: string;
}

interface Kubeconfig {
  "current-context"?: string;
  contexts?: { name?: string; context?: { cluster?: string } }[];
}

/**
 * The current context as kubectl resolves it over KUBECONFIG's files: the first file that sets
 * `current-context` wins, and so does the first file that defines a context of that name.
 */
export function currentKubeContext(files: readonly KubeconfigFile[]): KubeContext | undefined {
  const configs = files.map((file) => ({ file, config: (parse(file.text) ?? {}) as Kubeconfig }));
  const selected = configs.find(({ config }) => config["current-context"]);
  const name = selected?.config["current-context"];
  if (!selected || !name) return undefined;
  for (const { config } of configs) {
    const context = config.contexts?.find((entry) => entry.name === name);
    if (context) return { name, cluster: context.context?.cluster ?? "", source: selected.file.path };
  }
  return { name, cluster: "", source: selected.file.path };
}

/** The stack's cluster is not where the kube context points. */
export class WrongClusterError extends Error {
  override name = "WrongClusterError";
}

/**
 * The context to deploy through: the current one, when it is the stack's cluster. Anything else is refused with
 * both named, so `pulumi up -s prod` never lands wherever kubectl happened to point.
 */
export function checkKubeContext(
  stack: string,
  cluster: ClusterRef,
  files: readonly KubeconfigFile[],
): string {
  const expected = gkeContextName(cluster);
  const target = `stack ${stack} deploys to GKE cluster ${cluster.name} (project ${cluster.project}, location ${cluster.location}; kube context ${expected})`;
  const fix = `point kubectl at it with \`${getCredentialsCommand(cluster)}\``;
  const current = currentKubeContext(files);
  if (!current) {
    const where = files.length ? files.map((file) => file.path).join(", ") : "no kubeconfig file found";
    throw new WrongClusterError(`${target}, but there is no current kube context (${where}): ${fix}`);
  }
  // gcloud names the cluster entry like the context; get-gke-credentials uses the cluster's own name.
  const sameCluster = current.cluster === expected || current.cluster === cluster.name;
  if (current.name !== expected || !sameCluster) {
    throw new WrongClusterError(
      `${target}, but the current kube context is ${current.name} (cluster ${current.cluster || "none"}, from ${current.source}): ${fix}`,
    );
  }
  return current.name;
}
