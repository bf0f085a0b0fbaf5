// The bridge's stack config (`nova-matrix:bridge`): part of the config model, pure, imported by the schema and by the
// bridge's component (never the other way round).
import { z } from "zod";

/** The bridge container's requests and limits unless the stack config sets them. */
export const DEFAULT_BRIDGE_RESOURCES = {
  requests: { cpu: "100m", memory: "256Mi" },
  limits: { memory: "512Mi" },
};

/** The stack config of the bridge (`nova-matrix:bridge`). */
export const bridgeDeployConfigSchema = z.strictObject({
  /** The image, with a tag or a digest, never `latest`: the deployed version is stack config. */
  image: z
    .string()
    .regex(/^[a-z0-9][a-z0-9.\-/_:]*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[a-f0-9]{64})$/, {
      error:
        "expected an image with a tag or digest, such as europe-docker.pkg.dev/nova/images/nova-bridge:0.1.0",
    })
    .refine((image) => !/:latest$/.test(image), { error: "pin a version: latest is not allowed" }),
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
