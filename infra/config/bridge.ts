// The bridge's stack config (`nova-matrix:bridge`): part of the config model, pure, imported by the schema and by the
// bridge's component (never the other way round).
import { z } from "zod";

/** The bridge container's requests and limits unless the stack config sets them. */
export const DEFAULT_BRIDGE_RESOURCES = {
  requests: { cpu: "100m", memory: "256Mi" },
  limits: { memory: "512Mi" },
};

/** A registry repository path without tag (`host[:port]/path/name`), lower case as registries require. */
const REPOSITORY = /^[a-z0-9][a-z0-9.-]*(:[0-9]+)?(\/[a-z0-9]+([._-][a-z0-9]+)*)+$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;

/** `repository[@sha256:digest]` split, or undefined for anything else (a tag, `latest`, a bad path). */
export function parseImage(image: string): { repository: string; digest?: string } | undefined {
  const [repository = "", digest, ...rest] = image.split("@");
  if (rest.length > 0 || !REPOSITORY.test(repository)) return undefined;
  if (digest === undefined) return { repository };
  return DIGEST.test(digest) ? { repository, digest } : undefined;
}

/** The stack config of the bridge (`nova-matrix:bridge`). */
export const bridgeDeployConfigSchema = z.strictObject({
  /**
   * The bridge image by digest, `<repository>@sha256:<digest>`, never a tag: the workflow's image job sets it to what
   * it pushed. The stack files hold the repository alone until then (infra/bridge-deploy `deployedImage`).
   */
  image: z.string().refine((image) => parseImage(image) !== undefined, {
    error:
      "expected the image repository, e.g. europe-docker.pkg.dev/nova-chat-prod/nova/nova-bridge, or it with " +
      "@sha256:<64 hex digits>: the bridge is deployed by digest, never by tag",
  }),
  resources: z
    .strictObject({
      requests: z.strictObject({ cpu: z.string(), memory: z.string() }),
      limits: z.strictObject({ cpu: z.string().optional(), memory: z.string() }),
    })
    .default(DEFAULT_BRIDGE_RESOURCES),
  database: z
    .strictObject({
      name: z
        .string()
        .regex(/^[a-z_][a-z0-9_]{0,62}$/, { error: "expected a lowercase Postgres identifier" }),
      user: z
        .string()
        .regex(/^[a-z_][a-z0-9_]{0,62}$/, { error: "expected a lowercase Postgres identifier" }),
    })
    .default({ name: "nova_bridge", user: "nova_bridge" }),
  /**
   * The API reference at `/v1/docs` and the console page at `/console` (BRIDGE_DEV_PAGES). Both only read the
   * public API with a token the visitor brings, but they show the API's shape to whoever reaches the bridge: on for
   * staging, off unless set (prod).
   */
  devPages: z.boolean().default(false),
  /** `keepers` per generated secret: change one to rotate it. */
  rotation: z
    .strictObject({
      apiToken: z.string().optional(),
      signingKey: z.string().optional(),
      databasePassword: z.string().optional(),
    })
    .default({}),
});
export type BridgeDeployConfig = z.infer<typeof bridgeDeployConfigSchema>;
