import { ghostUserId, novaUserIdOf } from "@nova-matrix/contracts";
import { z } from "zod";
import type { RawEvent } from "../matrix/types.ts";

/**
 * The bridge's events, defined once: the sync loop writes them to the event log, history returns them, and the
 * WebSocket service sends them to front ends. `event_id` is the Matrix event that produced the event (the log's
 * de-duplication key); `message_id` is the message the event is about.
 */
export const textContentSchema = z.object({ kind: z.literal("text"), body: z.string() });
/** What every attachment carries: its name (or caption), its `mxc://` URI, and what the sender declared of it. */
const attachment = {
  body: z.string(),
  url: z.string().startsWith("mxc://"),
  mimetype: z.string().nullable(),
  size: z.number().int().nonnegative().nullable(),
};
const dimensions = {
  width: z.number().int().positive().nullable(),
  height: z.number().int().positive().nullable(),
};
const duration = { duration_ms: z.number().int().nonnegative().nullable() };
export const imageContentSchema = z.object({ kind: z.literal("image"), ...attachment, ...dimensions });
export const videoContentSchema = z.object({
  kind: z.literal("video"),
  ...attachment,
  ...dimensions,
  ...duration,
});
export const audioContentSchema = z.object({ kind: z.literal("audio"), ...attachment, ...duration });
export const fileContentSchema = z.object({ kind: z.literal("file"), ...attachment });
export const messageContentSchema = z.discriminatedUnion("kind", [
  textContentSchema,
  imageContentSchema,
  videoContentSchema,
  audioContentSchema,
  fileContentSchema,
]);
/** The attachment kinds, in the order of their Matrix msgtypes (`m.image`, `m.video`, `m.audio`, `m.file`). */
export const ATTACHMENT_KINDS = ["image", "video", "audio", "file"] as const;
export type AttachmentKind = (typeof ATTACHMENT_KINDS)[number];

const base = {
  event_id: z.string(),
  conversation_id: z.string(),
  /**
   * The Nova user id of the author (not the Matrix id); null when the author is a Matrix user outside the bridge's
   * ghosts (staff on a Matrix client, the local stack's dev user): then `matrix_sender_id` says who.
   */
  sender_id: z.string().nullable(),
  /** Only when `sender_id` is null: the author's Matrix user id. */
  matrix_sender_id: z.string().optional(),
  /** Milliseconds since the epoch, as the homeserver stamped the event. */
  origin_server_ts: z.number().int(),
};

export const messageNewSchema = z.object({
  type: z.literal("message.new"),
  ...base,
  message_id: z.string(),
  content: messageContentSchema,
});
export const messageEditedSchema = z.object({
  type: z.literal("message.edited"),
  ...base,
  /** The edit's own id. */
  message_id: z.string(),
  /** The original message this edit replaces (edits of edits point at the original too). */
  replaces_message_id: z.string(),
  content: messageContentSchema,
});
export const messageDeletedSchema = z.object({
  type: z.literal("message.deleted"),
  ...base,
  /** The message that was deleted. */
  message_id: z.string(),
  reason: z.string().nullable(),
});
export const bridgeEventSchema = z.discriminatedUnion("type", [
  messageNewSchema,
  messageEditedSchema,
  messageDeletedSchema,
]);

export type MessageContent = z.infer<typeof messageContentSchema>;
export type BridgeEvent = z.infer<typeof bridgeEventSchema>;
export type BridgeEventType = BridgeEvent["type"];

/** Marks the redactions the bridge makes of a deleted message's edits, so they do not become events of their own. */
export const CLEANUP_MARKER = "org.nova.cleanup";

/** What became of one Matrix event. */
export type Conversion =
  | { kind: "event"; event: BridgeEvent }
  | { kind: "ignored"; reason: string }
  | { kind: "malformed"; reason: string };

const rawEventSchema = z.object({
  event_id: z.string().startsWith("$"),
  type: z.string(),
  sender: z.string().startsWith("@"),
  origin_server_ts: z.number().int(),
  content: z.record(z.string(), z.unknown()),
  redacts: z.string().optional(),
  state_key: z.string().optional(),
});

const textMessage = z.object({ msgtype: z.literal("m.text"), body: z.string() });
// Matrix's attachment info (`w`, `h`, `duration` in ms); every field optional, as senders fill what they know.
const size = z.number().int().nonnegative().optional();
const mediaMessage = <T extends string>(msgtype: T) =>
  z.object({
    msgtype: z.literal(msgtype),
    body: z.string(),
    url: z.string().startsWith("mxc://"),
    info: z
      .object({
        mimetype: z.string().optional(),
        size,
        w: z.number().int().positive().optional(),
        h: z.number().int().positive().optional(),
        duration: size,
      })
      .optional(),
  });
