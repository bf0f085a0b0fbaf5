import { describe, expect, it } from "vitest";
import { KeyedSerialQueue } from "./send-queue.ts";

const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("KeyedSerialQueue", () => {
  it("keeps order within a key and overlaps different keys", async () => {
    const queue = new KeyedSerialQueue();
    const log: string[] = [];
    const task = (name: string, ms: number) => async () => {
      log.push(`start ${name}`);
      await tick(ms);
      log.push(`end ${name}`);
      return name;
    };
    const results = await Promise.all([
      queue.run("a", task("a1", 30)),
      queue.run("a", task("a2", 1)),
      queue.run("b", task("b1", 5)),
    ]);
    expect(results).toEqual(["a1", "a2", "b1"]);
    expect(log.indexOf("end a1")).toBeLessThan(log.indexOf("start a2"));
    expect(log.indexOf("start b1")).toBeLessThan(log.indexOf("end a1"));
    await tick(1);
    expect(queue.activeKeys).toBe(0);
  });

  it("runs the next task after a failure", async () => {
    const queue = new KeyedSerialQueue();
    const failed = queue.run("a", async () => {
      throw new Error("boom");
    });
    const next = queue.run("a", async () => "ok");
    await expect(failed).rejects.toThrow("boom");
    await expect(next).resolves.toBe("ok");
  });
});
