import { createHash } from "node:crypto";
import { conversationAlias, ghostUserId, novaUserIdOf } from "@nova-matrix/contracts";
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
import type { EarlierSend, MediaIndex, SendKind, SendRequest, SentLog } from "../store/store.ts";
import { type Probed, probeAttachment, UnsupportedAttachmentError } from "./attachments.ts";
import type { Authors, DropReason } from "./authors.ts";
import type { Conversations } from "./conversations.ts";
import {
  IdempotencyKeyReusedError,
  InvalidInputError,
  MessageNotFoundError,
  NotAuthorError,
  UploadRejectedError,
} from "./errors.ts";
import { type BridgeEvent, CLEANUP_MARKER, convertEvent, type MessageContent } from "./events.ts";
import { asMatrixId, check, inputSchemas } from "./input.ts";
import { KeyedSerialQueue } from "./send-queue.ts";
import { MemorySentLog } from "./sent-log.ts";

/** A digest of a request field's value, for the idempotency check (the value itself is not kept). */
const digest = (value: string | Uint8Array) => createHash("sha256").update(value).digest("base64url");

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
    // Not Synapse's own text: it names rooms and Matrix users, which are not the caller's business.
    `${input.senderId} may not do this in conversation ${input.conversationId} (not a member?)`,
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
  /** Who deletes it: only the author may. Without it, the author (who must be a Nova user) deletes it. */
  senderId?: string;
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
  /** Remembers sends beyond Synapse's 30-minute, in-memory transaction cache (default: in memory, bounded). */
  sentLog?: SentLog;
  /** Who wrote which message (edits and deletions are the author's only). */
  authors: Authors;
  /** Hears of each event history leaves out (an edit by someone else than the author). */
  onDropped?: (event: BridgeEvent, reason: DropReason) => void;
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
  readonly #sentLog: SentLog;
  readonly #queue = new KeyedSerialQueue();
  #uploadLimit: Promise<number | undefined> | undefined;

  constructor(deps: MessagesDeps) {
    this.#deps = deps;
    this.#sentLog = deps.sentLog ?? new MemorySentLog();
  }

  /**
   * Sends a text message. The idempotency key is bound to its first request: the same key from the same sender
   * answers the first send's message (with its stored content); asking for another conversation, kind or text
   * with it throws {@link IdempotencyKeyReusedError}.
   */
  async sendText(input: SendTextInput): Promise<Sent> {
    const text = check("text", inputSchemas.text, input?.text);
    const prepared = await this.#prepare(input);
    const claim = await this.#claim(prepared, "text", { text: digest(text) });
    return this.#send(prepared, claim, { msgtype: "m.text", body: text }, { kind: "text", body: text });
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
    const prepared = await this.#prepare(input);
    // A retry of a file already sent answers with it, and uploads nothing: a second upload would be an orphan,
    // and its URI would not be the message's.
    const claim = await this.#claim(prepared, "media", {
      data: digest(data),
      ...(input.contentType === undefined ? {} : { contentType: digest(input.contentType) }),
      ...(filename === undefined ? {} : { filename: digest(filename) }),
      ...(durationMs === undefined ? {} : { durationMs: digest(String(durationMs)) }),
    });
    if (claim.sent) return withUrl(claim.sent);
    const body = filename ?? `${probed.kind}.${probed.ext}`;
    const url = await upload(this.#deps.client, data, probed.mimetype, body, prepared.senderMatrixId);
    const content = attachmentContent(probed, { body, url, size: data.byteLength, durationMs });
    const sent = await this.#send(prepared, claim, toMatrixContent(content), content);
    await this.#deps.mediaIndex?.recordMedia(url, prepared.conversationId, sent.messageId);
    return withUrl(sent);
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

  /**
   * Replaces a text message's content (`m.replace`, with the `* ` fallback for clients without edits). Only its
   * author may: anyone else gets {@link NotAuthorError}.
   */
  async edit(input: EditInput): Promise<Sent> {
    const text = check("text", inputSchemas.text, input?.text);
    const target = check("messageId", inputSchemas.messageId, input.messageId);
    const prepared = await this.#prepare(input);
    const original = await this.#originalOf(prepared.roomId, target);
    if (original.sender !== prepared.senderMatrixId)
      throw new NotAuthorError(
        "senderId",
        `${input.senderId} did not write this message: only its author may edit it`,
      );
    const claim = await this.#claim(prepared, "edit", { messageId: digest(original.id), text: digest(text) });
    return this.#send(
      prepared,
      claim,
      {
        msgtype: "m.text",
        body: `* ${text}`,
        "m.new_content": { msgtype: "m.text", body: text },
        "m.relates_to": { rel_type: "m.replace", event_id: original.id },
      },
      { kind: "text", body: text },
    );
  }

  /**
   * Redacts a message with a reason, and its author's edits too (their content would otherwise survive). Only the
   * author may: without `senderId` the author's ghost redacts (a message by a Matrix user who is not a Nova user
   * cannot be deleted here); a `senderId` that is not the author gets {@link NotAuthorError}.
   */
  async delete(input: DeleteInput): Promise<{ redactionId: string }> {
    const messageId = check("messageId", inputSchemas.messageId, input?.messageId);
    const reason = check("reason", inputSchemas.reason, input.reason);
    const conversationId = check("conversationId", inputSchemas.conversationId, input.conversationId);
    if (input.senderId !== undefined) check("senderId", inputSchemas.userId, input.senderId);
    const { roomId } = await this.#deps.conversations.get(conversationId);
    const original = await this.#originalOf(roomId, messageId);
    const author = novaUserIdOf(original.sender, this.#deps.serverName);
    if (author === undefined)
      throw new NotAuthorError(
        "messageId",
        "its author is not a Nova user: only they can delete it, from their Matrix client",
      );
    if (input.senderId !== undefined && input.senderId !== author)
      throw new NotAuthorError(
        "senderId",
        `${input.senderId} did not write this message: only its author may delete it`,
      );
    const prepared = await this.#prepare({ ...input, senderId: author });
    const claim = await this.#claim(prepared, "delete", {
      messageId: digest(original.id),
      reason: digest(reason ?? ""),
    });
    if (claim.sent) return { redactionId: claim.sent.messageId };
    const { client } = this.#deps;
    const { senderMatrixId, txnId } = prepared;
    return this.#queue
      .run(roomId, async () => {
        // Its edits, listed before the redaction (Synapse stops listing a redacted event's relations).
        const edits = await replacementsOf(client, roomId, original.id, senderMatrixId);
        const redactionId = await this.#once(
          prepared,
          claim,
          () =>
            redact(
              client,
              roomId,
              original.id,
              txnId,
              reason === undefined ? {} : { reason },
              senderMatrixId,
            ),
          () => findSentByTransactionId(client, roomId, "m.room.redaction", txnId, senderMatrixId),
          undefined,
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
        throw explainForbidden(error, { conversationId, senderId: author });
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
    const converted: BridgeEvent[] = [];
    for (const raw of page.chunk) {
      const result = convertEvent(raw, conversation.conversationId, this.#deps.serverName);
      if (result.kind === "event") converted.push(result.event);
    }
    // The same rule as the live stream: an edit by someone else than the author is not part of the history.
    const events = await this.#deps.authors.keepAuthorsEdits(
      conversation.roomId,
      converted,
      (event, reason) => this.#deps.onDropped?.(event, reason),
    );
    return { events, ...(page.end && page.chunk.length > 0 ? { nextCursor: page.end } : {}) };
  }

  /** Sends a room message once per claimed key, in order with the conversation's other sends. */
  async #send(
    prepared: Prepared,
    claim: Claim,
    matrixContent: Record<string, unknown>,
    content: MessageContent,
  ): Promise<Sent & { content: MessageContent }> {
    if (claim.sent)
      return { ...claim.sent, content: (claim.sent.content as MessageContent | undefined) ?? content };
    const { client } = this.#deps;
    const { roomId, senderMatrixId, txnId } = prepared;
    const messageId = await this.#queue.run(roomId, () =>
      this.#once(
        prepared,
        claim,
        () =>
          sendEvent(client, roomId, "m.room.message", txnId, matrixContent, senderMatrixId).catch(
            (error: unknown) => {
              throw explainForbidden(error, prepared);
            },
          ),
        () => findSentByTransactionId(client, roomId, "m.room.message", txnId, senderMatrixId),
        content,
      ),
    );
    this.#deps.authors.remember(messageId, senderMatrixId);
    return { messageId, content };
  }

  async #prepare(input: {
    conversationId: string;
    senderId: string;
    idempotencyKey: string;
  }): Promise<Prepared> {
    const conversationId = check("conversationId", inputSchemas.conversationId, input.conversationId);
    const senderId = check("senderId", inputSchemas.userId, input.senderId);
    const key = check("idempotencyKey", inputSchemas.idempotencyKey, input.idempotencyKey);
    // Ids that cannot become Matrix ids are the caller's mistake (400), found before any request.
    const senderMatrixId = asMatrixId("senderId", () => ghostUserId(senderId, this.#deps.serverName));
    asMatrixId("conversationId", () => conversationAlias(conversationId, this.#deps.serverName));
    const { roomId } = await this.#deps.conversations.get(conversationId);
    // The sender's ghost is not registered here: every member's ghost was registered when it joined, and a
    // failed send by a stranger must leave no user behind in Synapse (it answers 403: "not registered").
    return {
      conversationId,
      senderId,
      roomId,
      senderMatrixId,
      txnId: transactionId(senderMatrixId, key),
    };
  }

  /**
   * Binds the key to this request, or finds what it was bound to. A key is the sender's: its first request
   * decides the conversation, the kind and the content it stands for, and a repeat asking for anything else is
   * refused ({@link IdempotencyKeyReusedError}) rather than answered with the first message. A repeat of the same
   * request answers the first send's message; one whose earlier attempt has no recorded result is uncertain.
   */
  async #claim(prepared: Prepared, kind: SendKind, fingerprint: Record<string, string>): Promise<Claim> {
    const request: SendRequest = { conversationId: prepared.conversationId, kind, fingerprint };
    // Recorded before the send (a database that cannot record it fails the call before anything goes out).
    const earlier = await this.#sentLog.recordAttempt(prepared.txnId, request);
    if (!earlier) return { sent: undefined, uncertain: false };
    if (earlier.request) {
      const field = differingField(earlier.request, request);
      if (field)
        throw new IdempotencyKeyReusedError(
          field,
          field === "kind"
            ? `this client_message_id was already used by this sender for a ${earlier.request.kind} request, not ${kind}`
            : `this client_message_id was already used by this sender with another ${FIELD_LABELS[field] ?? field}`,
        );
    }
    if (earlier.eventId === undefined) return { sent: undefined, uncertain: true };
    if (earlier.request && earlier.content !== undefined)
      return { sent: { messageId: earlier.eventId, content: earlier.content } };
    return { sent: await this.#legacySent(prepared, earlier) };
  }

  /**
   * A send recorded by a version that kept neither the request nor the content: it stands for this request only if
   * its event is in this conversation's room; its content is read back from there.
   */
  async #legacySent(prepared: Prepared, earlier: EarlierSend): Promise<SentRecord> {
    const eventId = earlier.eventId as string;
    const raw = await getEvent(this.#deps.client, prepared.roomId, eventId).catch((error: unknown) => {
      if (statusOf(error) === 404)
        throw new IdempotencyKeyReusedError(
          "conversationId",
          "this client_message_id was already used by this sender with another conversation",
        );
      throw error;
    });
    const converted = convertEvent(raw, prepared.conversationId, this.#deps.serverName);
    const content =
      converted.kind === "event" && converted.event.type !== "message.deleted"
        ? converted.event.content
        : undefined;
    return { messageId: eventId, content };
  }

  /**
   * Sends at most once per transaction id: Synapse's cache for a short retry, the sent log beyond it. A key whose
   * earlier attempt has no recorded result may have taken effect all the same (Synapse stored the event, then died
   * or failed before answering and forgot the transaction id; or this process died): for such a key the room is
   * searched first (`find`), and a failed search fails the call rather than sending blind.
   */
  async #once(
    prepared: Prepared,
    claim: Claim,
    send: () => Promise<string>,
    find: () => Promise<{ event_id: string } | undefined>,
    content: MessageContent | undefined,
  ): Promise<string> {
    if (claim.sent) return claim.sent.messageId;
    const eventId = (claim.uncertain ? (await find())?.event_id : undefined) ?? (await send());
    return this.#sentLog.recordSent(prepared.txnId, eventId, content);
  }

  /**
   * The message an id stands for, and who wrote it: an edit points at the original message, never at another edit
   * (the spec's rule for edits of edits).
   */
  async #originalOf(roomId: string, messageId: string): Promise<{ id: string; sender: string }> {
    const event = await this.#event(roomId, messageId);
    const relation = (
      event.content as { "m.relates_to"?: { rel_type?: string; event_id?: string } } | undefined
    )?.["m.relates_to"];
    const original =
      relation?.rel_type === "m.replace" && relation.event_id
        ? await this.#event(roomId, relation.event_id)
        : event;
    return { id: original.event_id as string, sender: String(original.sender) };
  }

  async #event(roomId: string, messageId: string) {
    const event = await getEvent(this.#deps.client, roomId, messageId).catch((error: unknown) => {
      if (statusOf(error) === 404)
        throw new MessageNotFoundError("messageId", "no such message in this conversation");
      throw error;
    });
    if (event.type !== "m.room.message")
      throw new MessageNotFoundError("messageId", "no such message in this conversation");
    return event;
  }

  #maxUploadSize(): Promise<number | undefined> {
    this.#uploadLimit ??= maxUploadSize(this.#deps.client).catch((error: unknown) => {
      this.#uploadLimit = undefined;
      throw error;
    });
    return this.#uploadLimit;
  }
}

