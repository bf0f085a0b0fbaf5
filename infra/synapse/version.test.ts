// The pinned Synapse version: the window the harness may differ by, and a pin move that leaves no place behind.
import { execFile } from "node:child_process";
import { cp, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import {
  judgeHarnessVersion,
  movePin,
  PINNED_PLACES,
  parseSynapseVersion,
  SYNAPSE_IMAGE,
  SYNAPSE_VERSION,
} from "./version.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const run = promisify(execFile);
const pinnedFiles = async (root: string) =>
  new Map(
    await Promise.all(
      PINNED_PLACES.map(async ({ file }) => [file, await readFile(join(root, file), "utf8")] as const),
    ),
  );

describe("the harness's Synapse against the pinned one", () => {
  it("reads Debian package versions and image tags", () => {
    expect(parseSynapseVersion("1.160.0-1")).toEqual({ major: 1, minor: 160, patch: 0 });
    expect(parseSynapseVersion("1.161.0~rc1-2")).toEqual({ major: 1, minor: 161, patch: 0 });
    expect(parseSynapseVersion("v1.160.2")).toEqual({ major: 1, minor: 160, patch: 2 });
    expect(() => parseSynapseVersion("latest")).toThrow(/not a Synapse version/);
  });

  it.each([
    ["1.160.0-1", "1.160.0", "pinned"],
    ["1.160.3-1", "1.160.0", "within-window"],
    ["1.161.0-1", "1.160.0", "within-window"],
    ["1.161.4-2", "1.160.2", "within-window"],
    ["1.162.0-1", "1.160.0", "outside-window"],
    ["1.159.9-1", "1.160.0", "outside-window"],
    ["1.160.1-1", "1.160.2", "outside-window"],
    ["2.160.0-1", "1.160.0", "outside-window"],
  ])("harness %s, pinned %s: %s", (harness, pinned, kind) => {
    const verdict = judgeHarnessVersion(harness, pinned);
    expect(verdict.kind).toBe(kind);
    if (kind !== "pinned") expect(verdict.message).toContain("npm run pin-synapse");
  });
});

describe("the pinned version's places", () => {
  it("all carry the pinned version, and no other Synapse image tag is written anywhere", async () => {
    const files = await pinnedFiles(ROOT);
    for (const place of PINNED_PLACES)
      expect(files.get(place.file)).toContain(place.pattern(SYNAPSE_VERSION));
    const { stdout } = await run("git", ["grep", "-n", "-I", "element-hq/synapse:v[0-9]"], { cwd: ROOT });
    const tags = stdout.split("\n").filter(Boolean);
    expect(tags.length).toBeGreaterThan(0);
    for (const line of tags) {
      // version.ts builds the tag from SYNAPSE_VERSION; a literal tag anywhere else must be the pinned one.
      if (line.startsWith("infra/synapse/version.ts:")) continue;
      expect(line).toContain(SYNAPSE_IMAGE);
    }
  });

  it("move together: after a move no place names the old version, and a drifted place stops the move", async () => {
    const next = `${parseSynapseVersion(SYNAPSE_VERSION).major}.${parseSynapseVersion(SYNAPSE_VERSION).minor + 1}.0`;
    const moved = movePin(await pinnedFiles(ROOT), SYNAPSE_VERSION, next);
    expect([...moved.keys()].sort()).toEqual(PINNED_PLACES.map((p) => p.file).sort());
    for (const place of PINNED_PLACES) {
      expect(moved.get(place.file)).toContain(place.pattern(next));
      expect(moved.get(place.file)).not.toContain(place.pattern(SYNAPSE_VERSION));
    }
    const drifted = await pinnedFiles(ROOT);
    drifted.set("README.md", (drifted.get("README.md") ?? "").replaceAll(SYNAPSE_VERSION, "1.0.0"));
    expect(() => movePin(drifted, SYNAPSE_VERSION, next)).toThrow(/README.md does not carry/);
  });

  it("npm run pin-synapse -- --to moves a copy of the repository's pinned files", async () => {
    const copy = await mkdtemp(join(tmpdir(), "pin-synapse-"));
    try {
      for (const { file } of PINNED_PLACES) await cp(join(ROOT, file), join(copy, file), { recursive: true });
      const { stdout } = await run(
        process.execPath,
        [join(ROOT, "dev/pin-synapse.ts"), "--to", "1.999.1", "--root", copy],
        {
          cwd: ROOT,
        },
      );
      expect(stdout).toContain(`Pinned Synapse 1.999.1 (was ${SYNAPSE_VERSION})`);
      const after = await pinnedFiles(copy);
      for (const place of PINNED_PLACES) expect(after.get(place.file)).toContain(place.pattern("1.999.1"));
      // The repository itself is untouched.
      expect((await pinnedFiles(ROOT)).get("infra/synapse/version.ts")).toContain(SYNAPSE_VERSION);
      await expect(
        run(process.execPath, [join(ROOT, "dev/pin-synapse.ts"), "--to", "latest", "--root", copy], {
          cwd: ROOT,
        }),
      ).rejects.toMatchObject({ stderr: expect.stringContaining('"latest" is not a Synapse version') });
    } finally {
      await rm(copy, { recursive: true, force: true });
    }
  });
});
