// Text messages: send, edit, delete, history. The service acts for any user (`sender_id`); a user token acts as
// its own user, in the conversations it is a member of.
import type { FastifyPluginAsync } from "fastify";
import type { z } from "zod";
import { liveBridge, type ServiceContext } from "../context.ts";
import { parseInput } from "../errors.ts";
import { timedSend } from "../metrics.ts";
import {
  conversationParams,
  deleteBody,
  type deletedResponse,
  editBody,
  type editResponse,
  historyQuery,
  type historyResponse,
  messageParams,
  type messageResponse,
  sendTextBody,
  toWireContent,
  toWireEvent,
} from "../schemas.ts";
import { actingUserOf, callerOf, requireMember } from "./auth.ts";

export const messageRoutes: FastifyPluginAsync<ServiceContext> = async (app, context) => {
  const { metrics } = context;
  // A DELETE may come without a body even when a client or proxy leaves `Content-Type: application/json` on it.
  const json = app.getDefaultJsonParser("error", "error");
  app.addContentTypeParser("application/json", { parseAs: "string" }, (request, body, done) => {
    if (body === "" && request.method === "DELETE") done(null, undefined);
    else json(request, body as string, done);
  });

  const asUser = { config: { userTokens: true } };

  app.post(
    "/conversations/:conversation_id/messages",
    asUser,
    async (request): Promise<z.infer<typeof messageResponse>> => {
      const params = parseInput(conversationParams, request.params, "path");
      const body = parseInput(sendTextBody, request.body, "body");
      const senderId = actingUserOf(request, body.sender_id);
      const sent = await timedSend(metrics, "text", () =>
        liveBridge(context).messages.sendText({
          conversationId: params.conversation_id,
          senderId,
          text: body.text,
          idempotencyKey: body.client_message_id,
        }),
      );
      // A replay answers the first send's message as stored, not this request's body.
      return {
        message_id: sent.messageId,
        conversation_id: params.conversation_id,
        sender_id: senderId,
        client_message_id: body.client_message_id,
        content: toWireContent(sent.content ?? { kind: "text", body: body.text }),
      };
    },
  );

  app.patch(
    "/conversations/:conversation_id/messages/:message_id",
    asUser,
    async (request): Promise<z.infer<typeof editResponse>> => {
      const params = parseInput(messageParams, request.params, "path");
      const body = parseInput(editBody, request.body, "body");
      const senderId = actingUserOf(request, body.sender_id);
      const key = body.client_message_id ?? `edit.${crypto.randomUUID()}`;
      const sent = await timedSend(metrics, "edit", () =>
        liveBridge(context).messages.edit({
          conversationId: params.conversation_id,
          senderId,
          messageId: params.message_id,
          text: body.text,
          idempotencyKey: key,
        }),
      );
      return {
        message_id: params.message_id,
        edit_id: sent.messageId,
        conversation_id: params.conversation_id,
        sender_id: senderId,
        content: toWireContent(sent.content ?? { kind: "text", body: body.text }),
      };
    },
  );

  app.delete(
    "/conversations/:conversation_id/messages/:message_id",
    asUser,
    async (request): Promise<z.infer<typeof deletedResponse>> => {
      const params = parseInput(messageParams, request.params, "path");
      const body = parseInput(deleteBody, request.body ?? {}, "body");
      // The service may leave the deleter out (the author's ghost redacts); a user token deletes as its user.
      const deleter =
        callerOf(request).kind === "user" ? actingUserOf(request, body.sender_id) : body.sender_id;
      const key = body.client_message_id ?? `delete.${params.message_id}`;
      const deleted = await timedSend(metrics, "delete", () =>
        liveBridge(context).messages.delete({
          conversationId: params.conversation_id,
          messageId: params.message_id,
          idempotencyKey: key,
          ...(deleter === undefined ? {} : { senderId: deleter }),
          ...(body.reason === undefined ? {} : { reason: body.reason }),
        }),
      );
      return { message_id: params.message_id, deletion_id: deleted.redactionId };
    },
  );

  app.get(
    "/conversations/:conversation_id/messages",
    asUser,
    async (request): Promise<z.infer<typeof historyResponse>> => {
      const params = parseInput(conversationParams, request.params, "path");
      const query = parseInput(historyQuery, request.query, "query");
      const bridge = liveBridge(context);
      await requireMember(request, (id) => bridge.conversations.members(id), params.conversation_id);
      const page = await bridge.messages.history(params.conversation_id, {
        ...(query.limit === undefined ? {} : { limit: query.limit }),
        ...(query.before === undefined ? {} : { before: query.before }),
      });
      return {
        events: page.events.map((event) => toWireEvent(event)),
        ...(page.nextCursor ? { next_before: page.nextCursor } : {}),
      };
    },
  );
};
