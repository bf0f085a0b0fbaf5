import { describe, expect, it } from "vitest";
import {
  conversationAlias,
  escapeLocalpart,
  GHOST_PREFIX,
  ghostUserId,
  InvalidIdError,
  novaUserIdOf,
  SERVICE_LOCALPART,
  serviceUserId,
  unescapeLocalpart,
} from "./naming.ts";

describe("id escaping", () => {
  it.each([
    ["alice", "alice"],
    ["a.b-c", "a.b-c"],
    ["Alice", "_alice"],
    ["snake_case", "snake__case"],
    ["a=b", "a=3db"],
    ["a/b c", "a=2fb=20c"],
    ["ü", "=c3=bc"],
    ["😀", "=f0=9f=98=80"],
    ["550E8400-e29b", "550_e8400-e29b"],
  ])("escapes %j as %j and back", (id, escaped) => {
    expect(escapeLocalpart(id)).toBe(escaped);
    expect(unescapeLocalpart(escaped)).toBe(id);
  });

  it("only ever produces characters Matrix allows in a localpart", () => {
    const ids = ["Ωmega", "A_B", "x:y@z", "#room!", "tab\there", "ŁÓDŹ", "_=_"];
    for (const id of ids) expect(escapeLocalpart(id)).toMatch(/^[a-z0-9._=-]+$/);
  });

  it("never maps two different ids to the same localpart", () => {
    const ids = ["a_b", "a_B", "aB", "ab", "a__b", "a=5fb", "A", "_a", "a", "=41"];
    const escaped = new Set(ids.map(escapeLocalpart));
    expect(escaped.size).toBe(ids.length);
  });

  it("rejects text that is not an escaped id, naming the problem", () => {
    expect(() => unescapeLocalpart("a_1")).toThrow(InvalidIdError);
    expect(() => unescapeLocalpart("a=zz")).toThrow(/2 hex digits/);
    expect(() => unescapeLocalpart("A")).toThrow(/unexpected "A"/);
    expect(() => unescapeLocalpart("=ff")).toThrow();
  });

  it("builds ghost ids and aliases and reads the Nova id back", () => {
    expect(ghostUserId("Bob_1", "nova.test")).toBe("@nova__bob__1:nova.test");
    expect(novaUserIdOf("@nova__bob__1:nova.test", "nova.test")).toBe("Bob_1");
    expect(novaUserIdOf("@nova-service:nova.test", "nova.test")).toBeUndefined();
    expect(novaUserIdOf("@nova_bob:other.test", "nova.test")).toBeUndefined();
    expect(conversationAlias("Conv 1", "nova.test")).toBe("#nova_conv__conv=201:nova.test");
  });

  it("rejects empty and overlong ids with the field named", () => {
    expect(() => ghostUserId("", "nova.test")).toThrow(/user id must be a non-empty string/);
    expect(() => conversationAlias("x".repeat(300), "nova.test")).toThrow(/conversation id is too long/);
  });
});

describe("the appservice's namespaces", () => {
  it("keep the service user out of the ghosts' namespace", () => {
    // No escaped id turns a ghost into the service user.
    expect(ghostUserId("service", "s")).not.toBe(serviceUserId("s"));
    expect(serviceUserId("s")).toBe(`@${SERVICE_LOCALPART}:s`);
    expect(SERVICE_LOCALPART.startsWith(GHOST_PREFIX)).toBe(false);
  });
});
