// The bridge's public API. Everything a caller needs is exported here; deeper paths are internal.

export {
  CONVERSATION_ALIAS_PREFIX,
  conversationAlias,
  escapeLocalpart,
  GHOST_PREFIX,
  ghostUserId,
  InvalidIdError,
  novaUserIdOf,
  SERVICE_LOCALPART,
  unescapeLocalpart,
} from "@nova-matrix/contracts";
export {
  type Bridge,
  type BridgeOptions,
  createLogger,
  type SyncStatus,
  startBridge,
} from "./bridge.ts";
export {
  type BridgeConfig,
  ConfigError,
  configFromEnv,
  configFromStackOutputs,
  configFromStackOutputsFile,
  type EnabledConfig,
  parseConfig,
  SETTING_NAMES,
} from "./config/config.ts";
export { Secret } from "./config/secret.ts";
export {
  CONVERSATION_STATE_TYPE,
  type Conversation,
  type ConversationKind,
  Conversations,
} from "./core/conversations.ts";
export {
  ConversationConflictError,
  ConversationNotFoundError,
  InvalidInputError,
  MessageNotFoundError,
  UploadRejectedError,
} from "./core/errors.ts";
export {
  audioContentSchema,
  type BridgeEvent,
  type BridgeEventType,
  bridgeEventSchema,
  type MessageContent,
  messageContentSchema,
  messageDeletedSchema,
  messageEditedSchema,
  messageNewSchema,
  textContentSchema,
} from "./core/events.ts";
export {
  type DeleteInput,
  type EditInput,
  type HistoryPage,
  Messages,
  type SendAudioInput,
  type SendTextInput,
  type Sent,
} from "./core/messages.ts";
export { HomeserverUnreachableError, MatrixError, TokenRejectedError } from "./matrix/errors.ts";
export type { RetryPolicy } from "./matrix/retry.ts";
export { PostgresEventStore } from "./store/postgres.ts";
export type { EventStore, LoggedEvent } from "./store/store.ts";
