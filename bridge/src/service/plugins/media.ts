// Media: one upload endpoint (the raw file as the body) and the reads a front end uses for a message's media
// (`media_url`), streamed from the homeserver's authenticated media API with the appservice's token.
import { createHash } from "node:crypto";
import { Readable, Transform } from "node:stream";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import parseRange from "range-parser";
import { z } from "zod";
import type { Bridge } from "../../bridge.ts";
import { parseMxc } from "../../matrix/media.ts";
import { liveBridge, type ServiceContext } from "../context.ts";
import { ApiError } from "../errors.ts";
import { timedSend } from "../metrics.ts";
import { errorResponses, jsonResponse, noBody, rawBytes, rawBytesBody, SEND_ERRORS } from "../openapi.ts";
import {
  conversationParams,
  errorResponse,
  mediaParams,
  mediaQuery,
  messageResponse,
  sendAudioQuery,
  sendMediaQuery,
  thumbnailParams,
  toWireContent,
} from "../schemas.ts";
import { actingUserOf, callerOf } from "./auth.ts";

/** A media item never changes under its mxc URI: caches may keep it; `private` since access is per user. */
const CACHE_CONTROL = "private, max-age=86400, immutable";
/** What the homeserver's response may carry through to the client. */
const PASSED_HEADERS = ["content-type", "content-disposition", "last-modified"] as const;

/** The request headers of an upload (others pass; only the documented ones are named). */
const uploadHeaders = z.looseObject({
  "content-type": z.string().optional().meta({
    description: "Optional; must not contradict the bytes (415). The kind is decided from the bytes.",
  }),
});
/** The request headers of a media read (others pass). */
const readHeaders = z.looseObject({
  range: z.string().optional().meta({ description: "One byte range, `bytes=<first>-<last>` (206, or 416)" }),
  "if-none-match": z
    .string()
    .optional()
    .meta({ description: "A previous answer's ETag (304 when it matches)" }),
});
const cacheHeaders = {
  etag: { type: "string", description: "The same for every answer of this media item (and size)" },
  "cache-control": { type: "string", description: "`private, max-age=86400, immutable`" },
};
/** A streamed file (never serialized: fastify sends streams as they are), its headers named for the document. */
const streamed = (description: string, headers: Record<string, unknown>) =>
  rawBytes(description).meta({ headers: { ...cacheHeaders, ...headers } });

