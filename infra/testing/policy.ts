// The deployment policy every rendered Kubernetes object must meet, as pure functions: each rule returns the
// violations it finds, named by object, container and field, so a failing test says exactly what to fix.

export interface PolicyViolation {
  /** `Kind/name`. */
  object: string;
  rule: PolicyRule;
  /** Where and what: the container or field, and what was expected. */
  detail: string;
}

export type PolicyRule =
  | "limits"
  | "probes"
  | "non-root"
  | "privilege-escalation"
  | "image-tag"
  | "secret-in-configmap"
  | "secret-in-env"
  | "public-path";

/** A rendered object: only the fields the rules read are typed. */
export type PolicyObject = Record<string, unknown> & { kind?: unknown; metadata?: { name?: unknown } };

interface SecurityContext {
  runAsNonRoot?: boolean;
  runAsUser?: number;
  allowPrivilegeEscalation?: boolean;
}
interface Container {
  name?: string;
  image?: string;
  resources?: { limits?: Record<string, unknown> };
  readinessProbe?: unknown;
  livenessProbe?: unknown;
  securityContext?: SecurityContext;
  env?: { name?: string; value?: unknown }[];
}
interface PodSpec {
  securityContext?: SecurityContext;
  containers?: Container[];
  initContainers?: Container[];
}

/** Workloads whose containers run until stopped: they need probes. Jobs and CronJobs run to completion. */
const LONG_RUNNING_KINDS = new Set(["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"]);

const label = (object: PolicyObject) => `${String(object.kind)}/${String(object.metadata?.name)}`;

const get = (value: unknown, ...path: string[]): unknown =>
  path.reduce<unknown>(
    (at, key) => (at !== null && typeof at === "object" ? (at as Record<string, unknown>)[key] : undefined),
    value,
  );

/** The pod spec an object runs, wherever its kind keeps it (CronJob: inside its Job template). */
export function podSpecOf(object: PolicyObject): PodSpec | undefined {
  switch (object.kind) {
    case "Pod":
      return get(object, "spec") as PodSpec | undefined;
    case "CronJob":
      return get(object, "spec", "jobTemplate", "spec", "template", "spec") as PodSpec | undefined;
    case "Deployment":
    case "StatefulSet":
    case "DaemonSet":
    case "ReplicaSet":
    case "Job":
      return get(object, "spec", "template", "spec") as PodSpec | undefined;
    default:
      return undefined;
  }
}

function containersOf(pod: PodSpec): { container: Container; init: boolean }[] {
  return [
    ...(pod.initContainers ?? []).map((container) => ({ container, init: true })),
    ...(pod.containers ?? []).map((container) => ({ container, init: false })),
  ];
}

/** `repo[:tag][@digest]`: the tag, or undefined when the reference has none. */
export function imageTag(image: string): string | undefined {
  const withoutDigest = image.split("@")[0] ?? "";
  const lastSegment = withoutDigest.slice(withoutDigest.lastIndexOf("/") + 1);
  const colon = lastSegment.indexOf(":");
  return colon === -1 ? undefined : lastSegment.slice(colon + 1);
}

function containerViolations(
  object: PolicyObject,
  pod: PodSpec,
  secrets: ReadonlySet<string>,
): PolicyViolation[] {
  const violations: PolicyViolation[] = [];
  const longRunning = LONG_RUNNING_KINDS.has(String(object.kind));
  for (const { container, init } of containersOf(pod)) {
    const add = (rule: PolicyRule, detail: string) =>
      violations.push({
        object: label(object),
        rule,
        detail: `${init ? "init container" : "container"} ${String(container.name)}: ${detail}`,
      });
    if (container.resources?.limits?.memory === undefined)
      add("limits", "resources.limits.memory is not set (a memory limit is required)");
    if (longRunning && !init) {
      if (!container.readinessProbe) add("probes", "readinessProbe is not set");
      if (!container.livenessProbe) add("probes", "livenessProbe is not set");
    }
    // The container's own securityContext overrides the pod's.
    const runAsNonRoot = container.securityContext?.runAsNonRoot ?? pod.securityContext?.runAsNonRoot;
    const runAsUser = container.securityContext?.runAsUser ?? pod.securityContext?.runAsUser;
    if (runAsNonRoot !== true)
      add("non-root", "runAsNonRoot must be true (container or pod securityContext)");
    if (runAsUser === 0) add("non-root", "runAsUser is 0 (root)");
    if (container.securityContext?.allowPrivilegeEscalation !== false)
      add("privilege-escalation", "securityContext.allowPrivilegeEscalation must be false");
    const image = container.image ?? "";
    const tag = imageTag(image);
    const pinnedByDigest = image.includes("@sha256:");
    if (tag === "latest") add("image-tag", `image ${image} uses the "latest" tag; pin a version`);
    else if (tag === undefined && !pinnedByDigest)
      add("image-tag", `image "${image}" has no tag; pin a version`);
    for (const variable of container.env ?? [])
      for (const problem of literalSecretProblems(variable.name ?? "", variable.value, secrets))
        add("secret-in-env", `env ${String(variable.name)}: ${problem}`);
  }
  return violations;
}

