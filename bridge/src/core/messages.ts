import { createHash } from "node:crypto";
import { conversationAlias, ghostUserId } from "@nova-matrix/contracts";
import type { Logger } from "pino";
import type { MatrixClient } from "../matrix/client.ts";
import { statusOf } from "../matrix/errors.ts";
import { maxUploadSize, upload } from "../matrix/media.ts";
import {
  findSentByTransactionId,
  getEvent,
  messages,
  redact,
  replacementsOf,
  sendEvent,
} from "../matrix/rooms.ts";
import type { GhostRegistry } from "../matrix/users.ts";
import type { MediaIndex, SentLog } from "../store/store.ts";
import { type Probed, probeAttachment, UnsupportedAttachmentError } from "./attachments.ts";
import type { Conversations } from "./conversations.ts";
import { InvalidInputError, MessageNotFoundError, UploadRejectedError } from "./errors.ts";
import { type BridgeEvent, CLEANUP_MARKER, convertEvent, type MessageContent } from "./events.ts";
import { asMatrixId, check, inputSchemas } from "./input.ts";
import { KeyedSerialQueue } from "./send-queue.ts";

/** The Matrix transaction id for a caller's idempotency key: the same key from the same sender is the same send. */
export function transactionId(senderMatrixId: string, idempotencyKey: string): string {
  // Synapse scopes an appservice's transaction ids by path only, not by the asserted user: hashing the sender in
  // keeps two users' keys apart; hashing also keeps arbitrary keys URL-safe.
  return `nova.${createHash("sha256").update(`${senderMatrixId}\n${idempotencyKey}`).digest("base64url")}`;
}

/** A 403 on a send means the sender may not act there (not a member, or not the author): say so. */
function explainForbidden(error: unknown, input: { conversationId: string; senderId: string }): unknown {
  if (statusOf(error) !== 403) return error;
  return new InvalidInputError(
    "senderId",
    `${input.senderId} may not do this in conversation ${input.conversationId}: ${(error as Error).message}`,
  );
}

/** The result of a send. */
export interface Sent {
  /** The Matrix event id: the message id that events and history use. */
  messageId: string;
  /** For attachments: the `mxc://` URI of the uploaded file. */
  url?: string;
  /** For attachments: the content as events carry it (kind, type and sizes probed from the bytes). */
  content?: MessageContent;
}

export interface SendTextInput {
  conversationId: string;
  senderId: string;
  text: string;
  idempotencyKey: string;
}

export interface SendMediaInput {
  conversationId: string;
  senderId: string;
  /** The file's bytes: its kind (image, video, audio, file) is decided from them. */
  data: Uint8Array;
  /** The Content-Type the caller declared (optional): refused when the bytes say otherwise. */
  contentType?: string;
  /** Shown as the message's body; default `<kind>.<ext>`. */
  filename?: string;
  /** For audio and video whose container does not say (the bytes win when they do). */
  durationMs?: number;
  idempotencyKey: string;
}

export interface SendAudioInput {
  conversationId: string;
  senderId: string;
  audio: Uint8Array;
  mimetype: string;
  durationMs?: number;
  filename?: string;
  idempotencyKey: string;
}

export interface EditInput {
  conversationId: string;
  senderId: string;
  /** The message to edit (an edit's id is accepted too: the edit then applies to its original). */
  messageId: string;
  text: string;
  idempotencyKey: string;
}

export interface DeleteInput {
  conversationId: string;
  /** Who deletes it (the author; the ghost redacts its own message). */
  senderId: string;
  messageId: string;
  reason?: string;
  idempotencyKey: string;
}

export interface HistoryPage {
  /** Newest first, in the same shape as the live events. */
  events: BridgeEvent[];
  /** Pass as `before` for the next (older) page; absent at the start of the conversation. */
  nextCursor?: string;
}

export interface MessagesDeps {
  /** Remembers sends beyond Synapse's 30-minute, in-memory transaction cache (optional: without it, only Synapse's). */
  sentLog?: SentLog;
  /** Records which conversation an uploaded file was sent in, for the media route's access rule. */
  mediaIndex?: MediaIndex;
  client: MatrixClient;
  ghosts: GhostRegistry;
  conversations: Conversations;
  serverName: string;
  logger: Logger;
}

