// The deployment policy every Kubernetes object must meet, as pure functions: each rule returns the violations it
// finds, named by object, container and field, so a failing test or deploy says exactly what to fix. Two runners
// share them: the policy test over the rendered stacks (infra/policy/rules.test.ts) and the CrossGuard pack that
// `pulumi preview` and `pulumi up` load (policy-pack/). In a preview some values are unknown until apply: a rule that
// needs one cannot decide, and says so (`undecided`) instead of passing or failing on a guess.

/** How an unknown value is written (the render's preview mode, the pack's copy of a preview's inputs). */
export const KNOWN_AFTER_APPLY = "<known after apply>";

export interface PolicyViolation {
  /** `Kind/name`. */
  object: string;
  rule: PolicyRule;
  /** Where and what: the container or field, and what was expected. */
  detail: string;
}

export const POLICY_RULES = [
  "limits",
  "probes",
  "non-root",
  "privilege-escalation",
  "image-tag",
  "secret-in-configmap",
  "secret-in-env",
  "public-path",
] as const;
export type PolicyRule = (typeof POLICY_RULES)[number];

/** What the rules found: violations, and the checks a value unknown until apply kept from deciding. */
export interface PolicyReport {
  violations: PolicyViolation[];
  /** Same shape; `detail` names the unknown field. Empty when every value is known. */
  undecided: PolicyViolation[];
}

/** A rendered object: only the fields the rules read are typed. */
export type PolicyObject = Record<string, unknown> & { kind?: unknown; metadata?: { name?: unknown } };

/** Workloads whose containers run until stopped: they need probes. Jobs and CronJobs run to completion. */
const LONG_RUNNING_KINDS = new Set(["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"]);

/** Where each kind keeps its pod spec (CronJob: inside its Job template). */
const POD_SPEC_PATHS: Record<string, string[]> = {
  Pod: ["spec"],
  CronJob: ["spec", "jobTemplate", "spec", "template", "spec"],
  Deployment: ["spec", "template", "spec"],
  StatefulSet: ["spec", "template", "spec"],
  DaemonSet: ["spec", "template", "spec"],
  ReplicaSet: ["spec", "template", "spec"],
  Job: ["spec", "template", "spec"],
};

const label = (object: PolicyObject) => `${String(object.kind)}/${String(object.metadata?.name)}`;

/** A value a rule needs is unknown until apply: thrown by `at`, turned into an undecided check by `Findings`. */
class UnknownField extends Error {
  readonly field: string;
  constructor(field: string) {
    super(`${field} is unknown until apply`);
    this.field = field;
  }
}

/** The value at `path` (undefined where a step is missing); throws UnknownField where a step is unknown. */
function at(value: unknown, ...path: (string | number)[]): unknown {
  let here = value;
  for (const [index, key] of path.entries()) {
    if (here === null || typeof here !== "object") return undefined;
    here = (here as Record<string | number, unknown>)[key];
    if (here === KNOWN_AFTER_APPLY) throw new UnknownField(path.slice(0, index + 1).join("."));
  }
  return here;
}

const listAt = (value: unknown, ...path: (string | number)[]): unknown[] => {
  const list = at(value, ...path);
  return Array.isArray(list) ? list : [];
};

