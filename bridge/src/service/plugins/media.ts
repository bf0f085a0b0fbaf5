// Media: audio upload-and-send (service token only). The raw bytes are the body, with their audio/* type.
import type { FastifyPluginAsync } from "fastify";
import type { z } from "zod";
import { liveBridge, type ServiceContext } from "../context.ts";
import { ApiError, parseInput } from "../errors.ts";
import { timedSend } from "../metrics.ts";
import { conversationParams, type messageResponse, sendAudioQuery } from "../schemas.ts";
import { serviceCallerOf } from "./auth.ts";

const AUDIO_TYPE = /^audio\/[a-z0-9.+-]+$/i;

export const mediaRoutes: FastifyPluginAsync<ServiceContext> = async (app, context) => {
  app.addContentTypeParser(
    AUDIO_TYPE,
    { parseAs: "buffer", bodyLimit: context.limits.audioBodyBytes },
    (_request, body, done) => done(null, body),
  );

  app.post(
    "/conversations/:conversation_id/audio",
    async (request): Promise<z.infer<typeof messageResponse>> => {
      serviceCallerOf(request);
      const params = parseInput(conversationParams, request.params, "path");
      const query = parseInput(sendAudioQuery, request.query, "query");
      const mimetype = (request.headers["content-type"] ?? "").split(";")[0]?.trim() ?? "";
      if (!AUDIO_TYPE.test(mimetype) || !Buffer.isBuffer(request.body))
        throw new ApiError(
          415,
          "unsupported_media_type",
          "content-type: expected an audio type (audio/...)",
          {
            field: "content-type",
          },
        );
      const audio = request.body;
      const sent = await timedSend(context.metrics, "audio", () =>
        liveBridge(context).messages.sendAudio({
          conversationId: params.conversation_id,
          senderId: query.sender_id,
          audio,
          mimetype,
          idempotencyKey: query.client_message_id,
          ...(query.duration_ms === undefined ? {} : { durationMs: query.duration_ms }),
        }),
      );
      return {
        message_id: sent.messageId,
        conversation_id: params.conversation_id,
        sender_id: query.sender_id,
        client_message_id: query.client_message_id,
        // A replay answers the first send's message as stored.
        content: sent.content ?? {
          kind: "audio",
          body: `audio.${mimetype.split("/")[1]?.replace(/^x-/, "") ?? "bin"}`,
          url: sent.url ?? "",
          mimetype,
          size: audio.byteLength,
          duration_ms: query.duration_ms ?? null,
        },
      };
    },
  );
};
