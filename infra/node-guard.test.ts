// Under a Node older than 24 (many laptops), the program and the policy pack stop first with one line that says what
// they need and how to get it, instead of Node's own error on the `.ts` import. Run with the machine's own older Node.
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
  `the program's and the policy pack's entry points under an older Node (${nodes[0]?.version ?? "none found on PATH"})`,
  () => {
    it("is the one Pulumi runs: Pulumi.yaml main infra/, infra/package.json main main.js", () => {
      const project = parse(readFileSync(join(PROJECT_DIR, "Pulumi.yaml"), "utf8")) as { main: string };
      expect(project.main).toBe("infra/");
      const infra = JSON.parse(readFileSync(join(PROJECT_DIR, "infra/package.json"), "utf8")) as {
        main: string;
      };
      expect(infra.main).toBe("main.js");
    });

    it("the policy pack's is its package.json main, CommonJS (Pulumi's runner require()s it)", () => {
      const pack = JSON.parse(readFileSync(join(PROJECT_DIR, "policy-pack/package.json"), "utf8")) as {
        main: string;
      };
      expect(pack.main).toBe("main.cjs");
    });

    it.each([
      ["the program", "infra/main.js", "nova-matrix's Pulumi program"],
      ["the policy pack", "policy-pack/main.cjs", "nova-matrix's policy pack"],
    ])(
      "%s stops before loading anything, with one line naming the Node it needs and how to get it",
      (_, entry, what) => {
        const old = nodes[0];
        if (!old) throw new Error("CI=true and no Node older than 24 on PATH: install Debian's nodejs");
        const result = spawnSync(old.path, [join(PROJECT_DIR, entry)], {
          cwd: PROJECT_DIR,
          encoding: "utf8",
        });
        expect(result.status).toBe(1);
        expect(result.stdout).toBe("");
        const lines = result.stderr.trim().split("\n");
        expect(lines).toHaveLength(1);
        expect(lines[0]).toContain(
          `${what} needs Node >= 24, but pulumi ran Node ${old.version.slice(1)} (${old.path})`,
        );
        expect(lines[0]).toContain("nvm install 24");
        expect(lines[0]).toContain('PATH="$PWD/node_modules/.bin:$PATH" pulumi preview');
      },
    );

    it("says the same in the engines field", () => {
      const root = JSON.parse(readFileSync(join(PROJECT_DIR, "package.json"), "utf8")) as {
        engines: { node: string };
      };
      expect(root.engines.node).toBe(">=24");
    });
  },
);