/** Filter for `/messages`: only the event types that become bridge events. */
export const MESSAGE_EVENT_FILTER = JSON.stringify({
  types: ["m.room.message", "m.room.redaction"],
  lazy_load_members: true,
});

/** Sending, editing, deleting and reading messages. Sends run in order per conversation, concurrently across. */
export class Messages {
  readonly #deps: MessagesDeps;
  readonly #queue = new KeyedSerialQueue();
  /** Transaction ids whose last send failed in this process: it may have happened anyway. */
  readonly #uncertain = new Set<string>();
  #uploadLimit: Promise<number | undefined> | undefined;

  constructor(deps: MessagesDeps) {
    this.#deps = deps;
  }

  async sendText(input: SendTextInput): Promise<Sent> {
    const text = check("text", inputSchemas.text, input?.text);
    return this.#send(input, { msgtype: "m.text", body: text });
  }

  /**
   * Uploads a file and sends it as `m.image`, `m.video`, `m.audio` or `m.file`, the kind decided from the bytes.
   * Refuses empty, too-large (the homeserver's `m.upload.size`) and unsupported files before any byte goes out.
   */
  async sendMedia(input: SendMediaInput): Promise<Sent> {
    const data = check("data", inputSchemas.bytes, input?.data);
    const durationMs = check("durationMs", inputSchemas.durationMs, input.durationMs);
    const filename = check("filename", inputSchemas.filename, input.filename);
    if (data.byteLength === 0) throw new UploadRejectedError("data", "is empty");
    const limit = await this.#maxUploadSize();
    if (limit !== undefined && data.byteLength > limit)
      throw new UploadRejectedError(
        "data",
        `is ${data.byteLength} bytes; the homeserver accepts at most ${limit}`,
      );
    const probed = await probeAttachment(data, input.contentType).catch((error: unknown) => {
      if (error instanceof UnsupportedAttachmentError)
        throw new UploadRejectedError("mimetype", error.message);
      throw error;
    });
    const { roomId, senderMatrixId, txnId } = await this.#prepare(input);
    // A retry of a file already sent answers with it, and uploads nothing: a second upload would be an orphan,
    // and its URI would not be the message's.
    const earlier = await this.#deps.sentLog?.sentEventId(txnId);
    if (earlier) {
      const raw = await getEvent(this.#deps.client, roomId, earlier);
      const converted = convertEvent(raw, input.conversationId, this.#deps.serverName);
      const content =
        converted.kind === "event" && converted.event.type === "message.new"
          ? converted.event.content
          : undefined;
      return { messageId: earlier, ...(content && "url" in content ? { url: content.url, content } : {}) };
    }
    const body = filename ?? `${probed.kind}.${probed.ext}`;
    const url = await upload(this.#deps.client, data, probed.mimetype, body, senderMatrixId);
    const content = attachmentContent(probed, { body, url, size: data.byteLength, durationMs });
    const sent = await this.#send(input, toMatrixContent(content));
    await this.#deps.mediaIndex?.recordMedia(url, input.conversationId, sent.messageId);
    return { ...sent, url, content };
  }

  /** {@link sendMedia} for audio only (the declared type must be `audio/*`, and so must the bytes). */
  async sendAudio(input: SendAudioInput): Promise<Sent> {
    const audio = check("audio", inputSchemas.bytes, input?.audio);
    if (!inputSchemas.mimetype.safeParse(input.mimetype).success)
      throw new UploadRejectedError("mimetype", "expected an audio MIME type (audio/...)");
    const { audio: _audio, mimetype, ...rest } = input;
    return this.sendMedia({ ...rest, data: audio, contentType: mimetype }).catch((error: unknown) => {
      // The caller named the field `audio`.
      if (error instanceof UploadRejectedError && error.field === "data")
        throw new UploadRejectedError("audio", error.message.slice("data: ".length));
      throw error;
    });
  }

  /** Replaces a text message's content (`m.replace`, with the `* ` fallback for clients without edits). */
  async edit(input: EditInput): Promise<Sent> {
    const text = check("text", inputSchemas.text, input?.text);
    const target = check("messageId", inputSchemas.messageId, input.messageId);
    const { roomId } = await this.#deps.conversations.get(
      check("conversationId", inputSchemas.conversationId, input.conversationId),
    );
    const original = await this.#originalOf(roomId, target);
    return this.#send(input, {
      msgtype: "m.text",
      body: `* ${text}`,
      "m.new_content": { msgtype: "m.text", body: text },
      "m.relates_to": { rel_type: "m.replace", event_id: original },
    });
  }

