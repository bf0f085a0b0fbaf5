// infra's deployment rules (infra/policy/rules.ts) as CrossGuard policies: one resource policy per rule over each
// Kubernetes object the engine is about to create or update, and one stack policy for generated secrets (a leak is
// only visible with the stack's generated values in hand). The rules are the ones `npm test` runs over the rendered
// stacks: one rule set, two runners.
//
// Unknown values: in a preview, an input computed from what does not exist yet (a generated password, Cloud SQL's
// address) is unknown, and reading it through the engine's proxy throws UnknownValueError. The pack copies the inputs
// with each unknown written as the rules' KNOWN_AFTER_APPLY; a rule that needs one leaves its check undecided, and the
// pack rethrows the proxy's own UnknownValueError for it, which the engine reports as an advisory "can't run policy
// ... during preview" line naming the field. The update analyses the same resource again with its inputs known, and
// there the policy is mandatory: it stops the update before that resource is created.
import {
  KNOWN_AFTER_APPLY,
  POLICY_RULES,
  type PolicyObject,
  type PolicyReport,
  type PolicyRule,
  type PolicyViolation,
  policyReport,
} from "@nova-matrix/infra/policy/rules";
import {
  type Policies,
  type ReportViolation,
  type ResourceValidationPolicy,
  type StackValidationPolicy,
  UnknownValueError,
} from "@pulumi/policy";

const DESCRIPTIONS: Record<PolicyRule, string> = {
  limits: "Every container (init, Job and CronJob ones too) has a memory limit.",
  probes:
    "Every container of a Deployment, StatefulSet, DaemonSet or ReplicaSet has readiness and liveness probes.",
  "non-root": "Every container runs with runAsNonRoot and never as uid 0.",
  "privilege-escalation": "Every container sets allowPrivilegeEscalation: false.",
  "image-tag": "Every image is pinned: a tag other than latest, or a digest.",
  "secret-in-configmap": "No credential-named literal or credential line in a ConfigMap.",
  "secret-in-env": "No credential-named literal in a container's env value (use secretKeyRef).",
  "public-path": "No Ingress path covers /, /_synapse/admin or /_synapse/metrics, and no defaultBackend.",
};

/** A plain copy of what the engine passed; each value it cannot know yet written as KNOWN_AFTER_APPLY. */
export function knownCopy(value: unknown, unknowns: UnknownValueError[] = []): unknown {
  if (value === null || typeof value !== "object") return value;
  const copy: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    try {
      copy[key] = knownCopy((value as Record<string, unknown>)[key], unknowns);
    } catch (error) {
      if (!(error instanceof UnknownValueError)) throw error;
      unknowns.push(error);
      copy[key] = KNOWN_AFTER_APPLY;
    }
  }
  return Array.isArray(value) ? Object.assign([], copy) : copy;
}

/** The Kubernetes object a resource describes (`kubernetes:<group>/<version>:<Kind>`), or undefined. */
export function kubernetesObject(
  type: string,
  props: unknown,
  unknowns?: UnknownValueError[],
): PolicyObject | undefined {
  const [provider, , kind] = type.split(":");
  if (provider !== "kubernetes" || !kind) return undefined;
  return { kind, ...(knownCopy(props, unknowns) as object) };
}

const line = (violation: PolicyViolation) => `${violation.object}: ${violation.detail}`;

/** Reports the rule's violations; undecided checks become the engine's "can't run during preview" advisory. */
function reportRule(
  report: PolicyReport,
  rule: PolicyRule,
  reportViolation: ReportViolation,
  unknowns: UnknownValueError[],
) {
  for (const violation of report.violations) if (violation.rule === rule) reportViolation(line(violation));
  const undecided = report.undecided.filter((finding) => finding.rule === rule);
  if (undecided.length === 0) return;
  const [unknown] = unknowns;
  // Fails closed: an undecided check without an unknown value to blame is an error, not a pass.
  if (!unknown) throw new Error(`undecided without an unknown value: ${undecided.map(line).join("; ")}`);
  unknown.message = undecided.map(line).join("; ");
  throw unknown;
}

const resourcePolicies: ResourceValidationPolicy[] = POLICY_RULES.map((rule) => ({
  name: rule,
  description: DESCRIPTIONS[rule],
  validateResource: (args, reportViolation) => {
    const unknowns: UnknownValueError[] = [];
    const object = kubernetesObject(args.type, args.props, unknowns);
    if (object) reportRule(policyReport([object]), rule, reportViolation, unknowns);
  },
}));

/** What the stack's generators produced: the values no plain object may hold. */
export function generatedSecrets(resources: readonly { type: string; props: unknown }[]): Set<string> {
  const secrets = new Set<string>();
  const add = (value: unknown) => {
    if (typeof value === "string" && value !== KNOWN_AFTER_APPLY) secrets.add(value);
  };
  for (const { type, props } of resources) {
    const outputs = knownCopy(props) as Record<string, unknown>;
    switch (type) {
      case "random:index/randomPassword:RandomPassword":
      case "random:index/randomString:RandomString":
        add(outputs.result);
        break;
      case "random:index/randomBytes:RandomBytes":
        add(outputs.hex);
        add(outputs.base64);
        // Written into files without its padding (Synapse's signing key).
        if (typeof outputs.base64 === "string") add(outputs.base64.replace(/=+$/, ""));
        break;
      case "gcp:redis/instance:Instance":
        add(outputs.authString);
        break;
    }
  }
  return secrets;
}

/** The generated-secret half of secret-in-env and secret-in-configmap: needs every resource's outputs at once. */
const generatedSecretPolicy: StackValidationPolicy = {
  name: "generated-secret",
  description:
    "No generated secret (random passwords, tokens, keys; Memorystore's AUTH) in a ConfigMap or env value.",
  validateStack: (args, reportViolation) => {
    const objects = args.resources
      .map((resource) => kubernetesObject(resource.type, resource.props))
      .filter((object): object is PolicyObject => object !== undefined);
    const byName = new Set(policyReport(objects).violations.map(line)); // the resource policies report those
    for (const violation of policyReport(objects, generatedSecrets(args.resources)).violations)
      if (!byName.has(line(violation))) reportViolation(`${line(violation)} (${violation.rule})`);
  },
};

export const policies: Policies = [...resourcePolicies, generatedSecretPolicy];