/** Collects one object's findings; `check` runs one rule's check and records an unknown field as undecided. */
class Findings {
  readonly report: PolicyReport = { violations: [], undecided: [] };
  readonly #object: string;
  constructor(object: PolicyObject) {
    this.#object = label(object);
  }
  add(rule: PolicyRule, detail: string): void {
    this.report.violations.push({ object: this.#object, rule, detail });
  }
  check(rules: PolicyRule | readonly PolicyRule[], prefix: string, check: () => void): void {
    try {
      check();
    } catch (error) {
      if (!(error instanceof UnknownField)) throw error;
      for (const rule of typeof rules === "string" ? [rules] : rules)
        this.report.undecided.push({ object: this.#object, rule, detail: `${prefix}${error.message}` });
    }
  }
}

/** The pod spec an object runs, wherever its kind keeps it; undefined for kinds without one. */
export function podSpecOf(object: PolicyObject): unknown {
  const path = POD_SPEC_PATHS[String(object.kind)];
  return path ? at(object, ...path) : undefined;
}

/** `repo[:tag][@digest]`: the tag, or undefined when the reference has none. */
export function imageTag(image: string): string | undefined {
  const withoutDigest = image.split("@")[0] ?? "";
  const lastSegment = withoutDigest.slice(withoutDigest.lastIndexOf("/") + 1);
  const colon = lastSegment.indexOf(":");
  return colon === -1 ? undefined : lastSegment.slice(colon + 1);
}

function checkPod(object: PolicyObject, findings: Findings, secrets: ReadonlySet<string>): void {
  const path = POD_SPEC_PATHS[String(object.kind)];
  if (!path) return;
  const longRunning = LONG_RUNNING_KINDS.has(String(object.kind));
  const podRules: PolicyRule[] = [
    "limits",
    ...(longRunning ? (["probes"] as const) : []),
    "non-root",
    "privilege-escalation",
    "image-tag",
    "secret-in-env",
  ];
  // An unknown pod spec or container list (a preview, before its inputs exist) leaves every container rule undecided.
  findings.check(podRules, "pod spec: ", () => {
    const pod = at(object, ...path);
    for (const key of ["initContainers", "containers"] as const) {
      const containers = listAt(pod, key);
      for (const index of containers.keys()) {
        const container = at(containers, index);
        checkContainer(findings, pod, container, { init: key === "initContainers", longRunning, secrets });
      }
    }
  });
}

function checkContainer(
  findings: Findings,
  pod: unknown,
  container: unknown,
  options: { init: boolean; longRunning: boolean; secrets: ReadonlySet<string> },
): void {
  const prefix = `${options.init ? "init container" : "container"} ${String(at(container, "name"))}: `;
  const add = (rule: PolicyRule, detail: string) => findings.add(rule, `${prefix}${detail}`);
  findings.check("limits", prefix, () => {
    if (at(container, "resources", "limits", "memory") === undefined)
      add("limits", "resources.limits.memory is not set (a memory limit is required)");
  });
  if (options.longRunning && !options.init)
    findings.check("probes", prefix, () => {
      if (!at(container, "readinessProbe")) add("probes", "readinessProbe is not set");
      if (!at(container, "livenessProbe")) add("probes", "livenessProbe is not set");
    });
  findings.check("non-root", prefix, () => {
    // The container's own securityContext overrides the pod's.
    const runAsNonRoot =
      at(container, "securityContext", "runAsNonRoot") ?? at(pod, "securityContext", "runAsNonRoot");
    const runAsUser =
      at(container, "securityContext", "runAsUser") ?? at(pod, "securityContext", "runAsUser");
    if (runAsNonRoot !== true)
      add("non-root", "runAsNonRoot must be true (container or pod securityContext)");
    if (runAsUser === 0) add("non-root", "runAsUser is 0 (root)");
  });
  findings.check("privilege-escalation", prefix, () => {
    if (at(container, "securityContext", "allowPrivilegeEscalation") !== false)
      add("privilege-escalation", "securityContext.allowPrivilegeEscalation must be false");
  });
  findings.check("image-tag", prefix, () => {
    const image = String(at(container, "image") ?? "");
    const tag = imageTag(image);
    const pinnedByDigest = image.includes("@sha256:");
    if (tag === "latest") add("image-tag", `image ${image} uses the "latest" tag; pin a version`);
    else if (tag === undefined && !pinnedByDigest)
      add("image-tag", `image "${image}" has no tag; pin a version`);
  });
  findings.check("secret-in-env", prefix, () => {
    const env = listAt(container, "env");
    // One check per variable: an unknown value leaves that variable undecided, not the ones after it.
    for (const index of env.keys())
      findings.check("secret-in-env", prefix, () => {
        const name = String(at(container, "env", index, "name") ?? "");
        for (const problem of literalSecretProblems(
          name,
          at(container, "env", index, "value"),
          options.secrets,
        ))
          add("secret-in-env", `env ${name}: ${problem}`);
      });
  });
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

function checkConfigMap(object: PolicyObject, findings: Findings, secrets: ReadonlySet<string>): void {
  for (const field of ["data", "binaryData"])
    findings.check("secret-in-configmap", "", () => {
      const entries = at(object, field);
      if (entries === null || typeof entries !== "object") return;
      for (const key of Object.keys(entries))
        findings.check("secret-in-configmap", "", () => {
          const value = at(entries, key);
          const problems = [
            ...literalSecretProblems(key, value, secrets),
            ...(typeof value === "string" ? fileContentProblems(value) : []),
          ];
          for (const problem of problems) findings.add("secret-in-configmap", `${field}.${key}: ${problem}`);
        });
    });
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

function checkIngress(object: PolicyObject, findings: Findings): void {
  const add = (detail: string) => findings.add("public-path", detail);
  findings.check("public-path", "", () => {
    if (at(object, "spec", "defaultBackend") !== undefined)
      add("spec.defaultBackend routes every unmatched path (/ broadly); route explicit paths only");
  });
  findings.check("public-path", "", () => {
    const rules = listAt(object, "spec", "rules");
    for (const index of rules.keys())
      findings.check("public-path", "", () => {
        const host = String(at(rules, index, "host") ?? "*");
        const paths = listAt(rules, index, "http", "paths");
        for (const entry of paths.keys()) {
          const path = String(at(paths, entry, "path") ?? "/");
          // ImplementationSpecific is a prefix match on GKE (and most controllers): judge it as one.
          const pathType = String(at(paths, entry, "pathType") ?? "ImplementationSpecific");
          const where = `host ${host} path ${path} (${pathType})`;
          if ((path === "/" || path === "/*" || path === "") && pathType !== "Exact")
            add(`${where} exposes / broadly; route explicit Matrix paths only`);
          else
            for (const target of PRIVATE_PATHS)
              if (routes(path.replace(/\*$/, ""), pathType, target)) add(`${where} exposes ${target}`);
        }
      });
  });
}

/** The policy over `objects`: violations, and what values unknown until apply kept it from deciding. */
export function policyReport(
  objects: readonly PolicyObject[],
  secretValues: ReadonlySet<string> = new Set(),
): PolicyReport {
  const report: PolicyReport = { violations: [], undecided: [] };
  for (const object of objects) {
    const findings = new Findings(object);
    checkPod(object, findings, secretValues);
    if (object.kind === "ConfigMap") checkConfigMap(object, findings, secretValues);
    if (object.kind === "Ingress") checkIngress(object, findings);
    report.violations.push(...findings.report.violations);
    report.undecided.push(...findings.report.undecided);
  }
  return report;
}

/** Every violation of the policy among `objects` (all values known); `secretValues` are the generated secrets. */
export const policyViolations = (
  objects: readonly PolicyObject[],
  secretValues: ReadonlySet<string> = new Set(),
): PolicyViolation[] => policyReport(objects, secretValues).violations;

/** Kinds that carry a pod template: the test asserts it found some, so a renamed kind cannot hide them. */
export const hasPodSpec = (object: PolicyObject) => podSpecOf(object) !== undefined;
