import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startTcpProxy, type TcpProxy } from "./tcp-proxy.ts";

/** A line-echo server: answers every chunk with "echo:" + the chunk. */
let echo: Server;
let echoPort: number;
let proxy: TcpProxy;
/** Everything the echo server received. */
let served = "";

/** Connects through the proxy; `received` collects what comes back, `ended` settles with how the line ended. */
function client(port: number) {
  const socket = tcpConnect({ host: "127.0.0.1", port });
  let received = "";
  socket.on("data", (chunk: Buffer) => {
    received += chunk.toString("utf8");
  });
  const ended = new Promise<string>((resolve) => {
    socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    socket.once("close", () => resolve("closed"));
  });
  const connected = new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  return { socket, connected, ended, received: () => received };
}

const within = <T>(promise: Promise<T>, ms: number) =>
  Promise.race([promise, new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), ms))]);

async function until(probe: () => boolean, ms = 2000) {
  const deadline = Date.now() + ms;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("harness: TCP proxy for fault tests", () => {
  const upstreamSockets = new Set<Socket>();
  beforeAll(async () => {
    echo = createServer((socket) => {
      upstreamSockets.add(socket);
      socket.on("data", (chunk: Buffer) => {
        served += chunk.toString("utf8");
        socket.write(`echo:${chunk.toString("utf8")}`);
      });
      socket.on("error", () => {});
      socket.on("close", () => upstreamSockets.delete(socket));
    });
    await new Promise<void>((resolve) => echo.listen(0, "127.0.0.1", () => resolve()));
    echoPort = (echo.address() as { port: number }).port;
  });
  afterEach(async () => {
    await proxy?.close();
  });
  afterAll(async () => {
    await new Promise((resolve) => echo.close(resolve));
  });

  it("forwards bytes both ways and counts connections", async () => {
    proxy = await startTcpProxy({ host: "127.0.0.1", port: echoPort });
    const c = client(proxy.port);
    await c.connected;
    c.socket.write("ping");
    await until(() => c.received() === "echo:ping");
    expect(proxy.accepted).toBe(1);
    expect(proxy.mode).toBe("open");
    c.socket.end();
    expect(await c.ended).toBe("closed");
  });

  it("cut resets open connections on both sides and refuses new ones until restored", async () => {
    proxy = await startTcpProxy({ host: "127.0.0.1", port: echoPort });
    const open = client(proxy.port);
    await open.connected;
    open.socket.write("a");
    await until(() => open.received() === "echo:a");
    proxy.cut();
    expect(await open.ended).toBe("ECONNRESET");
    await until(() => upstreamSockets.size === 0);

    const refused = client(proxy.port);
    expect(await within(refused.ended, 2000)).toBe("ECONNRESET");
    expect(refused.received()).toBe("");

    proxy.restore();
    const again = client(proxy.port);
    await again.connected;
    again.socket.write("b");
    await until(() => again.received() === "echo:b");
    again.socket.destroy();
  });

  it("blackhole holds bytes silently on open and new connections; restore delivers them", async () => {
    proxy = await startTcpProxy({ host: "127.0.0.1", port: echoPort });
    const open = client(proxy.port);
    await open.connected;
    proxy.blackhole();
    open.socket.write("held");
    const fresh = client(proxy.port);
    await fresh.connected; // the line looks up: the connection is accepted
    fresh.socket.write("new");
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(open.received()).toBe("");
    expect(fresh.received()).toBe("");
    expect(await within(open.ended, 10)).toBe("timeout");

    proxy.restore();
    await until(() => open.received() === "echo:held" && fresh.received() === "echo:new");
    open.socket.destroy();
    fresh.socket.destroy();
  });

  it("partition ends the server's side at once while the client's stays open and silent until restored", async () => {
    proxy = await startTcpProxy({ host: "127.0.0.1", port: echoPort });
    const open = client(proxy.port);
    await open.connected;
    open.socket.write("a");
    await until(() => open.received() === "echo:a");
    const servedBefore = served;
    proxy.partition();
    // The server sees its connection end...
    await until(() => upstreamSockets.size === 0);
    // ...the client sees nothing: no close, no answer to what it sends, and a new connection is as silent.
    open.socket.write("lost");
    const fresh = client(proxy.port);
    await fresh.connected;
    fresh.socket.write("new");
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(await within(open.ended, 10)).toBe("timeout");
    expect(await within(fresh.ended, 10)).toBe("timeout");
    expect(open.received()).toBe("echo:a");
    expect(fresh.received()).toBe("");
    expect(served).toBe(servedBefore);
    expect(upstreamSockets.size).toBe(0);

    // Back: the server has no such connection any more, so the clients' held lines are reset; new ones work.
    proxy.restore();
    expect(await open.ended).toBe("ECONNRESET");
    expect(await fresh.ended).toBe("ECONNRESET");
    const again = client(proxy.port);
    await again.connected;
    again.socket.write("b");
    await until(() => again.received() === "echo:b");
    again.socket.destroy();
  });

  it("hold-replies lets requests reach the server but keeps its answers until restored", async () => {
    proxy = await startTcpProxy({ host: "127.0.0.1", port: echoPort });
    const line = client(proxy.port);
    await line.connected;
    proxy.holdReplies();
    line.socket.write("question");
    await until(() => served.includes("question"));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(line.received()).toBe("");
    proxy.restore();
    await until(() => line.received() === "echo:question");
    line.socket.destroy();
  });

  it("delay-replies delivers every answer, in order, that much later; restore makes it prompt again", async () => {
    proxy = await startTcpProxy({ host: "127.0.0.1", port: echoPort });
    const line = client(proxy.port);
    await line.connected;
    proxy.delayReplies(400);
    const sentAt = performance.now();
    line.socket.write("one");
    await until(() => served.includes("one"));
    line.socket.write("two");
    await until(() => served.includes("two"));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(line.received()).toBe("");
    await until(() => line.received() === "echo:oneecho:two");
    expect(performance.now() - sentAt).toBeGreaterThanOrEqual(400);
    proxy.restore();
    line.socket.write("three");
    await until(() => line.received().endsWith("echo:three"), 300);
    line.socket.destroy();
  });
});
