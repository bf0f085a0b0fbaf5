import { describe, expect, it } from "vitest";
import { transactionId } from "./messages.ts";

describe("transactionId", () => {
  it("is stable for a sender and key, different across senders and keys, and URL-safe", () => {
    const a = transactionId("@nova_alice:s", "key/1 ü");
    expect(transactionId("@nova_alice:s", "key/1 ü")).toBe(a);
    expect(transactionId("@nova_bob:s", "key/1 ü")).not.toBe(a);
    expect(transactionId("@nova_alice:s", "key/2")).not.toBe(a);
    expect(a).toMatch(/^nova\.[A-Za-z0-9_-]{43}$/);
    // The separator keeps ("ab", "c") and ("a", "bc") apart.
    expect(transactionId("ab", "c")).not.toBe(transactionId("a", "bc"));
  });
});
