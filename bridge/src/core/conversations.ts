import {
  conversationAlias,
  conversationAliasLocalpart,
  ghostLocalpart,
  ghostUserId,
  novaUserIdOf,
} from "@nova-matrix/contracts";
import { LRUCache } from "lru-cache";
import pMap from "p-map";
import type { Logger } from "pino";
import type { MatrixClient } from "../matrix/client.ts";
import { errcodeOf, statusOf } from "../matrix/errors.ts";
import {
  createRoom,
  getStateEvent,
  invite,
  join,
  joinedMembers,
  joinedRooms,
  kick,
  resolveAlias,
} from "../matrix/rooms.ts";
import type { GhostRegistry } from "../matrix/users.ts";
import { ConversationConflictError, ConversationNotFoundError, InvalidInputError } from "./errors.ts";
import { asMatrixId, check, inputSchemas } from "./input.ts";

/** The state event in each conversation's room that points back to the conversation (the alias points there). */
export const CONVERSATION_STATE_TYPE = "org.nova.conversation";

export type ConversationKind = "direct" | "group";

export interface Conversation {
  conversationId: string;
  roomId: string;
  kind: ConversationKind;
}

interface ConversationState {
  conversation_id: string;
  kind: ConversationKind;
  /** For a direct conversation, its two Nova user ids, sorted. */
  members?: string[];
}

/** Conversations (and rooms) whose mapping is cached per process. */
const REMEMBERED_CONVERSATIONS = 50_000;
/**
 * How old a shared read of a conversation's members may be. Member events seen by the sync loop forget it at once;
 * the TTL bounds what a lagging sync loop could leave stale.
 */
export const MEMBERS_TTL_MS = 5_000;

export interface ConversationsDeps {
  client: MatrixClient;
  ghosts: GhostRegistry;
  serverName: string;
  logger: Logger;
  /** Overrides {@link MEMBERS_TTL_MS} (tests prove the member events do the forgetting with a long one). */
  membersTtlMs?: number;
}

/**
 * conversation_id <-> room. Synapse holds the mapping (the alias `#nova_conv_<id>` one way, the
 * `org.nova.conversation` state event the other); this keeps only a cache of what it read there.
 *
 * Rooms are created by the service user, who stays in every room (it syncs them and moderates them); a direct
 * conversation's members are its two Nova users' ghosts.
 */
export class Conversations {
  readonly #deps: ConversationsDeps;
  // Bounded: a process that meets every conversation of a large deployment forgets the least recently used (a
  // forgotten one costs one alias or state lookup again). `false`: a room that is not a conversation.
  readonly #byId = new LRUCache<string, Conversation>({ max: REMEMBERED_CONVERSATIONS });
  readonly #byRoom = new LRUCache<string, Conversation | false>({ max: REMEMBERED_CONVERSATIONS });
  readonly #creating = new Map<string, Promise<Conversation>>();
  // Every user socket checks membership on delivery: a thousand sockets in one conversation share one read of
  // Synapse's member list (in flight or at most the TTL old) instead of a thousand. The bridge's own membership
  // changes, and every member event the sync loop sees (a kick made in Matrix directly), forget the entry at once.
  readonly #members: LRUCache<string, Promise<string[]>>;

  constructor(deps: ConversationsDeps) {
    this.#deps = deps;
    this.#members = new LRUCache({ max: REMEMBERED_CONVERSATIONS, ttl: deps.membersTtlMs ?? MEMBERS_TTL_MS });
  }

  /** A member event arrived in the conversation's room: the next check reads the member list again. */
  membershipChanged(conversationId: string): void {
    this.#members.delete(conversationId);
  }