/** Names that say "this holds a credential". `*_FILE` / `*_PATH` names point at one, which is fine. */
const SECRET_NAME = /passw(or)?d|secret|token|api[-_]?key|private[-_]?key|credential|signing[-_]?key/i;
const POINTER_NAME = /(_|-|\b)(file|path|dir|ref|name)$/i;

export const looksLikeSecretName = (name: string) => SECRET_NAME.test(name) && !POINTER_NAME.test(name);

/** Why a literal (an env value, a ConfigMap entry) must not hold this value: a known secret, or a secret-like key. */
function literalSecretProblems(name: string, value: unknown, secrets: ReadonlySet<string>): string[] {
  if (typeof value !== "string" || value === "") return [];
  const problems: string[] = [];
  const leaked = [...secrets].some((secret) => secret.length >= 8 && value.includes(secret));
  if (leaked) problems.push("holds a generated secret value; use a Secret (secretKeyRef / secret volume)");
  else if (looksLikeSecretName(name))
    problems.push(
      "a credential-looking name with a literal value; use a Secret (secretKeyRef / secret volume)",
    );
  return problems;
}

/** `key: value` / `KEY=value` lines in a config file whose key names a credential and whose value is set. */
const FILE_ASSIGNMENT = /^\s*["']?([\w.-]+)["']?\s*[:=]\s*["']?([^\s"'#]+)/;

function fileContentProblems(content: string): string[] {
  const problems: string[] = [];
  content.split("\n").forEach((line, index) => {
    const match = FILE_ASSIGNMENT.exec(line);
    if (!match) return;
    const [, key = "", value = ""] = match;
    // A credential looks random and long; booleans, paths, URLs and short words are settings.
    const randomLooking = value.length >= 16 && /^[A-Za-z0-9+/=_-]+$/.test(value) && /\d/.test(value);
    if (looksLikeSecretName(key) && randomLooking)
      problems.push(`line ${index + 1}: ${key} has a literal credential-looking value`);
  });
  return problems;
}

function configMapViolations(object: PolicyObject, secrets: ReadonlySet<string>): PolicyViolation[] {
  const violations: PolicyViolation[] = [];
  for (const field of ["data", "binaryData"]) {
    const entries = get(object, field);
    if (entries === null || typeof entries !== "object") continue;
    for (const [key, value] of Object.entries(entries as Record<string, unknown>)) {
      const problems = [
        ...literalSecretProblems(key, value, secrets),
        ...(typeof value === "string" ? fileContentProblems(value) : []),
      ];
      for (const problem of problems)
        violations.push({
          object: label(object),
          rule: "secret-in-configmap",
          detail: `${field}.${key}: ${problem}`,
        });
    }
  }
  return violations;
}

/** Paths never to expose: Synapse's admin API and metrics (and any prefix that covers them). */
const PRIVATE_PATHS = ["/_synapse/admin", "/_synapse/metrics"];

/** Whether an Ingress path (with its pathType) routes some request under `target`: it covers it, or lies inside it. */
function routes(path: string, pathType: string, target: string): boolean {
  const inside = path === target || path.startsWith(`${target}/`);
  if (pathType === "Exact") return inside;
  const prefix = path.endsWith("/") ? path : `${path}/`;
  return inside || target.startsWith(prefix);
}

function ingressViolations(object: PolicyObject): PolicyViolation[] {
  const violations: PolicyViolation[] = [];
  const add = (detail: string) => violations.push({ object: label(object), rule: "public-path", detail });
  if (get(object, "spec", "defaultBackend") !== undefined)
    add("spec.defaultBackend routes every unmatched path (/ broadly); route explicit paths only");
  const rules = (get(object, "spec", "rules") ?? []) as { host?: string; http?: { paths?: unknown[] } }[];
  for (const rule of rules) {
    for (const entry of (rule.http?.paths ?? []) as { path?: string; pathType?: string }[]) {
      const path = entry.path ?? "/";
      // ImplementationSpecific is a prefix match on GKE (and most controllers): judge it as one.
      const pathType = entry.pathType ?? "ImplementationSpecific";
      const where = `host ${rule.host ?? "*"} path ${path} (${pathType})`;
      if ((path === "/" || path === "/*" || path === "") && pathType !== "Exact")
        add(`${where} exposes / broadly; route explicit Matrix paths only`);
      else
        for (const target of PRIVATE_PATHS)
          if (routes(path.replace(/\*$/, ""), pathType, target)) add(`${where} exposes ${target}`);
    }
  }
  return violations;
}

/** Every violation of the policy among `objects`; `secretValues` are the run's generated secrets. */
export function policyViolations(
  objects: readonly PolicyObject[],
  secretValues: ReadonlySet<string> = new Set(),
): PolicyViolation[] {
  return objects.flatMap((object) => {
    const pod = podSpecOf(object);
    return [
      ...(pod ? containerViolations(object, pod, secretValues) : []),
      ...(object.kind === "ConfigMap" ? configMapViolations(object, secretValues) : []),
      ...(object.kind === "Ingress" ? ingressViolations(object) : []),
    ];
  });
}

/** Kinds that carry a pod template: the test asserts it found some, so a renamed kind cannot hide them. */
export const hasPodSpec = (object: PolicyObject) => podSpecOf(object) !== undefined;
