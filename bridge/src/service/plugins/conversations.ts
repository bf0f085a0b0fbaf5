// Conversations and their members. Members are managed by the service only; a user token may list its own
// conversations and create one it is a member of.
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { ConversationNotFoundError } from "../../core/errors.ts";
import { liveBridge, type ServiceContext } from "../context.ts";
import { ApiError } from "../errors.ts";
import { errorResponses, jsonResponse, noBody } from "../openapi.ts";
import {
  addMemberBody,
  conversationListResponse,
  conversationParams,
  conversationResponse,
  conversationsQuery,
  createConversationBody,
  memberParams,
} from "../schemas.ts";
import { callerOf, serviceCallerOf } from "./auth.ts";

export const conversationRoutes: FastifyPluginAsyncZod<ServiceContext> = async (app, context) => {
  const asUser = { userTokens: true };

  app.get(
    "/conversations",
    {
      config: asUser,
      schema: {
        summary: "A user's conversations (user token: its own; service token: ?user_id=). User token.",
        querystring: conversationsQuery,
        response: {
          200: jsonResponse("The conversations", conversationListResponse),
          ...errorResponses(400, 403),
        },
      },
    },
    async (request) => {
      const caller = callerOf(request);
      const query = request.query;
      if (caller.kind === "user" && query.user_id !== undefined && query.user_id !== caller.userId)
        throw new ApiError(403, "forbidden", "user_id: a user token lists only its own conversations", {
          field: "user_id",
        });
      const userId = caller.kind === "user" ? caller.userId : query.user_id;
      if (userId === undefined)
        throw new ApiError(
          400,
          "invalid_request",
          "user_id: expected the Nova user whose conversations to list",
          {
            field: "user_id",
          },
        );
      const found = await liveBridge(context).conversations.of(userId);
      return {
        conversations: found.map((c) => ({
          conversation_id: c.conversationId,
          kind: c.kind === "direct" ? ("dm" as const) : ("group" as const),
        })),
      };
    },
  );

  app.post(
    "/conversations",
    {
      config: asUser,
      schema: {
        summary:
          "Create a conversation (idempotent by conversation_id). User token: only one it is a member of, only new.",
        body: createConversationBody,
        response: {
          200: jsonResponse("The conversation", conversationResponse),
          ...errorResponses(400, 403, 409, 413),
        },
      },
    },
    async (request) => {
      const caller = callerOf(request);
      const { body } = request;
      if (caller.kind === "user" && !body.members.includes(caller.userId))
        throw new ApiError(
          403,
          "forbidden",
          "members: a user token creates only conversations it is a member of",
          { field: "members" },
        );
      const { conversations } = liveBridge(context);
      // A user creates; ensuring an existing group would add members, which only the service does. A retry of the
      // same creation (the user and every listed member already in) answers the conversation unchanged.
      if (caller.kind === "user") {
        const existing = await conversations.get(body.conversation_id).catch((error: unknown) => {
          if (error instanceof ConversationNotFoundError) return undefined;
          throw error;
        });
        if (existing) {
          const members = await conversations.members(body.conversation_id);
          if (!body.members.every((member) => members.includes(member)))
            throw new ApiError(
              409,
              "conflict",
              "conversation_id: exists already; a user token only creates new ones",
              {
                field: "conversation_id",
              },
            );
          return { conversation_id: existing.conversationId, room_id: existing.roomId };
        }
      }
      let conversation: { conversationId: string; roomId: string };
      if (body.kind === "dm") {
        if (body.members.length !== 2 || body.members[0] === body.members[1])
          throw new ApiError(400, "invalid_request", "members: a dm has exactly 2 different members", {
            field: "members",
          });
        if (body.name !== undefined)
          throw new ApiError(400, "invalid_request", "name: a dm has no name", { field: "name" });
        conversation = await conversations.ensureDirect(body.conversation_id, [
          body.members[0] as string,
          body.members[1] as string,
        ]);
      } else {
        conversation = await conversations.ensureGroup(body.conversation_id, {
          name: body.name ?? body.conversation_id,
          members: body.members,
        });
      }
      return { conversation_id: conversation.conversationId, room_id: conversation.roomId };
    },
  );

  app.post(
    "/conversations/:conversation_id/members",
    {
      schema: {
        summary: "Add a member to a group conversation (service token)",
        params: conversationParams,
        body: addMemberBody,
        response: { 204: noBody("Added"), ...errorResponses(400, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      serviceCallerOf(request);
      await liveBridge(context).conversations.addMembers(request.params.conversation_id, [
        request.body.user_id,
      ]);
      return reply.code(204).send();
    },
  );

  app.delete(
    "/conversations/:conversation_id/members/:user_id",
    {
      schema: {
        summary: "Remove a member from a group conversation (service token)",
        params: memberParams,
        response: { 204: noBody("Removed"), ...errorResponses(400, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      serviceCallerOf(request);
      const { conversation_id, user_id } = request.params;
      await liveBridge(context).conversations.removeMembers(conversation_id, [user_id]);
      return reply.code(204).send();
    },
  );
};
