// A loopback TCP proxy for fault tests: put it between a client and a server, then cut the line (every connection
// reset, new ones refused at once), black-hole it (connections stay open but no byte passes, as in a network
// partition), or hold only the replies (requests reach the server, its answers are lost: the "did it happen?"
// case), or delay every reply (a slow server), or partition it (the server's side ends, the client's stays open and
// silent: the server has given up on a client that has not noticed yet), and restore it. Bytes are forwarded
// untouched.
import { createServer, type Socket, connect as tcpConnect } from "node:net";

export type ProxyMode = "open" | "cut" | "blackhole" | "hold-replies" | "delay-replies" | "partition";

export interface TcpProxy {
  /** The port clients connect to (on 127.0.0.1). */
  readonly port: number;
  /** `http://127.0.0.1:<port>`, for HTTP servers behind it. */
  readonly url: string;
  readonly mode: ProxyMode;
  /** Connections accepted so far (each client connection counts once). */
  readonly accepted: number;
  /** Resets every open connection and resets new ones as they arrive, until {@link restore}. */
  cut(): void;
  /** Holds every byte in both directions (open and new connections) until {@link restore} or {@link cut}. */
  blackhole(): void;
  /** Forwards client bytes to the server but holds the server's replies, until {@link restore} or {@link cut}. */
  holdReplies(): void;
  /** Forwards everything, each chunk of the server's replies `ms` late (in order), until {@link restore}. */
  delayReplies(ms: number): void;
  /**
   * A partition seen from the server first: every open connection's server side is reset (as the server's TCP
   * keepalive or a load balancer would end it), while its client side stays open and silent (no byte, no close: the
   * client learns nothing until its own timeout); new connections are held the same way. {@link restore} then resets
   * the client sides, as the server would answer their next bytes.
   */
  partition(): void;
  /** Forwards again; held bytes flow on. */
  restore(): void;
  close(): Promise<void>;
}

interface Pair {
  client: Socket;
  upstream: Socket;
}

/** Starts a proxy on a free loopback port forwarding to `target`. */
export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let mode: ProxyMode = "open";
  let accepted = 0;
  let replyDelayMs = 0;
  const pairs = new Set<Pair>();
  /** Client sides kept open and silent by a partition. */
  const silent = new Set<Socket>();
  const resetSilent = () => {
    for (const client of silent) client.resetAndDestroy();
    silent.clear();
  };

  /** Whether bytes read from this side may flow now. */
  const flows = (side: "client" | "upstream") =>
    mode === "open" || mode === "delay-replies" || (mode === "hold-replies" && side === "client");
  const reset = (pair: Pair) => {
    pair.client.resetAndDestroy();
    pair.upstream.resetAndDestroy();
    pairs.delete(pair);
  };
  // A held side is not read (pause), so its kernel buffers fill and the peer sees a silent line.
  const apply = (pair: Pair) => {
    if (flows("client")) pair.client.resume();
    else pair.client.pause();
    if (flows("upstream")) pair.upstream.resume();
    else pair.upstream.pause();
  };

  // Like pipe(), but a drained destination resumes its source only while that direction flows.
  const forward = (from: Socket, to: Socket, side: "client" | "upstream") => {
    from.on("data", (chunk: Buffer) => {
      if (side === "upstream" && mode === "delay-replies") {
        // Same delay for every chunk: timers keep their order. Backpressure is ignored (test-sized replies).
        setTimeout(() => to.writable && to.write(chunk), replyDelayMs);
        return;
      }
      if (!to.write(chunk)) from.pause();
    });
    to.on("drain", () => {
      if (flows(side)) from.resume();
    });
    from.on("end", () => {
      if (side === "upstream" && mode === "delay-replies") setTimeout(() => to.end(), replyDelayMs);
      else to.end();
    });
  };

  const server = createServer({ pauseOnConnect: true }, (client) => {
    accepted++;
    if (mode === "cut") {
      client.resetAndDestroy();
      return;
    }
    if (mode === "partition") {
      client.on("error", () => {});
      silent.add(client); // paused since it connected: never read, never answered
      return;
    }
    const upstream = tcpConnect({ host: target.host, port: target.port });
    const pair: Pair = { client, upstream };
    pairs.add(pair);
    const forget = () => {
      if (mode === "partition") {
        // The client must not learn of it: its side stays open and silent.
        pairs.delete(pair);
        silent.add(client);
        upstream.destroy();
        return;
      }
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", forget);
    upstream.on("error", forget);
    client.on("close", forget);
    upstream.on("close", forget);
    forward(client, upstream, "client");
    forward(upstream, client, "upstream");
    apply(pair);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  if (!address || typeof address !== "object") throw new Error("the proxy has no loopback address");
  const port = address.port;
  const switchTo = (next: ProxyMode) => {
    mode = next;
    for (const pair of pairs) apply(pair);
  };

  return {
    port,
    url: `http://127.0.0.1:${port}`,
    get mode() {
      return mode;
    },
    get accepted() {
      return accepted;
    },
    cut() {
      mode = "cut";
      for (const pair of [...pairs]) reset(pair);
      resetSilent();
    },
    partition() {
      mode = "partition";
      for (const pair of [...pairs]) {
        pair.client.pause();
        pairs.delete(pair);
        silent.add(pair.client);
        pair.upstream.resetAndDestroy();
      }
    },
    blackhole: () => switchTo("blackhole"),
    holdReplies: () => switchTo("hold-replies"),
    delayReplies(ms: number) {
      replyDelayMs = ms;
      switchTo("delay-replies");
    },
    restore() {
      resetSilent();
      switchTo("open");
    },
    async close() {
      for (const pair of [...pairs]) reset(pair);
      resetSilent();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