export const mediaRoutes: FastifyPluginAsyncZod<ServiceContext> = async (app, context) => {
  // In this plugin only: any Content-Type (or none) is a file's raw bytes, JSON included. Fastify answers 413 past
  // the limit, which is the homeserver's own (BRIDGE_MAX_UPLOAD_BYTES = synapse.maxUploadSize).
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser(
    "*",
    { parseAs: "buffer", bodyLimit: context.limits.uploadBodyBytes },
    (_request, body, done) => done(null, body),
  );

  const upload = async (
    request: FastifyRequest<{ Params: z.infer<typeof conversationParams>; Body: Buffer }>,
    query: z.infer<typeof sendMediaQuery>,
    only?: "audio",
  ): Promise<z.infer<typeof messageResponse>> => {
    const { params, body: data } = request;
    const senderId = actingUserOf(request, query.sender_id);
    const contentType = request.headers["content-type"];
    const messages = liveBridge(context).messages;
    const input = {
      conversationId: params.conversation_id,
      senderId,
      idempotencyKey: query.client_message_id,
      ...(query.filename === undefined ? {} : { filename: query.filename }),
      ...(query.duration_ms === undefined ? {} : { durationMs: query.duration_ms }),
    };
    const sent = await timedSend(context.metrics, only ?? "media", () =>
      only === "audio"
        ? messages.sendAudio({ ...input, audio: data, mimetype: contentType?.split(";")[0]?.trim() ?? "" })
        : messages.sendMedia({ ...input, data, ...(contentType ? { contentType } : {}) }),
    );
    if (!sent.content) throw new Error("an upload answered without its content");
    return {
      message_id: sent.messageId,
      conversation_id: params.conversation_id,
      sender_id: senderId,
      client_message_id: query.client_message_id,
      content: toWireContent(sent.content),
    };
  };
  const uploaded = jsonResponse(
    "The message, with its mxc:// URI and the bridge's media_url",
    messageResponse,
  );

  app.post(
    "/conversations/:conversation_id/media",
    {
      config: { userTokens: true },
      schema: {
        summary:
          "Upload a file and send it (idempotent by sender_id + client_message_id). The raw bytes are the body; " +
          "the kind is decided from them: image (png, jpeg, gif, webp: width, height, thumbnails), video (mp4, " +
          "webm, quicktime, ogg, matroska), audio (audio/*), file (pdf, zip, office documents, UTF-8 text). " +
          "Larger than the homeserver's max_upload_size: 413. User token.",
        params: conversationParams,
        querystring: sendMediaQuery,
        headers: uploadHeaders,
        body: rawBytesBody,
        consumes: ["*/*"],
        response: { 200: uploaded, ...errorResponses(415, ...SEND_ERRORS) },
      },
    },
    async (request) => upload(request, request.query),
  );
  // The audio-only endpoint of the first version: the same upload, refused unless it is audio. Deprecated.
  app.post(
    "/conversations/:conversation_id/audio",
    {
      config: { userTokens: true },
      schema: {
        summary: "Upload audio and send it: POST .../media, refused (415) unless the file is audio",
        deprecated: true,
        params: conversationParams,
        querystring: sendAudioQuery,
        headers: uploadHeaders,
        body: rawBytesBody,
        consumes: ["audio/*"],
        response: { 200: uploaded, ...errorResponses(415, ...SEND_ERRORS) },
      },
    },
    async (request) => upload(request, request.query, "audio"),
  );

  const readable = { userTokens: true, queryToken: true };
  const reads = {
    200: streamed("The file, as the homeserver has it (its Content-Type)", {
      "accept-ranges": { type: "string", description: "`bytes` (or `none` when the size is unknown)" },
    }),
    206: streamed("The requested byte range", {
      "content-range": { type: "string", description: "`bytes <first>-<last>/<size>`" },
    }),
    304: noBody("Not modified (If-None-Match matched the ETag); the homeserver is not asked"),
    416: jsonResponse(
      "The range is past the end of the file (Content-Range: `bytes */<size>`)",
      errorResponse,
    ),
    ...errorResponses(400, 404),
  };
  app.get(
    "/media/:server_name/:media_id",
    {
      config: readable,
      schema: {
        summary:
          "A message's media (the content's media_url), streamed from the homeserver: to the service, or to a " +
          "member of a conversation it was sent in (user token, also as ?access_token=). Anyone else, an unknown " +
          "id and a deleted message's media: the same 404. Range requests (206, 416), ETag/If-None-Match (304), " +
          "Cache-Control private.",
        params: mediaParams,
        querystring: mediaQuery,
        headers: readHeaders,
        produces: ["*/*"],
        response: reads,
      },
    },
    async (request, reply) => {
      const mxc = await authorised(request, liveBridge(context), request.params);
      return relay(request, reply, etagOf(mxc), (signal) => liveBridge(context).media.open(mxc, signal));
    },
  );
  app.get(
    "/media/:server_name/:media_id/thumbnail/:size",
    {
      config: readable,
      schema: {
        summary:
          "A thumbnail of an image made by the homeserver: small (96x96 crop), medium (320x240 scale), large " +
          "(800x600 scale), as image/jpeg or image/png. Same access rule, Range and ETag as the media.",
        params: thumbnailParams,
        querystring: mediaQuery,
        headers: readHeaders,
        produces: ["image/jpeg", "image/png"],
        response: reads,
      },
    },
    async (request, reply) => {
      const { params } = request;
      const mxc = await authorised(request, liveBridge(context), params);
      return relay(request, reply, etagOf(mxc, params.size), (signal) =>
        liveBridge(context).media.openThumbnail(mxc, params.size, signal),
      );
    },
  );
};

/**
 * The mxc URI the caller may read, or a 404 that is the same whether the media item does not exist, is not in a
 * conversation the caller is in, or belonged to a deleted message.
 */