const messageSchema = z.discriminatedUnion("msgtype", [
  textMessage,
  mediaMessage("m.image"),
  mediaMessage("m.video"),
  mediaMessage("m.audio"),
  mediaMessage("m.file"),
]);
const KNOWN_MSGTYPES = new Set(["m.text", "m.image", "m.video", "m.audio", "m.file"]);
const replaceRelation = z.object({
  "m.relates_to": z.object({ rel_type: z.literal("m.replace"), event_id: z.string().startsWith("$") }),
  "m.new_content": messageSchema,
});

function toContent(message: z.infer<typeof messageSchema>): MessageContent {
  if (message.msgtype === "m.text") return { kind: "text", body: message.body };
  const info = message.info;
  const common = {
    body: message.body,
    url: message.url,
    mimetype: info?.mimetype ?? null,
    size: info?.size ?? null,
  };
  const dims = { width: info?.w ?? null, height: info?.h ?? null };
  const length = { duration_ms: info?.duration ?? null };
  switch (message.msgtype) {
    case "m.image":
      return { kind: "image", ...common, ...dims };
    case "m.video":
      return { kind: "video", ...common, ...dims, ...length };
    case "m.audio":
      return { kind: "audio", ...common, ...length };
    case "m.file":
      return { kind: "file", ...common };
  }
}

const firstIssue = (error: z.ZodError) => {
  const issue = error.issues[0];
  return issue ? `${issue.path.join(".") || "event"}: ${issue.message}` : "invalid";
};

/** The Matrix user who wrote an event: the ghost of its Nova author, or the Matrix user it names. */
export function matrixSenderOf(event: BridgeEvent, serverName: string): string {
  return event.sender_id === null ? (event.matrix_sender_id ?? "") : ghostUserId(event.sender_id, serverName);
}

/**
 * Converts one Matrix room event (from `/sync` or `/messages`) into the bridge's event. Pure. Events that are not
 * messages are ignored; messages that break the schema are malformed. A message from a Matrix user who is not a
 * Nova user's ghost is kept, with `sender_id: null` and its `matrix_sender_id`. Whether an edit's sender wrote the
 * message it replaces needs the original: the caller checks that (`Authors`).
 */
export function convertEvent(raw: RawEvent, conversationId: string, serverName: string): Conversion {
  if (raw.type !== "m.room.message" && raw.type !== "m.room.redaction")
    return { kind: "ignored", reason: `type ${String(raw.type)}` };
  const parsed = rawEventSchema.safeParse(raw);
  if (!parsed.success) return { kind: "malformed", reason: firstIssue(parsed.error) };
  const event = parsed.data;
  if (event.state_key !== undefined) return { kind: "ignored", reason: "state event" };
  const senderId = novaUserIdOf(event.sender, serverName);
  const common = {
    event_id: event.event_id,
    conversation_id: conversationId,
    ...(senderId === undefined
      ? { sender_id: null, matrix_sender_id: event.sender }
      : { sender_id: senderId }),
    origin_server_ts: event.origin_server_ts,
  };

  if (event.type === "m.room.redaction") {
    // Room v11 moved `redacts` into the content; older rooms have it at the top level.
    const redacts = typeof event.content.redacts === "string" ? event.content.redacts : event.redacts;
    if (!redacts?.startsWith("$")) return { kind: "malformed", reason: "redacts: expected an event id" };
    if (event.content[CLEANUP_MARKER] === true) return { kind: "ignored", reason: "cleanup of an edit" };
    const reason = typeof event.content.reason === "string" ? event.content.reason : null;
    return { kind: "event", event: { type: "message.deleted", ...common, message_id: redacts, reason } };
  }

  // A redacted message keeps its id but loses its content; its redaction is the event that matters.
  if (Object.keys(event.content).length === 0) return { kind: "ignored", reason: "redacted message" };
  const relation = event.content["m.relates_to"] as { rel_type?: unknown } | undefined;
  if (relation?.rel_type === "m.replace") {
    const edit = replaceRelation.safeParse(event.content);
    if (!edit.success) return { kind: "malformed", reason: firstIssue(edit.error) };
    return {
      kind: "event",
      event: {
        type: "message.edited",
        ...common,
        message_id: event.event_id,
        replaces_message_id: edit.data["m.relates_to"].event_id,
        content: toContent(edit.data["m.new_content"]),
      },
    };
  }
  const message = messageSchema.safeParse(event.content);
  if (!message.success) {
    const msgtype = event.content.msgtype;
    if (typeof msgtype === "string" && !KNOWN_MSGTYPES.has(msgtype))
      return { kind: "ignored", reason: `msgtype ${msgtype}` };
    return { kind: "malformed", reason: firstIssue(message.error) };
  }
  return {
    kind: "event",
    event: { type: "message.new", ...common, message_id: event.event_id, content: toContent(message.data) },
  };
}
