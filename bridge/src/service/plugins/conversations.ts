// Conversations and their members. Members are managed by the service only; a user token may list its own
// conversations and create one it is a member of.
import type { FastifyPluginAsync } from "fastify";
import type { z } from "zod";
import { ConversationNotFoundError } from "../../core/errors.ts";
import { liveBridge, type ServiceContext } from "../context.ts";
import { ApiError, parseInput } from "../errors.ts";
import {
  addMemberBody,
  type conversationListResponse,
  conversationParams,
  type conversationResponse,
  conversationsQuery,
  createConversationBody,
  memberParams,
} from "../schemas.ts";
import { callerOf, serviceCallerOf } from "./auth.ts";

export const conversationRoutes: FastifyPluginAsync<ServiceContext> = async (app, context) => {
  const asUser = { config: { userTokens: true } };

  app.get("/conversations", asUser, async (request): Promise<z.infer<typeof conversationListResponse>> => {
    const caller = callerOf(request);
    const query = parseInput(conversationsQuery, request.query, "query");
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
        kind: c.kind === "direct" ? "dm" : "group",
      })),
    };
  });

  app.post("/conversations", asUser, async (request): Promise<z.infer<typeof conversationResponse>> => {
    const caller = callerOf(request);
    const body = parseInput(createConversationBody, request.body, "body");
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
  });

  app.post("/conversations/:conversation_id/members", async (request, reply) => {
    serviceCallerOf(request);
    const params = parseInput(conversationParams, request.params, "path");
    const body = parseInput(addMemberBody, request.body, "body");
    await liveBridge(context).conversations.addMembers(params.conversation_id, [body.user_id]);
    reply.code(204);
  });

  app.delete("/conversations/:conversation_id/members/:user_id", async (request, reply) => {
    serviceCallerOf(request);
    const params = parseInput(memberParams, request.params, "path");
    await liveBridge(context).conversations.removeMembers(params.conversation_id, [params.user_id]);
    reply.code(204);
  });
};
