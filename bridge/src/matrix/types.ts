/** A room event as the client-server API returns it, before validation (fields may be missing or mistyped). */
export interface RawEvent {
  event_id?: unknown;
  type?: unknown;
  sender?: unknown;
  origin_server_ts?: unknown;
  state_key?: unknown;
  content?: unknown;
  redacts?: unknown;
  unsigned?: unknown;
  room_id?: unknown;
}

/** The parts of a `/sync` response the bridge reads. */
export interface SyncResponse {
  next_batch: string;
  rooms?: {
    join?: Record<
      string,
      {
        timeline?: { events?: RawEvent[]; limited?: boolean; prev_batch?: string };
        state?: { events?: RawEvent[] };
      }
    >;
  };
}
