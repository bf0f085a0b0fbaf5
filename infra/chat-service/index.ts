// realtime-chat-service's view of Matrix: the ConfigMap and the token Secret it reads (the seed's names).
import { MATRIX_ACCESS_TOKEN, type MatrixSettings, matrixConfigData } from "@nova-matrix/contracts";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";

export const CHAT_SERVICE_CONFIG_MAP = "realtime-chat-service-config";
export const CHAT_SERVICE_TOKEN_SECRET = "nova-matrix-service-token";

export interface ChatServiceWiringArgs {
  namespace: pulumi.Input<string>;
  config: MatrixSettings;
  /** The appservice's as_token, used with `?user_id=<serviceUser>`. */
  accessToken: pulumi.Output<string>;
}

export class ChatServiceWiring extends pulumi.ComponentResource {
  constructor(name: string, args: ChatServiceWiringArgs, opts?: pulumi.ComponentResourceOptions) {
    super("nova:chat-service:ChatServiceWiring", name, {}, opts);
    new k8s.core.v1.ConfigMap(
      `${name}-config`,
      {
        metadata: { name: CHAT_SERVICE_CONFIG_MAP, namespace: args.namespace },
        data: matrixConfigData(args.config),
      },
      { parent: this },
    );
    new k8s.core.v1.Secret(
      `${name}-token`,
      {
        metadata: { name: CHAT_SERVICE_TOKEN_SECRET, namespace: args.namespace },
        type: "Opaque",
        stringData: { [MATRIX_ACCESS_TOKEN]: pulumi.secret(args.accessToken) },
      },
      { parent: this },
    );
    this.registerOutputs({});
  }
}