  /** A direct conversation between exactly two Nova users; the same id again returns the same room. */
  async ensureDirect(conversationId: string, members: readonly [string, string]): Promise<Conversation> {
    check("conversationId", inputSchemas.conversationId, conversationId);
    if (!Array.isArray(members) || members.length !== 2)
      throw new InvalidInputError("members", "a direct conversation has exactly 2 members");
    const [a, b] = members.map((member, i) =>
      this.#matrixReady(`members[${i}]`, check(`members[${i}]`, inputSchemas.userId, member)),
    );
    this.#aliasReady(conversationId);
    if (a === b) throw new InvalidInputError("members", "a direct conversation needs 2 different users");
    const sorted = [a, b].sort() as string[];
    const existing = await this.#once(conversationId, () =>
      this.#ensure(conversationId, "direct", sorted, { is_direct: true }),
    );
    const state = await this.#state(existing.roomId);
    if (state?.members && state.members.join("\n") !== sorted.join("\n"))
      throw new ConversationConflictError(
        conversationId,
        "exists as a direct conversation between other users",
      );
    return existing;
  }

  /** A group conversation with a name and members; ensuring it again adds members who are missing. */
  async ensureGroup(conversationId: string, options: { name: string; members: readonly string[] }) {
    check("conversationId", inputSchemas.conversationId, conversationId);
    const name = check("name", inputSchemas.groupName, options?.name);
    if (!Array.isArray(options.members))
      throw new InvalidInputError("members", "expected a list of Nova user ids");
    const members = [
      ...new Set(
        options.members.map((m, i) =>
          this.#matrixReady(`members[${i}]`, check(`members[${i}]`, inputSchemas.userId, m)),
        ),
      ),
    ];
    this.#aliasReady(conversationId);
    const conversation = await this.#once(conversationId, () =>
      this.#ensure(conversationId, "group", members, { name }),
    );
    await this.addMembers(conversationId, members);
    return conversation;
  }

  /** Invites and joins Nova users into a group conversation (already joined users are left as they are). */
  async addMembers(conversationId: string, userIds: readonly string[]): Promise<void> {
    for (const [i, id] of userIds.entries()) this.#matrixReady(`userIds[${i}]`, id);
    const conversation = await this.get(conversationId);
    if (conversation.kind === "direct")
      throw new ConversationConflictError(
        conversationId,
        "is a direct conversation; its members cannot change",
      );
    const joined = new Set(await joinedMembers(this.#deps.client, conversation.roomId));
    try {
      await Promise.all(
        userIds
          .map((id, i) => check(`userIds[${i}]`, inputSchemas.userId, id))
          .filter((id) => !joined.has(ghostUserId(id, this.#deps.serverName)))
          .map((id) => this.#addGhost(conversation.roomId, id)),
      );
    } finally {
      this.#members.delete(conversationId);
    }
  }

  /** Removes Nova users from a group conversation. */
  async removeMembers(conversationId: string, userIds: readonly string[], reason?: string): Promise<void> {
    const conversation = await this.get(conversationId);
    if (conversation.kind === "direct")
      throw new ConversationConflictError(
        conversationId,
        "is a direct conversation; its members cannot change",
      );
    try {
      for (const [i, id] of userIds.entries()) {
        check(`userIds[${i}]`, inputSchemas.userId, id);
        await kick(this.#deps.client, conversation.roomId, ghostUserId(id, this.#deps.serverName), reason);
      }
    } finally {
      // A removed user's sockets stop receiving the conversation at the next delivery, not after the TTL.
      this.#members.delete(conversationId);
    }
  }

  /** The Nova user ids of the conversation's joined members (shared; forgotten on any membership change). */
  members(conversationId: string): Promise<string[]> {
    const cached = this.#members.get(conversationId);
    if (cached) return cached;
    const read = this.#readMembers(conversationId);
    this.#members.set(conversationId, read);
    // A failed read is not remembered (the next caller asks again); a forgotten entry is not put back.
    read.catch(() => {
      if (this.#members.get(conversationId) === read) this.#members.delete(conversationId);
    });
    return read;
  }

  async #readMembers(conversationId: string): Promise<string[]> {
    const { roomId } = await this.get(conversationId);
    return (await joinedMembers(this.#deps.client, roomId))
      .map((userId) => novaUserIdOf(userId, this.#deps.serverName))
      .filter((id): id is string => id !== undefined)
      .sort();
  }

  /**
   * The conversations a Nova user is a member of now (the rooms their ghost has joined), sorted by id. A user
   * whose ghost was never registered is in none.
   */
  async of(userId: string): Promise<Conversation[]> {
    check("userId", inputSchemas.userId, userId);
    const ghost = asMatrixId("userId", () => ghostUserId(userId, this.#deps.serverName));
    const rooms = await joinedRooms(this.#deps.client, ghost).catch((error: unknown) => {
      // A ghost that does not exist yet (never a member of anything): 403 "not registered" or 401.
      const status = statusOf(error);
      if (status === 401 || status === 403) return [] as string[];
      throw error;
    });
    const found = await pMap(rooms, (roomId) => this.byRoom(roomId), { concurrency: 8 });
    return found
      .filter((conversation): conversation is Conversation => conversation !== undefined)
      .sort((a, b) => a.conversationId.localeCompare(b.conversationId));
  }

  /** The conversation's room; throws {@link ConversationNotFoundError} when it was never ensured. */
  async get(conversationId: string): Promise<Conversation> {
    check("conversationId", inputSchemas.conversationId, conversationId);
    const found = await this.#lookup(conversationId);
    if (!found) throw new ConversationNotFoundError(conversationId);
    return found;
  }

  /** The conversation a room belongs to, or undefined for rooms that are not conversations. */
  async byRoom(roomId: string): Promise<Conversation | undefined> {
    const cached = this.#byRoom.get(roomId);
    if (cached !== undefined) return cached || undefined;
    const state = await this.#state(roomId);
    const conversation = state ? { conversationId: state.conversation_id, roomId, kind: state.kind } : false;
    this.#byRoom.set(roomId, conversation);
    if (conversation) this.#byId.set(conversation.conversationId, conversation);
    return conversation || undefined;
  }

  /** Caches a room's conversation state seen elsewhere (the sync response), if it is well-formed. */
  remember(roomId: string, content: unknown): void {
    const state = content as Partial<ConversationState> | undefined;
    if (typeof state?.conversation_id !== "string" || (state.kind !== "direct" && state.kind !== "group"))
      return;
    const conversation = { conversationId: state.conversation_id, roomId, kind: state.kind };
    this.#byRoom.set(roomId, conversation);
    this.#byId.set(conversation.conversationId, conversation);
  }

  /** One creation at a time per conversation id in this process. */
  async #once(conversationId: string, create: () => Promise<Conversation>): Promise<Conversation> {
    const pending = this.#creating.get(conversationId);
    if (pending) return pending;
    const started = create().finally(() => this.#creating.delete(conversationId));
    this.#creating.set(conversationId, started);
    return started;
  }

  async #lookup(conversationId: string): Promise<Conversation | undefined> {
    const cached = this.#byId.get(conversationId);
    if (cached) return cached;
    const roomId = await resolveAlias(
      this.#deps.client,
      conversationAlias(conversationId, this.#deps.serverName),
    );
    if (!roomId) return undefined;
    return this.byRoom(roomId);
  }

  async #state(roomId: string): Promise<ConversationState | undefined> {
    return getStateEvent<ConversationState>(this.#deps.client, roomId, CONVERSATION_STATE_TYPE);
  }

  /** A Nova user id whose ghost's Matrix id is valid (checked before anything is registered or created). */
  #matrixReady(field: string, novaUserId: string): string {
    return asMatrixId(field, () => ghostUserId(novaUserId, this.#deps.serverName) && novaUserId);
  }

  #aliasReady(conversationId: string): void {
    asMatrixId("conversationId", () => conversationAlias(conversationId, this.#deps.serverName));
  }

  async #ensure(
    conversationId: string,
    kind: ConversationKind,
    members: string[],
    extra: { is_direct?: boolean; name?: string },
  ): Promise<Conversation> {
    const existing = await this.#lookup(conversationId);
    if (existing) {
      if (existing.kind !== kind)
        throw new ConversationConflictError(
          conversationId,
          `exists as a ${existing.kind} conversation, not ${kind}`,
        );
      return existing;
    }
    const { client, serverName, logger } = this.#deps;
    await Promise.all(members.map((id) => this.#deps.ghosts.ensure(ghostLocalpart(id))));
    const state: ConversationState = {
      conversation_id: conversationId,
      kind,
      ...(kind === "direct" ? { members } : {}),
    };
    let roomId: string;
    try {
      roomId = await createRoom(client, {
        room_alias_name: conversationAliasLocalpart(conversationId),
        preset: kind === "direct" ? "trusted_private_chat" : "private_chat",
        ...extra,
        invite: members.map((id) => ghostUserId(id, serverName)),
        initial_state: [{ type: CONVERSATION_STATE_TYPE, state_key: "", content: { ...state } }],
        power_level_content_override: {
          users: { [client.serviceUser]: 100 },
          invite: 50,
          kick: 50,
          ban: 50,
          redact: 50,
          state_default: 50,
          events_default: 0,
          users_default: 0,
        },
      });
    } catch (error) {
      // Another process created it first: use theirs (the alias decides).
      if (errcodeOf(error) === "M_ROOM_IN_USE") {
        const created = await this.#lookup(conversationId);
        if (created) return this.#ensure(conversationId, kind, members, extra);
      }
      throw error;
    }
    await Promise.all(members.map((id) => join(client, roomId, ghostUserId(id, serverName))));
    logger.info({ conversationId, roomId, kind }, "created the conversation's room");
    this.#members.delete(conversationId);
    const conversation = { conversationId, roomId, kind };
    this.#byId.set(conversationId, conversation);
    this.#byRoom.set(roomId, conversation);
    return conversation;
  }

  async #addGhost(roomId: string, novaUserId: string): Promise<void> {
    const userId = ghostUserId(novaUserId, this.#deps.serverName);
    await this.#deps.ghosts.ensure(ghostLocalpart(novaUserId));
    await invite(this.#deps.client, roomId, userId);
    await join(this.#deps.client, roomId, userId);
  }
}