  /** Redacts a message with a reason, and its edits too (their content would otherwise survive). */
  async delete(input: DeleteInput): Promise<{ redactionId: string }> {
    const messageId = check("messageId", inputSchemas.messageId, input?.messageId);
    const reason = check("reason", inputSchemas.reason, input.reason);
    const { roomId, senderMatrixId, txnId } = await this.#prepare(input);
    return this.#queue
      .run(roomId, async () => {
        const { client } = this.#deps;
        const original = await this.#originalOf(roomId, messageId);
        // Its edits, listed before the redaction (Synapse stops listing a redacted event's relations).
        const edits = await replacementsOf(client, roomId, original);
        const redactionId = await this.#once(
          txnId,
          () =>
            redact(client, roomId, original, txnId, reason === undefined ? {} : { reason }, senderMatrixId),
          () => findSentByTransactionId(client, roomId, "m.room.redaction", txnId, senderMatrixId),
        );
        // Then the edits, whose content would otherwise survive the deletion.
        for (const edit of edits)
          await redact(
            client,
            roomId,
            edit,
            `${txnId}.${edit.slice(1, 12)}`,
            { [CLEANUP_MARKER]: true },
            senderMatrixId,
          );
        return { redactionId };
      })
      .catch((error: unknown) => {
        throw explainForbidden(error, input);
      });
  }

  /** A page of the conversation's history, newest first, converted like live events. */
  async history(
    conversationId: string,
    options: { before?: string; limit?: number } = {},
  ): Promise<HistoryPage> {
    const conversation = await this.#deps.conversations.get(conversationId);
    const limit = check("limit", inputSchemas.limit, options.limit ?? 50);
    const page = await messages(this.#deps.client, conversation.roomId, {
      dir: "b",
      limit,
      filter: MESSAGE_EVENT_FILTER,
      ...(options.before ? { from: options.before } : {}),
    });
    const events: BridgeEvent[] = [];
    for (const raw of page.chunk) {
      const result = convertEvent(raw, conversation.conversationId, this.#deps.serverName);
      if (result.kind === "event") events.push(result.event);
    }
    return { events, ...(page.end && page.chunk.length > 0 ? { nextCursor: page.end } : {}) };
  }

  async #send(
    input: { conversationId: string; senderId: string; idempotencyKey: string },
    content: Record<string, unknown>,
  ): Promise<Sent> {
    const { roomId, senderMatrixId, txnId } = await this.#prepare(input);
    const { client } = this.#deps;
    const messageId = await this.#queue.run(roomId, () =>
      this.#once(
        txnId,
        () =>
          sendEvent(client, roomId, "m.room.message", txnId, content, senderMatrixId).catch(
            (error: unknown) => {
              throw explainForbidden(error, input);
            },
          ),
        () => findSentByTransactionId(client, roomId, "m.room.message", txnId, senderMatrixId),
      ),
    );
    return { messageId };
  }

  async #prepare(input: { conversationId: string; senderId: string; idempotencyKey: string }) {
    const conversationId = check("conversationId", inputSchemas.conversationId, input.conversationId);
    const senderId = check("senderId", inputSchemas.userId, input.senderId);
    const key = check("idempotencyKey", inputSchemas.idempotencyKey, input.idempotencyKey);
    // Ids that cannot become Matrix ids are the caller's mistake (400), found before any request.
    const senderMatrixId = asMatrixId("senderId", () => ghostUserId(senderId, this.#deps.serverName));
    asMatrixId("conversationId", () => conversationAlias(conversationId, this.#deps.serverName));
    const { roomId } = await this.#deps.conversations.get(conversationId);
    // The sender's ghost is not registered here: every member's ghost was registered when it joined, and a
    // failed send by a stranger must leave no user behind in Synapse (it answers 403: "not registered").
    return { roomId, senderMatrixId, txnId: transactionId(senderMatrixId, key) };
  }

  /**
   * Sends at most once per transaction id: Synapse's cache for a short retry, the sent log beyond it. A key whose
   * earlier attempt has no recorded result may have taken effect all the same (Synapse stored the event, then died
   * or failed before answering and forgot the transaction id; or this process died): for such a key the room is
   * searched first (`find`), and a failed search fails the call rather than sending blind. Attempts are recorded
   * in the database (across restarts) and remembered in memory (without a sent log).
   */
  async #once(
    txnId: string,
    send: () => Promise<string>,
    find: () => Promise<{ event_id: string } | undefined>,
  ): Promise<string> {
    const log = this.#deps.sentLog;
    const earlier = await log?.sentEventId(txnId);
    if (earlier) return earlier;
    // Recorded before the send (a database that cannot record it fails the call before anything goes out).
    const attemptedBefore = (await log?.recordAttempt?.(txnId)) ?? false;
    let eventId: string;
    try {
      const uncertain = attemptedBefore || this.#uncertain.has(txnId);
      eventId = (uncertain ? (await find())?.event_id : undefined) ?? (await send());
    } catch (error) {
      this.#uncertain.add(txnId);
      // Bounded: the oldest uncertain keys are forgotten first.
      if (this.#uncertain.size > 10_000)
        this.#uncertain.delete(this.#uncertain.values().next().value as string);
      throw error;
    }
    this.#uncertain.delete(txnId);
    return log ? log.recordSent(txnId, eventId) : eventId;
  }

  /** An edit points at the original message, never at another edit (the spec's rule for edits of edits). */
  async #originalOf(roomId: string, messageId: string): Promise<string> {
    const event = await getEvent(this.#deps.client, roomId, messageId).catch((error: unknown) => {
      if (statusOf(error) === 404)
        throw new MessageNotFoundError("messageId", "no such message in this conversation");
      throw error;
    });
    const relation = (
      event.content as { "m.relates_to"?: { rel_type?: string; event_id?: string } } | undefined
    )?.["m.relates_to"];
    return relation?.rel_type === "m.replace" && relation.event_id ? relation.event_id : messageId;
  }

  #maxUploadSize(): Promise<number | undefined> {
    this.#uploadLimit ??= maxUploadSize(this.#deps.client).catch((error: unknown) => {
      this.#uploadLimit = undefined;
      throw error;
    });
    return this.#uploadLimit;
  }
}

