import { type MatrixClient, seg } from "./client.ts";
import { errcodeOf, statusOf } from "./errors.ts";
import type { RawEvent } from "./types.ts";

export interface CreateRoomRequest {
  room_alias_name?: string;
  name?: string;
  preset?: "private_chat" | "trusted_private_chat" | "public_chat";
  is_direct?: boolean;
  invite?: string[];
  initial_state?: { type: string; state_key: string; content: Record<string, unknown> }[];
  power_level_content_override?: Record<string, unknown>;
  creation_content?: Record<string, unknown>;
}

export async function createRoom(client: MatrixClient, request: CreateRoomRequest): Promise<string> {
  const { room_id } = await client.post<{ room_id: string }>("/createRoom", request);
  return room_id;
}

/** The room an alias points to, or undefined when there is no such alias. */
export async function resolveAlias(client: MatrixClient, alias: string): Promise<string | undefined> {
  try {
    const { room_id } = await client.get<{ room_id: string }>(`/directory/room/${seg(alias)}`);
    return room_id;
  } catch (error) {
    if (errcodeOf(error) === "M_NOT_FOUND" || statusOf(error) === 404) return undefined;
    throw error;
  }
}

/** A state event's content, or undefined when the room has none of that type and key. */
export async function getStateEvent<T>(
  client: MatrixClient,
  roomId: string,
  type: string,
  stateKey = "",
): Promise<T | undefined> {
  try {
    return await client.get<T>(`/rooms/${seg(roomId)}/state/${seg(type)}/${seg(stateKey)}`);
  } catch (error) {
    if (errcodeOf(error) === "M_NOT_FOUND" || statusOf(error) === 404) return undefined;
    throw error;
  }
}

/** User ids of the room's joined members. */
export async function joinedMembers(client: MatrixClient, roomId: string): Promise<string[]> {
  const { joined } = await client.get<{ joined: Record<string, unknown> }>(
    `/rooms/${seg(roomId)}/joined_members`,
  );
  return Object.keys(joined);
}

/** The rooms a user (a ghost, asserted) has joined. */
export async function joinedRooms(client: MatrixClient, asUser: string): Promise<string[]> {
  const { joined_rooms } = await client.get<{ joined_rooms: string[] }>("/joined_rooms", { as: asUser });
  return joined_rooms;
}

export async function invite(client: MatrixClient, roomId: string, userId: string, isDirect = false) {
  try {
    await client.post(`/rooms/${seg(roomId)}/invite`, {
      user_id: userId,
      ...(isDirect ? { is_direct: true } : {}),
    });
  } catch (error) {
    // Already invited or joined: the goal is reached.
    if (
      errcodeOf(error) !== "M_FORBIDDEN" ||
      !/already in the room|is already joined/i.test((error as Error).message)
    )
      throw error;
  }
}

export async function join(client: MatrixClient, roomId: string, asUser: string): Promise<void> {
  await client.post(`/rooms/${seg(roomId)}/join`, {}, { as: asUser });
}

export async function kick(
  client: MatrixClient,
  roomId: string,
  userId: string,
  reason?: string,
): Promise<void> {
  await client.post(`/rooms/${seg(roomId)}/kick`, { user_id: userId, ...(reason ? { reason } : {}) });
}

export async function getEvent(client: MatrixClient, roomId: string, eventId: string): Promise<RawEvent> {
  return client.get<RawEvent>(`/rooms/${seg(roomId)}/event/${seg(eventId)}`);
}

/** Sends a room event with a transaction id; the same id (retried or repeated) never makes a second event. */
export async function sendEvent(
  client: MatrixClient,
  roomId: string,
  type: string,
  txnId: string,
  content: Record<string, unknown>,
  asUser: string,
): Promise<string> {
  const { event_id } = await client.put<{ event_id: string }>(
    `/rooms/${seg(roomId)}/send/${seg(type)}/${seg(txnId)}`,
    content,
    { as: asUser, findEarlier: () => findSentByTransactionId(client, roomId, type, txnId, asUser) },
  );
  return event_id;
}

/**
 * The event `asUser` already sent with this transaction id, looked up among its latest events of `type` in the room.
 * Synapse keeps an appservice's transaction ids only in memory: when it stored an event and then died before
 * answering, a retry after its restart would make a second event. Synapse shows the sender its own
 * `unsigned.transaction_id` (for appservice users it assumes the same session). Sends are serial per room, so the
 * one being retried is among the sender's newest.
 */
export async function findSentByTransactionId(
  client: MatrixClient,
  roomId: string,
  type: string,
  txnId: string,
  asUser: string,
): Promise<{ event_id: string } | undefined> {
  const filter = JSON.stringify({ senders: [asUser], types: [type], lazy_load_members: true });
  const page = await client.get<{ chunk: { event_id: string; unsigned?: { transaction_id?: string } }[] }>(
    `/rooms/${seg(roomId)}/messages`,
    { query: { dir: "b", limit: "20", filter }, as: asUser, retry: false },
  );
  const found = page.chunk.find((event) => event.unsigned?.transaction_id === txnId);
  return found ? { event_id: found.event_id } : undefined;
}

export async function redact(
  client: MatrixClient,
  roomId: string,
  eventId: string,
  txnId: string,
  content: Record<string, unknown>,
  asUser: string,
): Promise<string> {
  const { event_id } = await client.put<{ event_id: string }>(
    `/rooms/${seg(roomId)}/redact/${seg(eventId)}/${seg(txnId)}`,
    content,
    {
      as: asUser,
      findEarlier: () => findSentByTransactionId(client, roomId, "m.room.redaction", txnId, asUser),
    },
  );
  return event_id;
}

export interface MessagesPage {
  chunk: RawEvent[];
  start: string;
  end?: string;
}

/** One page of `/messages`. */
export function messages(
  client: MatrixClient,
  roomId: string,
  query: { from?: string; to?: string; dir: "b" | "f"; limit: number; filter?: string },
  signal?: AbortSignal,
): Promise<MessagesPage> {
  return client.get<MessagesPage>(`/rooms/${seg(roomId)}/messages`, {
    query: { ...query },
    ...(signal ? { signal } : {}),
  });
}

/** Ids of the events that replace (edit) an event. */
export async function replacementsOf(
  client: MatrixClient,
  roomId: string,
  eventId: string,
  /** Only the replacements this user sent (the only ones that count: the spec ignores the others'). */
  sender?: string,
): Promise<string[]> {
  const ids: string[] = [];
  let from: string | undefined;
  do {
    const page = await client.get<{ chunk: RawEvent[]; next_batch?: string }>(
      `/rooms/${seg(roomId)}/relations/${seg(eventId)}/m.replace`,
      { prefix: "/_matrix/client/v1", query: { limit: 100, ...(from ? { from } : {}) } },
    );
    for (const event of page.chunk)
      if (typeof event.event_id === "string" && (sender === undefined || event.sender === sender))
        ids.push(event.event_id);
    from = page.next_batch;
  } while (from);
  return ids;
}