interface Prepared {
  conversationId: string;
  senderId: string;
  roomId: string;
  senderMatrixId: string;
  txnId: string;
}

interface SentRecord {
  messageId: string;
  /** The content the first send answered with (undefined for a deletion, or a message since redacted). */
  content: unknown;
}

/** What a key's claim found: the first send's result, or none (and whether an earlier attempt may have sent). */
type Claim = { sent: SentRecord } | { sent: undefined; uncertain: boolean };

/** How an error message names a fingerprinted field. */
const FIELD_LABELS: Record<string, string> = {
  conversationId: "conversation",
  text: "text",
  data: "file",
  contentType: "content type",
  filename: "file name",
  durationMs: "duration",
  messageId: "message",
  reason: "reason",
};

/** The first field in which two requests differ, or undefined when they are the same request. */
function differingField(first: SendRequest, again: SendRequest): string | undefined {
  if (first.conversationId !== again.conversationId) return "conversationId";
  if (first.kind !== again.kind) return "kind";
  const fields = new Set([...Object.keys(first.fingerprint), ...Object.keys(again.fingerprint)]);
  for (const field of fields) if (first.fingerprint[field] !== again.fingerprint[field]) return field;
  return undefined;
}

/** A sent attachment with its URI beside it (what the API answers). */
function withUrl(sent: { messageId: string; content?: unknown }): Sent {
  const content = sent.content as MessageContent | undefined;
  return {
    messageId: sent.messageId,
    ...(content && "url" in content ? { url: content.url, content } : content ? { content } : {}),
  };
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
