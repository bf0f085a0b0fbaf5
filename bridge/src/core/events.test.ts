import { describe, expect, it } from "vitest";
import {
  type BridgeEvent,
  bridgeEventSchema,
  CLEANUP_MARKER,
  convertEvent,
  matrixSenderOf,
} from "./events.ts";

const server = "nova.test";
const base = { event_id: "$e1", sender: "@nova_alice:nova.test", origin_server_ts: 1700000000000 };
const convert = (raw: Record<string, unknown>) => convertEvent(raw, "conv-1", server);

describe("convertEvent", () => {
  it("turns a text message from a ghost into message.new with the Nova sender id", () => {
    const result = convert({ ...base, type: "m.room.message", content: { msgtype: "m.text", body: "hi" } });
    expect(result).toEqual({
      kind: "event",
      event: {
        type: "message.new",
        event_id: "$e1",
        message_id: "$e1",
        conversation_id: "conv-1",
        sender_id: "alice",
        origin_server_ts: 1700000000000,
        content: { kind: "text", body: "hi" },
      },
    });
    if (result.kind === "event") expect(bridgeEventSchema.parse(result.event)).toEqual(result.event);
  });

  it("keeps an audio message's mxc URI, mimetype, size and duration", () => {
    const result = convert({
      ...base,
      type: "m.room.message",
      content: {
        msgtype: "m.audio",
        body: "voice.wav",
        url: "mxc://nova.test/abc",
        info: { mimetype: "audio/wav", size: 1000, duration: 250 },
      },
    });
    expect(result.kind === "event" && result.event.type === "message.new" && result.event.content).toEqual({
      kind: "audio",
      body: "voice.wav",
      url: "mxc://nova.test/abc",
      mimetype: "audio/wav",
      size: 1000,
      duration_ms: 250,
    });
  });

  it("keeps images, video and files with their sizes, and drops what Matrix leaves out as null", () => {
    const content = (msgtype: string, info: Record<string, unknown>) => {
      const result = convert({
        ...base,
        type: "m.room.message",
        content: { msgtype, body: "f", url: "mxc://nova.test/m", info },
      });
      if (result.kind !== "event") throw new Error(`not converted: ${JSON.stringify(result)}`);
      expect(bridgeEventSchema.parse(result.event)).toEqual(result.event);
      return result.event.type === "message.new" ? result.event.content : undefined;
    };
    const common = { body: "f", url: "mxc://nova.test/m" };
    expect(content("m.image", { mimetype: "image/png", size: 10, w: 64, h: 48 })).toEqual({
      kind: "image",
      ...common,
      mimetype: "image/png",
      size: 10,
      width: 64,
      height: 48,
    });
    expect(content("m.video", { mimetype: "video/mp4", w: 320, h: 240, duration: 2000 })).toEqual({
      kind: "video",
      ...common,
      mimetype: "video/mp4",
      size: null,
      width: 320,
      height: 240,
      duration_ms: 2000,
    });
    expect(content("m.file", {})).toEqual({ kind: "file", ...common, mimetype: null, size: null });
  });

  it("edits and deletions of an attachment are events like a text's", () => {
    const edit = convert({
      ...base,
      event_id: "$e2",
      type: "m.room.message",
      content: {
        msgtype: "m.image",
        body: "* new.png",
        url: "mxc://nova.test/new",
        "m.new_content": {
          msgtype: "m.image",
          body: "new.png",
          url: "mxc://nova.test/new",
          info: { w: 2, h: 3 },
        },
        "m.relates_to": { rel_type: "m.replace", event_id: "$e1" },
      },
    });
    expect(edit).toMatchObject({
      kind: "event",
      event: {
        type: "message.edited",
        replaces_message_id: "$e1",
        content: { kind: "image", url: "mxc://nova.test/new", width: 2, height: 3 },
      },
    });
  });

  it("refuses an attachment without an mxc URI as malformed", () => {
    expect(
      convert({
        ...base,
        type: "m.room.message",
        content: { msgtype: "m.image", body: "x", url: "https://x/y" },
      }),
    ).toMatchObject({ kind: "malformed" });
  });

  it("turns an m.replace into message.edited with the new content and the replaced id", () => {
    const result = convert({
      ...base,
      event_id: "$e2",
      type: "m.room.message",
      content: {
        msgtype: "m.text",
        body: "* fixed",
        "m.new_content": { msgtype: "m.text", body: "fixed" },
        "m.relates_to": { rel_type: "m.replace", event_id: "$e1" },
      },
    });
    expect(result).toMatchObject({
      kind: "event",
      event: {
        type: "message.edited",
        message_id: "$e2",
        replaces_message_id: "$e1",
        content: { body: "fixed" },
      },
    });
  });

  it("turns a redaction (v11 content.redacts or the older top-level redacts) into message.deleted", () => {
    const v11 = convert({
      ...base,
      event_id: "$r",
      type: "m.room.redaction",
      content: { redacts: "$e1", reason: "oops" },
    });
    expect(v11).toMatchObject({ event: { type: "message.deleted", message_id: "$e1", reason: "oops" } });
    const old = convert({ ...base, event_id: "$r", type: "m.room.redaction", redacts: "$e1", content: {} });
    expect(old).toMatchObject({ event: { type: "message.deleted", message_id: "$e1", reason: null } });
  });

  it("keeps a Matrix user's message with sender_id null and the Matrix id beside it", () => {
    const converted = convert({
      ...base,
      sender: "@nova-dev:nova.test",
      type: "m.room.message",
      content: { msgtype: "m.text", body: "x" },
    });
    expect(converted).toMatchObject({
      kind: "event",
      event: { type: "message.new", sender_id: null, matrix_sender_id: "@nova-dev:nova.test" },
    });
    const event = (converted as { event: BridgeEvent }).event;
    expect(matrixSenderOf(event, "nova.test")).toBe("@nova-dev:nova.test");
    expect(bridgeEventSchema.parse(event)).toEqual(event);
  });

  it("ignores what is not a Nova message, and reports malformed messages with the field", () => {
    expect(convert({ ...base, type: "m.room.member", state_key: "x", content: {} }).kind).toBe("ignored");
    expect(
      convert({ ...base, type: "m.room.message", content: { msgtype: "m.location", body: "x" } }).kind,
    ).toBe("ignored");
    expect(convert({ ...base, type: "m.room.message", content: {} })).toEqual({
      kind: "ignored",
      reason: "redacted message",
    });
    expect(
      convert({ ...base, type: "m.room.redaction", content: { redacts: "$e1", [CLEANUP_MARKER]: true } })
        .kind,
    ).toBe("ignored");
    expect(convert({ ...base, type: "m.room.message", content: { msgtype: "m.text", body: 5 } })).toEqual({
      kind: "malformed",
      reason: "body: Invalid input: expected string, received number",
    });
    expect(convert({ ...base, event_id: 7, type: "m.room.message", content: {} })).toMatchObject({
      kind: "malformed",
      reason: expect.stringContaining("event_id"),
    });
    expect(
      convert({
        ...base,
        type: "m.room.message",
        content: { msgtype: "m.audio", body: "a", url: "http://x" },
      }).kind,
    ).toBe("malformed");
  });
});
