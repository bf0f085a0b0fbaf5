// Names shared by the infra program, the appservice registration and the bridge. Pure: no Pulumi.

/** Localpart of the backend's service user, `@nova-service:<server>` (in the appservice's exclusive namespace). */
export const SERVICE_LOCALPART = "nova-service";
/** The appservice's own bot (`sender_localpart`); Synapse refuses `/sync` for it, so the bridge acts as the service user. */
export const SENDER_LOCALPART = "nova-bridge";
/** Ghost users of Nova's people: `@nova_<id>:<server>`. */
export const GHOST_PREFIX = "nova_";
/** Conversation room aliases: `#nova_conv_<conversation id>:<server>`. */
export const CONVERSATION_ALIAS_PREFIX = "nova_conv_";
/** The appservice registration's `id`. */
export const APPSERVICE_ID = "nova-bridge";
/** `MATRIX_DEVICE_NAME` given to realtime-chat-service. */
export const DEVICE_NAME = "nova-realtime-chat-service";

/** `@<localpart>:<serverName>` */
export function userId(localpart: string, serverName: string): string {
  return `@${localpart}:${serverName}`;
}

/** The full user id of the service user on a server. */
export function serviceUserId(serverName: string): string {
  return userId(SERVICE_LOCALPART, serverName);
}
