/** Bad input from the caller: names the field and what is expected. Nothing was sent to Matrix. */
export class InvalidInputError extends Error {
  override name = "InvalidInputError";
  readonly field: string;
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.field = field;
  }
}

/** A conversation exists with another kind (DM vs group) or other DM members than asked for. */
export class ConversationConflictError extends Error {
  override name = "ConversationConflictError";
  readonly conversationId: string;
  constructor(conversationId: string, message: string) {
    super(`conversation ${conversationId}: ${message}`);
    this.conversationId = conversationId;
  }
}

/** No room exists for the conversation (ensure it first). */
export class ConversationNotFoundError extends Error {
  override name = "ConversationNotFoundError";
  readonly conversationId: string;
  constructor(conversationId: string) {
    super(`conversation ${conversationId} has no room; ensure it first`);
    this.conversationId = conversationId;
  }
}

/** An upload the homeserver would refuse (too large) or the bridge does not carry (not audio). */
export class UploadRejectedError extends InvalidInputError {
  override name = "UploadRejectedError";
}

/** The message id names no message in that conversation (an InvalidInputError too, for callers that do not care). */
export class MessageNotFoundError extends InvalidInputError {
  override name = "MessageNotFoundError";
}

/** Only a message's author may edit or delete it (the Matrix spec ignores a replacement from another sender). */
export class NotAuthorError extends Error {
  override name = "NotAuthorError";
  readonly field: string;
  constructor(field: string, message: string) {
    super(message);
    this.field = field;
  }
}

/**
 * An idempotency key already used by this sender for another request (another conversation, kind of message or
 * content): a client bug. Answering the first message would lose the second one behind a success.
 */
export class IdempotencyKeyReusedError extends Error {
  override name = "IdempotencyKeyReusedError";
  /** The field whose value differs from the first request's (`conversationId`, `kind`, `text`, `data`...). */
  readonly field: string;
  constructor(field: string, message: string) {
    super(message);
    this.field = field;
  }
}
