// The stack outputs' shape: what `pulumi stack output --json --show-secrets` prints and what the bridge reads.
// The program (infra/index.ts) builds exactly this shape; the tests and the bridge validate against this schema.
import { z } from "zod";

export const stackOutputsSchema = z.strictObject({
  /** In-cluster URL of Synapse's client API, `http://matrix-synapse:8008`. */
  homeserverUrl: z.url(),
  /** The Matrix server name, for example `staging.nova.internal`. */
  serverName: z.string().min(1),
  /** `@nova-service:<serverName>`: assert it with `?user_id=` on every request made with `accessToken`. */
  serviceUser: z.string().regex(/^@[^:]+:.+$/, "expected a Matrix user ID"),
  /** `nova-realtime-chat-service` */
  deviceName: z.string().min(1),
  /** MATRIX_ENABLED as a boolean. */
  matrixEnabled: z.boolean(),
  /** The appservice's as_token (a Pulumi secret; `--show-secrets` prints it). */
  accessToken: z.string().min(1),
  /** The Kubernetes namespace of Synapse and of the backend's ConfigMap and Secret. */
  namespace: z.string().min(1),
  /** Prod only: `https://chat.nova.com/`. */
  publicBaseUrl: z.url().optional(),
  /** The bridge service's URL in the namespace, `http://nova-bridge:8080` (when the stack deploys the bridge). */
  bridgeUrl: z.url().optional(),
  /** The bridge's API token for service-to-service calls (a Pulumi secret). */
  bridgeApiToken: z.string().min(1).optional(),
});

export type StackOutputs = z.infer<typeof stackOutputsSchema>;

/** The keys whose values are Pulumi secrets. */
export const SECRET_OUTPUTS = [
  "accessToken",
  "bridgeApiToken",
] as const satisfies readonly (keyof StackOutputs)[];

/** Validates `pulumi stack output --json --show-secrets`; errors name the output, never echo a value. */
export function parseStackOutputs(json: unknown): StackOutputs {
  const result = stackOutputsSchema.safeParse(json);
  if (result.success) return result.data;
  const problems = result.error.issues.map(
    (issue) => `${issue.path.join(".") || "(root)"}: ${issue.message}`,
  );
  throw new Error(`unexpected stack outputs:\n  ${problems.join("\n  ")}`);
}
