// Under a Node older than 24 (many laptops), the program stops first with one line that says what it needs and how
// to get it, instead of Node's own error on the `.ts` import. Run with the machine's own older Node.
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { PROJECT_DIR } from "./render/run.ts";

/** Every `node` on PATH outside node_modules (npm puts the project's Node 24 first) older than 24. */
function olderNodes(): { path: string; version: string }[] {
  const path = (process.env.PATH ?? "")
    .split(":")
    .filter((dir) => !dir.includes("node_modules"))
    .join(":");
  const found = spawnSync("which", ["-a", "node"], { encoding: "utf8", env: { PATH: path } }).stdout;
  return [...new Set(found.split("\n").filter(Boolean))]
    .map((node) => ({ path: node, version: execFileSync(node, ["--version"], { encoding: "utf8" }).trim() }))
    .filter(({ version }) => Number(version.slice(1).split(".")[0]) < 24);
}

const nodes = olderNodes();
// Without an older Node there is nothing to run the guard with; CI machines have one (npm runs on it).
const describeOld = nodes.length > 0 || process.env.CI === "true" ? describe : describe.skip;

describeOld(
  `the program's entry point under an older Node (${nodes[0]?.version ?? "none found on PATH"})`,
  () => {
    it("is the one Pulumi runs: Pulumi.yaml main infra/, infra/package.json main main.js", () => {
      const project = parse(readFileSync(join(PROJECT_DIR, "Pulumi.yaml"), "utf8")) as { main: string };
      expect(project.main).toBe("infra/");
      const infra = JSON.parse(readFileSync(join(PROJECT_DIR, "infra/package.json"), "utf8")) as {
        main: string;
      };
      expect(infra.main).toBe("main.js");
    });

    it("stops before loading anything, with one line naming the Node it needs and how to get it", () => {
      const old = nodes[0];
      if (!old) throw new Error("CI=true and no Node older than 24 on PATH: install Debian's nodejs");
      const result = spawnSync(old.path, [join(PROJECT_DIR, "infra/main.js")], {
        cwd: PROJECT_DIR,
        encoding: "utf8",
      });
      expect(result.status).toBe(1);
      expect(result.stdout).toBe("");
      const lines = result.stderr.trim().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(
        `needs Node >= 24, but pulumi ran Node ${old.version.slice(1)} (${old.path})`,
      );
      expect(lines[0]).toContain("nvm install 24");
      expect(lines[0]).toContain('PATH="$PWD/node_modules/.bin:$PATH" pulumi preview');
      // The engines field says the same.
      const root = JSON.parse(readFileSync(join(PROJECT_DIR, "package.json"), "utf8")) as {
        engines: { node: string };
      };
      expect(root.engines.node).toBe(">=24");
    });
  },
);