type AttachmentContent = Exclude<MessageContent, { kind: "text" }>;

/** The event content of a probed upload (the shape the sync side produces from the Matrix event). */
function attachmentContent(
  probed: Probed,
  sent: { body: string; url: string; size: number; durationMs: number | undefined },
): AttachmentContent {
  const common = { body: sent.body, url: sent.url, mimetype: probed.mimetype, size: sent.size };
  const dims = { width: probed.width ?? null, height: probed.height ?? null };
  const duration_ms = probed.durationMs ?? sent.durationMs ?? null;
  switch (probed.kind) {
    case "image":
      return { kind: "image", ...common, ...dims };
    case "video":
      return { kind: "video", ...common, ...dims, duration_ms };
    case "audio":
      return { kind: "audio", ...common, duration_ms };
    case "file":
      return { kind: "file", ...common };
  }
}

/** The Matrix message for an attachment (`info.w`/`h`/`duration` as the spec names them). */
function toMatrixContent(content: AttachmentContent): Record<string, unknown> {
  const info: Record<string, unknown> = {};
  if (content.mimetype !== null) info.mimetype = content.mimetype;
  if (content.size !== null) info.size = content.size;
  if ("width" in content && content.width !== null) info.w = content.width;
  if ("height" in content && content.height !== null) info.h = content.height;
  if ("duration_ms" in content && content.duration_ms !== null) info.duration = content.duration_ms;
  return { msgtype: `m.${content.kind}`, body: content.body, url: content.url, info };
}
