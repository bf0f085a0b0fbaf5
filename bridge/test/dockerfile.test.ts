// bridge/Dockerfile, linted: no registry is reachable here, so the image cannot be built; these are the rules that
// keep it simple enough to trust (hadolint is not in Debian). Parsed with dockerfile-ast, validated with
// dockerfile-utils (the Docker language server's checks).
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { moduleGraph } from "@nova-matrix/dev/repo";
import { DockerfileParser } from "dockerfile-ast";
import { validate } from "dockerfile-utils";
import { describe, expect, it } from "vitest";

const root = resolve(import.meta.dirname, "../..");
const text = readFileSync(join(root, "bridge/Dockerfile"), "utf8");
const dockerfile = DockerfileParser.parse(text);
const instructions = dockerfile.getInstructions();
const froms = dockerfile.getFROMs();
const finalStage = instructions.slice(instructions.indexOf(froms.at(-1) as (typeof instructions)[number]));
const args = (keyword: string, from = instructions) =>
  from.filter((i) => i.getKeyword() === keyword).map((i) => i.getArgumentsContent() ?? "");

describe("bridge/Dockerfile", () => {
  it("is valid Dockerfile syntax with no warnings", () => {
    expect(validate(text).map((d) => `${d.range.start.line + 1}: ${d.message}`)).toEqual([]);
  });

  it("is multi-stage, on a pinned Node 24 slim base (the Node version the tests run), never latest", () => {
    expect(froms.length).toBeGreaterThanOrEqual(2);
    const { devDependencies } = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
      devDependencies: { node: string };
    };
    for (const from of froms) {
      expect(from.getImageName()).toBe("node");
      expect(from.getImageTag()).toMatch(/^24\.\d+\.\d+-bookworm-slim$/);
      expect(from.getImageTag()).toBe(`${devDependencies.node}-bookworm-slim`);
    }
    expect(text).not.toMatch(/:latest\b/);
  });

  it("installs production dependencies only, reproducibly from the lockfile", () => {
    const runs = args("RUN").join("\n");
    expect(runs).toMatch(/npm ci\b[^\n]*--omit=dev/);
    expect(runs).toMatch(/--ignore-scripts/);
    expect(runs).not.toMatch(/npm install|npm i\b|yarn|curl|wget/);
  });

  it("runs as a numeric non-root user in the final stage", () => {
    const users = args("USER", finalStage);
    expect(users.length).toBe(1);
    const [uid] = (users[0] ?? "").split(":");
    expect(uid).toMatch(/^\d+$/);
    expect(Number(uid)).toBeGreaterThan(0);
    // USER comes before the command, after every COPY.
    const keywords = finalStage.map((i) => i.getKeyword());
    expect(keywords.lastIndexOf("COPY")).toBeLessThan(keywords.indexOf("USER"));
  });

  it("copies only paths that exist and starts the service entry point, whose imports are all in the image", () => {
    // COPY --from=<stage> copies between stages, not from the repository.
    const copies = dockerfile
      .getCOPYs()
      .filter((copy) => !copy.getFlags().some((flag) => flag.getName() === "from"))
      .map((copy) => copy.getArgumentsContent() ?? "");
    const sources = copies.flatMap((c) => c.split(/\s+/).slice(0, -1));
    for (const source of sources) expect(existsSync(join(root, source)), source).toBe(true);
    const [cmd] = args("CMD", finalStage);
    expect(JSON.parse(cmd ?? "[]")).toEqual(["node", "bridge/src/service/main.ts"]);
    const inImage = (file: string) =>
      sources.some(
        (source) => file === source || file.startsWith(source.endsWith("/") ? source : `${source}/`),
      );
    const needed = [...moduleGraph("bridge/src/service/main.ts")];
    expect(needed.length).toBeGreaterThan(10);
    expect(needed.filter((file) => !inImage(file))).toEqual([]);
    // A workspace package resolves through its package.json's exports: the image needs each one it enters.
    const manifests = new Set(needed.map((file) => `${file.split("/")[0]}/package.json`));
    expect([...manifests].filter((manifest) => !inImage(manifest))).toEqual([]);
  });
});
