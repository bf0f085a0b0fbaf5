// Deterministic stand-ins for what providers compute (random values, Cloud SQL's IP and CA, the static IP), so an
// offline run is reproducible byte for byte. Every generated secret value is remembered for redaction.
import { createHash } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import { stringify } from "yaml";
import { type ClusterRef, gkeContextName } from "../cluster/context.ts";
import { KNOWN_AFTER_APPLY } from "../policy/rules.ts";

export interface RecordedResource {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
  /** The provider reference (`<provider URN>::<id>`) for resources registered with an explicit provider. */
  provider?: string;
}

const digest = (seed: string) => createHash("sha256").update(seed).digest();

/** A fake alphanumeric value of `length` characters, derived from the resource name. */
function fakeText(name: string, length: number, lowerOnly = false): string {
  let text = "";
  for (let round = 0; text.length < length; round++) {
    const chunk = digest(`${name}#${round}`)
      .toString("base64")
      .replace(/[^A-Za-z0-9]/g, "");
    text += lowerOnly ? chunk.toLowerCase() : chunk;
  }
  return text.slice(0, length);
}

// How the mock runtime hands over a secret input: { [SECRET_SIG]: SECRET_MARKER, value }.
const SECRET_SIG = "4dabf18193072939515e22adb298388d";
const SECRET_MARKER = "1b47061264138c4ac30d75fd1eb44270";

// How the render writes a value a preview cannot know (a provider computes it), as `pulumi preview` says it: the
// policy rules' own marker, so they recognise it.
export { KNOWN_AFTER_APPLY };

/**
 * Unwraps secret inputs (every string inside a secret is reported to `onSecret`) and writes unknown values (only
 * in a preview) as KNOWN_AFTER_APPLY.
 */
export function unwrapSecrets(value: unknown, onSecret: (text: string) => void, inSecret = false): unknown {
  if (pulumi.isUnknown(value)) return KNOWN_AFTER_APPLY;
  if (Array.isArray(value)) return value.map((item) => unwrapSecrets(item, onSecret, inSecret));
  if (value !== null && typeof value === "object") {
    const record = value as Record<string, unknown>;
    if (record[SECRET_SIG] === SECRET_MARKER) return unwrapSecrets(record.value, onSecret, true);
    return Object.fromEntries(
      Object.entries(record).map(([key, item]) => [key, unwrapSecrets(item, onSecret, inSecret)]),
    );
  }
  if (inSecret && typeof value === "string" && value.length >= 8) onSecret(value);
  return value;
}

export const MOCK_DATABASE_IP = "10.20.0.3";
/** What the workflow's image job sets on the bridge image (the digest of a push): stands in for it offline. */
export const MOCK_IMAGE_DIGEST = `sha256:${digest("nova-bridge offline render").toString("hex")}`;

/** The stack config with the bridge image pinned as the image job pins it, when the stack file has no digest. */
export function withImageDigest(config: Record<string, string>, key: string): Record<string, string> {
  const value = config[key];
  if (value === undefined) return config;
  const bridge = JSON.parse(value) as { image?: unknown };
  if (typeof bridge.image !== "string" || bridge.image.includes("@")) return config;
  return { ...config, [key]: JSON.stringify({ ...bridge, image: `${bridge.image}@${MOCK_IMAGE_DIGEST}` }) };
}
/** Memorystore's private IP in a render (its real one is known only after creation). */
export const MOCK_REDIS_IP = "10.20.0.5";
export const MOCK_STATIC_IP = "203.0.113.10";
export const MOCK_CA_CERT =
  "-----BEGIN CERTIFICATE-----\nTU9DSyBDTE9VRCBTUUwgU0VSVkVSIENB\n-----END CERTIFICATE-----\n";

/** The kubeconfig google-github-actions/get-gke-credentials writes for a cluster (no credential: nothing connects). */
export function mockKubeconfig(cluster: ClusterRef): string {
  const context = gkeContextName(cluster);
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: cluster.name, cluster: { server: "https://203.0.113.20" } }],
    contexts: [{ name: context, context: { cluster: cluster.name, user: cluster.name } }],
    "current-context": context,
    users: [{ name: cluster.name, user: {} }],
  });
}

