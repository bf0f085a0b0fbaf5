// realtime-chat-service's view of Matrix: the ConfigMap and the token Secret it reads (the seed's names).
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";

export const CHAT_SERVICE_CONFIG_MAP = "realtime-chat-service-config";
export const CHAT_SERVICE_TOKEN_SECRET = "nova-matrix-service-token";

/** The ConfigMap's data: every value a string, no secret among them. */
export function chatServiceConfigData(settings: {
  enabled: boolean;
  homeserverUrl: string;
  serviceUser: string;
  deviceName: string;
  serverName: string;
}): Record<string, string> {
  return {
    MATRIX_ENABLED: settings.enabled ? "true" : "false",
    MATRIX_HOMESERVER_URL: settings.homeserverUrl,
    MATRIX_SERVICE_USER: settings.serviceUser,
    MATRIX_DEVICE_NAME: settings.deviceName,
    MATRIX_SERVER_NAME: settings.serverName,
  };
}

export interface ChatServiceWiringArgs {
  namespace: pulumi.Input<string>;
  config: Parameters<typeof chatServiceConfigData>[0];
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
        data: chatServiceConfigData(args.config),
      },
      { parent: this },
    );
    new k8s.core.v1.Secret(
      `${name}-token`,
      {
        metadata: { name: CHAT_SERVICE_TOKEN_SECRET, namespace: args.namespace },
        type: "Opaque",
        stringData: { MATRIX_ACCESS_TOKEN: pulumi.secret(args.accessToken) },
      },
      { parent: this },
    );
    this.registerOutputs({});
  }
}
