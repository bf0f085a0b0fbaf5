import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { crossingImports, importSpecifiers, moduleGraph, workspaces } from "./imports.ts";

describe("workspace boundaries", () => {
  it("no relative import leaves its workspace: another workspace is imported by its package name", () => {
    expect(workspaces().map((w) => w.dir)).toEqual(
      expect.arrayContaining(["contracts", "infra", "bridge", "dev"]),
    );
    expect(crossingImports()).toEqual([]);
  });

  it("the bridge's entry point reaches the contracts package, not an infra file", () => {
    const files = [...moduleGraph("bridge/src/service/main.ts")];
    expect(files).toContain("contracts/src/outputs.ts");
    expect(files.filter((file) => file.startsWith("infra/"))).toEqual([]);
  });
});

describe("the import scanner", () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it("sees static, type-only, re-exported and dynamic imports", () => {
    const source = [
      'import a from "./a.ts";',
      'import type { B } from "../b.ts";',
      'export { c } from "@nova-matrix/contracts";',
      'const d = await import("./d.ts");',
    ].join("\n");
    expect(importSpecifiers(source)).toEqual(["./a.ts", "../b.ts", "@nova-matrix/contracts", "./d.ts"]);
  });

  it("reports a relative import into another workspace, and follows package imports", async () => {
    const root = await mkdtemp(join(tmpdir(), "nova-imports-"));
    dirs.push(root);
    const files: Record<string, string> = {
      "package.json": JSON.stringify({ workspaces: ["one", "two"] }),
      "one/package.json": JSON.stringify({ name: "@x/one", exports: { ".": "./index.ts" } }),
      "one/index.ts": 'import { two } from "../two/lib.ts";\nexport const one = two;\n',
      "two/package.json": JSON.stringify({ name: "@x/two", exports: { "./lib": "./lib.ts" } }),
      "two/lib.ts": 'export { one } from "@x/one";\nexport const two = 2;\n',
    };
    for (const [path, text] of Object.entries(files)) {
      await mkdir(join(root, dirname(path)), { recursive: true });
      await writeFile(join(root, path), text);
    }
    expect(crossingImports(root)).toEqual([
      { file: "one/index.ts", specifier: "../two/lib.ts", target: "two/lib.ts" },
    ]);
    expect([...moduleGraph("two/lib.ts", root)].sort()).toEqual(["one/index.ts", "two/lib.ts"]);
  });
});