export class RecordingMocks implements pulumi.runtime.Mocks {
  /**
   * In a preview, providers compute nothing: a resource's outputs are its inputs (unknown ones stay unknown) and
   * every other output is unknown, as for a resource `pulumi preview` is about to create.
   */
  readonly preview: boolean;
  readonly resources: RecordedResource[] = [];
  /** What each resource's provider returned (`<type>::<name>`; secrets unwrapped, unknowns written as such). */
  readonly resourceOutputs = new Map<string, Record<string, unknown>>();
  /** Every value a random resource produced (the secrets to redact). */
  readonly secretValues = new Set<string>();
  /** The kubeconfig file the run points KUBECONFIG at. */
  kubeconfigPath: string | undefined;

  constructor(options: { preview?: boolean } = {}) {
    this.preview = options.preview ?? false;
  }

  newResource(args: pulumi.runtime.MockResourceArgs): {
    id: string | undefined;
    state: Record<string, unknown>;
  } {
    const inputs = unwrapSecrets(args.inputs ?? {}, (text) => this.secretValues.add(text)) as Record<
      string,
      unknown
    >;
    // The Kubernetes provider takes $KUBECONFIG's path (a temporary file here): record the variable, not the path.
    if (args.type === "pulumi:providers:kubernetes" && inputs.kubeconfig === this.kubeconfigPath)
      inputs.kubeconfig = "$KUBECONFIG";
    if (args.custom !== false)
      this.resources.push({
        type: args.type,
        name: args.name,
        inputs,
        ...(args.provider ? { provider: args.provider } : {}),
      });
    // Raw inputs, so unknown and secret values stay what they are; no ID: the resource does not exist yet.
    const state = this.preview
      ? { ...args.inputs }
      : { ...inputs, ...this.computed(args.type, args.name, inputs) };
    this.resourceOutputs.set(
      `${args.type}::${args.name}`,
      unwrapSecrets(state, () => {}) as Record<string, unknown>,
    );
    return { id: this.preview ? undefined : `${args.name}-id`, state };
  }

  call(args: pulumi.runtime.MockCallArgs): Record<string, unknown> {
    return args.inputs as Record<string, unknown>;
  }

  private secret(value: string): string {
    this.secretValues.add(value);
    return value;
  }

  private computed(
    type: string,
    resourceName: string,
    inputs: Record<string, unknown>,
  ): Record<string, unknown> {
    // Keepers are part of the seed: changing one "rotates" the value, as the real provider does.
    const name = `${resourceName}${inputs.keepers === undefined ? "" : JSON.stringify(inputs.keepers)}`;
    switch (type) {
      case "random:index/randomPassword:RandomPassword":
        return { result: this.secret(fakeText(name, Number(inputs.length ?? 32))) };
      case "random:index/randomString:RandomString":
        return { result: this.secret(fakeText(name, Number(inputs.length ?? 16), inputs.upper === false)) };
      case "random:index/randomBytes:RandomBytes": {
        const bytes = Buffer.concat([digest(name), digest(`${name}#1`)]).subarray(
          0,
          Number(inputs.length ?? 32),
        );
        this.secret(bytes.toString("base64").replace(/=+$/, "")); // as it appears in the signing key file
        return { base64: this.secret(bytes.toString("base64")), hex: this.secret(bytes.toString("hex")) };
      }
      case "gcp:sql/databaseInstance:DatabaseInstance":
        return {
          privateIpAddress: MOCK_DATABASE_IP,
          connectionName: `mock-project:region:${String(inputs.name)}`,
          serverCaCerts: [{ cert: MOCK_CA_CERT }],
        };
      case "gcp:redis/instance:Instance":
        // Memorystore makes the AUTH string itself: a secret like the generated ones.
        return {
          host: MOCK_REDIS_IP,
          port: 6378,
          authString: this.secret(fakeText(`${name}-auth`, 36)),
          serverCaCerts: [{ cert: MOCK_CA_CERT }],
        };
      case "gcp:compute/globalAddress:GlobalAddress":
        return { address: MOCK_STATIC_IP };
      case "gcp:serviceaccount/account:Account": {
        // Google derives both from the account id and the project: what the real ones will be.
        const email = `${String(inputs.accountId)}@${String(inputs.project)}.iam.gserviceaccount.com`;
        return { email, name: `projects/${String(inputs.project)}/serviceAccounts/${email}` };
      }
      default:
        return {};
    }
  }
}
