// A loopback TCP proxy for fault tests: put it between a client and a server, then cut the line (every connection
// reset, new ones refused at once) or black-hole it (connections stay open but no byte passes, as in a network
// partition), and restore it. Bytes are forwarded untouched.
import { createServer, type Socket, connect as tcpConnect } from "node:net";

export type ProxyMode = "open" | "cut" | "blackhole";

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
  const pairs = new Set<Pair>();

  const reset = (pair: Pair) => {
    pair.client.resetAndDestroy();
    pair.upstream.resetAndDestroy();
    pairs.delete(pair);
  };
  // pause() stops reading, so the kernel buffers fill and the peers see a silent line.
  const hold = (pair: Pair) => {
    pair.client.pause();
    pair.upstream.pause();
  };

  // Like pipe(), but a drained destination resumes its source only while the line is open (never in a black hole).
  const forward = (from: Socket, to: Socket) => {
    from.on("data", (chunk: Buffer) => {
      if (!to.write(chunk)) from.pause();
    });
    to.on("drain", () => {
      if (mode === "open") from.resume();
    });
    from.on("end", () => to.end());
  };

  const server = createServer({ pauseOnConnect: true }, (client) => {
    accepted++;
    if (mode === "cut") {
      client.resetAndDestroy();
      return;
    }
    const upstream = tcpConnect({ host: target.host, port: target.port });
    const pair: Pair = { client, upstream };
    pairs.add(pair);
    const forget = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", forget);
    upstream.on("error", forget);
    client.on("close", forget);
    upstream.on("close", forget);
    forward(client, upstream);
    forward(upstream, client);
    if (mode === "blackhole") hold(pair);
    else client.resume();
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  if (!address || typeof address !== "object") throw new Error("the proxy has no loopback address");
  const port = address.port;

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
    },
    blackhole() {
      mode = "blackhole";
      for (const pair of pairs) hold(pair);
    },
    restore() {
      mode = "open";
      for (const pair of pairs) {
        pair.client.resume();
        pair.upstream.resume();
      }
    },
    async close() {
      for (const pair of [...pairs]) reset(pair);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