async function authorised(
  request: FastifyRequest,
  bridge: Bridge,
  params: { server_name: string; media_id: string },
): Promise<string> {
  const caller = callerOf(request);
  const mxc = `mxc://${params.server_name}/${params.media_id}`;
  const allowed =
    parseMxc(mxc) !== undefined &&
    (await bridge.media.mayRead(mxc, caller.kind === "user" ? caller.userId : undefined));
  if (!allowed) throw new ApiError(404, "not_found", "no such media", { field: "media_id" });
  return mxc;
}

const etagOf = (mxc: string, variant = "original") =>
  `"${createHash("sha256").update(`${mxc}\n${variant}`).digest("base64url").slice(0, 27)}"`;

/**
 * Streams the homeserver's answer to the client: 304 for a matching If-None-Match (the homeserver is not asked),
 * one byte range as 206 (Synapse serves whole files only, so the range is cut here from the stream), 416 for a
 * range past the end. The upstream request ends when the client goes away.
 */
async function relay(
  request: FastifyRequest,
  reply: FastifyReply,
  etag: string,
  open: (signal: AbortSignal) => Promise<Response>,
): Promise<FastifyReply> {
  reply.header("etag", etag).header("cache-control", CACHE_CONTROL);
  // Served from the bridge's origin: never run as a page, never sniffed into one, never leak the URL's token.
  reply
    .header("x-content-type-options", "nosniff")
    .header("content-security-policy", "sandbox; default-src 'none'")
    .header("referrer-policy", "no-referrer");
  if (matchesEtag(request.headers["if-none-match"], etag)) return reply.code(304).send();

  const abort = new AbortController();
  request.raw.once("close", () => abort.abort());
  const upstream = await open(abort.signal);
  if (!upstream.ok || !upstream.body) {
    await upstream.body?.cancel();
    if (upstream.status === 404 || upstream.status === 400)
      throw new ApiError(404, "not_found", "no such media (or no thumbnail of it)", { field: "media_id" });
    throw new ApiError(
      503,
      "unavailable",
      `the homeserver's media repository failed (HTTP ${upstream.status})`,
      {
        retryAfter: 5,
      },
    );
  }
  const length = Number(upstream.headers.get("content-length") ?? Number.NaN);
  const ranges =
    request.headers.range && Number.isSafeInteger(length)
      ? parseRange(length, request.headers.range, { combine: true })
      : -2;
  if (ranges === -1) {
    await upstream.body.cancel();
    return reply
      .code(416)
      .header("content-range", `bytes */${length}`)
      .send({ error: { code: "range_not_satisfiable", message: `range: the file has ${length} bytes` } });
  }
  for (const name of PASSED_HEADERS) {
    const value = upstream.headers.get(name);
    if (value) reply.header(name, value);
  }
  const body = Readable.fromWeb(upstream.body as WebReadableStream<Uint8Array>);
  if (!Number.isSafeInteger(length)) return reply.header("accept-ranges", "none").send(body);
  reply.header("accept-ranges", "bytes");
  // No Range, a malformed one (-2) or several ranges (served whole, as RFC 9110 allows): the whole file.
  const range = Array.isArray(ranges) && ranges.length === 1 ? ranges[0] : undefined;
  if (!range) return reply.header("content-length", String(length)).send(body);
  // The source stops once the range is out (or the client left); a failure of the source fails the response.
  const part = slice(range.start, range.end, () => body.destroy());
  body.on("error", (error) => {
    if (!part.writableFinished && !abort.signal.aborted) part.destroy(error);
  });
  return reply
    .code(206)
    .header("content-range", `bytes ${range.start}-${range.end}/${length}`)
    .header("content-length", String(range.end - range.start + 1))
    .send(body.pipe(part));
}

function matchesEtag(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  return header.split(",").some((tag) => {
    const value = tag.trim().replace(/^W\//, "");
    return value === etag || value === "*";
  });
}

/** Passes bytes `start..end` (inclusive) of a stream and ends there; `done` stops the source. */
function slice(start: number, end: number, done: () => void): Transform {
  let offset = 0;
  let finished = false;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      if (finished) return callback();
      const from = Math.max(0, start - offset);
      const to = Math.min(chunk.length, end + 1 - offset);
      offset += chunk.length;
      if (from < to) this.push(chunk.subarray(from, to));
      if (offset > end) {
        finished = true;
        this.push(null);
        done();
      }
      callback();
    },
  });
}
