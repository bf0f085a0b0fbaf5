// realtime-chat-service's view of Matrix: the MATRIX_* keys of the ConfigMap and the token Secret it reads (the
// seed's names). Those objects belong to realtime-chat-service (its own keys live beside ours), so the program patches
// only its keys, by server-side apply, and never deletes them.
import { MATRIX_ACCESS_TOKEN, type MatrixSettings, matrixConfigData } from "@nova-matrix/contracts";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";

export const CHAT_SERVICE_CONFIG_MAP = "realtime-chat-service-config";
export const CHAT_SERVICE_TOKEN_SECRET = "nova-matrix-service-token";

/**
 * The hand-made deployment wrote these keys with `kubectl` (another field manager), so the first server-side apply
 * conflicts on them; forcing takes over exactly the keys the patch names and leaves every other key and owner alone.
 */
export const PATCH_FORCE = { "pulumi.com/patchForce": "true" } as const;

export interface ChatServiceWiringArgs {
  namespace: pulumi.Input<string>;
  config: MatrixSettings;
  /** The appservice's as_token, used with `?user_id=<serviceUser>`. */
  accessToken: pulumi.Output<string>;
}

export class ChatServiceWiring extends pulumi.ComponentResource {
  constructor(name: string, args: ChatServiceWiringArgs, opts?: pulumi.ComponentResourceOptions) {
    super("nova:chat-service:ChatServiceWiring", name, {}, opts);
    // retainOnDelete: `pulumi destroy` or a rename must not take realtime-chat-service's settings away.
    const keep = { parent: this, retainOnDelete: true };
    new k8s.core.v1.ConfigMapPatch(
      `${name}-config`,
      {
        metadata: { name: CHAT_SERVICE_CONFIG_MAP, namespace: args.namespace, annotations: PATCH_FORCE },
        data: matrixConfigData(args.config),
      },
      keep,
    );
    new k8s.core.v1.SecretPatch(
      `${name}-token`,
      {
        metadata: { name: CHAT_SERVICE_TOKEN_SECRET, namespace: args.namespace, annotations: PATCH_FORCE },
        type: "Opaque",
        stringData: { [MATRIX_ACCESS_TOKEN]: pulumi.secret(args.accessToken) },
      },
      keep,
    );
    this.registerOutputs({});
  }
}
