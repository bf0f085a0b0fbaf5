// Text messages: send, edit, delete, history. The service acts for any user (`sender_id`); a user token acts as
// its own user, in the conversations it is a member of.
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { liveBridge, type ServiceContext } from "../context.ts";
import { timedSend } from "../metrics.ts";
import { errorResponses, jsonResponse, OPTIONAL_BODY, SEND_ERRORS } from "../openapi.ts";
import {
  conversationParams,
  deleteBody,
  deletedResponse,
  editBody,
  editResponse,
  historyQuery,
  historyResponse,
  messageParams,
  messageResponse,
  sendTextBody,
  toWireContent,
  toWireEvent,
} from "../schemas.ts";
import { actingUserOf, callerOf, requireMember } from "./auth.ts";

export const messageRoutes: FastifyPluginAsyncZod<ServiceContext> = async (app, context) => {
  const { metrics } = context;
  // A DELETE may come without a body even when a client or proxy leaves `Content-Type: application/json` on it.
  const json = app.getDefaultJsonParser("error", "error");
  app.addContentTypeParser("application/json", { parseAs: "string" }, (request, body, done) => {
    if (body === "" && request.method === "DELETE") done(null, undefined);
    else json(request, body as string, done);
  });

  const asUser = { userTokens: true };

  app.post(
    "/conversations/:conversation_id/messages",
    {
      config: asUser,
      schema: {
        summary:
          "Send a text message. Idempotent by sender_id + client_message_id: a repeat answers the stored message; " +
          "the same key with another conversation, kind or text is 409 idempotency_key_reused. User token.",
        params: conversationParams,
        body: sendTextBody,
        response: { 200: jsonResponse("The message", messageResponse), ...errorResponses(...SEND_ERRORS) },
      },
    },
    async (request) => {
      const { params, body } = request;
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
    {
      config: asUser,
      schema: {
        summary: "Edit a text message (its author only: 403 otherwise). User token.",
        params: messageParams,
        body: editBody,
        response: { 200: jsonResponse("The edit", editResponse), ...errorResponses(...SEND_ERRORS) },
      },
    },
    async (request) => {
      const { params, body } = request;
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
    {
      config: asUser,
      schema: {
        summary:
          "Delete a message (and its author's edits). No body needed: the author's ghost redacts. A sender_id " +
          "other than the author's: 403. User token (as its own user).",
        params: messageParams,
        body: deleteBody,
        [OPTIONAL_BODY]: true,
        response: { 200: jsonResponse("Deleted", deletedResponse), ...errorResponses(...SEND_ERRORS) },
      },
      // No body is an empty one (fastify would validate `null`).
      preValidation: async (request) => {
        request.body ??= {};
      },
    },
    async (request) => {
      const { params, body } = request;
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
    {
      config: asUser,
      schema: {
        summary: "History, newest first, in the events' shape. User token: a member's only.",
        params: conversationParams,
        querystring: historyQuery,
        response: {
          200: jsonResponse("A page of history", historyResponse),
          ...errorResponses(400, 403, 404),
        },
      },
    },
    async (request) => {
      const { params, query } = request;
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
