// The README and docs/ name commands and files; each must exist, so the docs cannot drift from the repository.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT, workspaces } from "./imports.ts";

const docs = [
  "README.md",
  ...workspaces()
    .map((w) => join(w.dir, "README.md"))
    .filter((file) => existsSync(join(REPO_ROOT, file))),
  ...readdirSync(join(REPO_ROOT, "docs"))
    .filter((name) => name.endsWith(".md"))
    .map((name) => join("docs", name)),
];
const TOP_LEVEL = ["infra", "bridge", "dev", "bench", "contracts", "policy-pack", "docs", ".ci", ".github"];

/** `npm run <script>` commands in a text. */
function npmRunCommands(text: string): string[] {
  return [...text.matchAll(/\bnpm run ([a-z][\w:-]*)/g)].map((match) => match[1] as string);
}

/** Repository paths a text names in backticks or links: `infra/index.ts`, (docs/runbooks.md). Placeholders skipped. */
function repositoryPaths(text: string): string[] {
  const candidates = [...text.matchAll(/`([^`\s]+)`|\]\(([^)\s#]+)/g)].map((m) => (m[1] ?? m[2]) as string);
  return candidates
    .map((path) => path.replace(/^\.\//, "").replace(/[:#].*$/, ""))
    .filter(
      (path) =>
        (TOP_LEVEL.some((dir) => path.startsWith(`${dir}/`)) || /^Pulumi\.[a-z]+\.yaml$/.test(path)) &&
        !/[<>*{}$]|\.\.\./.test(path),
    );
}

describe("the docs name what exists", () => {
  const scripts = new Map<string, Set<string>>();
  const root = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as {
    scripts: Record<string, string>;
  };
  scripts.set(".", new Set(Object.keys(root.scripts)));

  it.each(docs)("%s: every `npm run` command is a script of the root package.json", (doc) => {
    const text = readFileSync(join(REPO_ROOT, doc), "utf8");
    const missing = npmRunCommands(text).filter((name) => !scripts.get(".")?.has(name));
    expect(missing).toEqual([]);
  });

  it.each(docs)("%s: every repository path it names exists", (doc) => {
    const text = readFileSync(join(REPO_ROOT, doc), "utf8");
    const missing = repositoryPaths(text).filter((path) => !existsSync(join(REPO_ROOT, path)));
    expect(missing).toEqual([]);
  });

  it("finds commands and paths, and skips placeholders", () => {
    const text =
      "Run `npm run render -- --out x` and npm run bench; see `infra/index.ts:12`, [runbooks](docs/runbooks.md#a), `bench/results/<date>.json`, `Pulumi.staging.yaml`.";
    expect(npmRunCommands(text)).toEqual(["render", "bench"]);
    expect(repositoryPaths(text)).toEqual(["infra/index.ts", "docs/runbooks.md", "Pulumi.staging.yaml"]);
  });
});
