// Conversations and their members (service token only).
import type { FastifyPluginAsync } from "fastify";
import type { z } from "zod";
import { liveBridge, type ServiceContext } from "../context.ts";
import { ApiError, parseInput } from "../errors.ts";
import {
  addMemberBody,
  conversationParams,
  type conversationResponse,
  createConversationBody,
  memberParams,
} from "../schemas.ts";
import { serviceCallerOf } from "./auth.ts";

export const conversationRoutes: FastifyPluginAsync<ServiceContext> = async (app, context) => {
  app.post("/conversations", async (request): Promise<z.infer<typeof conversationResponse>> => {
    serviceCallerOf(request);
    const body = parseInput(createConversationBody, request.body, "body");
    const { conversations } = liveBridge(context);
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
