// The repository's workspaces and the imports between their files, read from the sources with TypeScript's own
// import scanner: the checks that no relative import crosses a workspace and that the bridge's image holds every
// file its entry point loads.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import ts from "typescript";

/** The repository's root (this file is dev/repo/imports.ts). */
export const REPO_ROOT = resolve(import.meta.dirname, "../..");

export interface Workspace {
  /** The folder, relative to the root: `bridge`. */
  dir: string;
  /** The package name: `@nova-matrix/bridge`. */
  name: string;
  /** `exports` subpath (`.`, `./service`) -> file relative to the root. */
  exports: Record<string, string>;
}

/** The root package.json's workspaces. */
export function workspaces(root = REPO_ROOT): Workspace[] {
  const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { workspaces: string[] };
  return manifest.workspaces.map((dir) => {
    const pkg = JSON.parse(readFileSync(join(root, dir, "package.json"), "utf8")) as {
      name: string;
      exports?: Record<string, string>;
    };
    const exports = Object.fromEntries(
      Object.entries(pkg.exports ?? {}).map(([subpath, file]) => [subpath, join(dir, file)]),
    );
    return { dir, name: pkg.name, exports };
  });
}

/** Every module specifier a source file imports or re-exports, statically or with `import()`. */
export function importSpecifiers(source: string): string[] {
  return ts.preProcessFile(source, true, true).importedFiles.map((file) => file.fileName);
}

/**
 * The file (relative to the root) an import names: a relative path, or a workspace package's export. Undefined for
 * anything else (node: built-ins, registry packages).
 */
export function resolveImport(
  fromFile: string,
  specifier: string,
  all: readonly Workspace[],
  root = REPO_ROOT,
): string | undefined {
  if (specifier.startsWith("./") || specifier.startsWith("../"))
    return relative(root, resolve(root, dirname(fromFile), specifier));
  const workspace = all.find((w) => specifier === w.name || specifier.startsWith(`${w.name}/`));
  if (!workspace) return undefined;
  const subpath = `.${specifier.slice(workspace.name.length)}`;
  const file = workspace.exports[subpath];
  if (!file) throw new Error(`${fromFile}: ${specifier} is not exported by ${workspace.dir}/package.json`);
  return file;
}

/** The workspace folder a file (relative to the root) is in, or undefined for a file outside every workspace. */
export function workspaceOf(file: string, all: readonly Workspace[]): Workspace | undefined {
  return all.find((w) => file === w.dir || file.startsWith(`${w.dir}${sep}`));
}

/** The TypeScript and JavaScript sources of a workspace (relative to the root), without node_modules. */
export function sourceFiles(dir: string, root = REPO_ROOT): string[] {
  const files: string[] = [];
  const walk = (folder: string) => {
    for (const entry of readdirSync(join(root, folder), { withFileTypes: true })) {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== "node_modules" && !entry.name.startsWith(".")) walk(path);
      } else if (/\.(ts|mts|js|mjs)$/.test(entry.name)) files.push(path);
    }
  };
  walk(dir);
  return files;
}

export interface CrossingImport {
  file: string;
  specifier: string;
  target: string;
}

/** Relative imports that leave their workspace: each must be the other workspace's package name instead. */
export function crossingImports(root = REPO_ROOT): CrossingImport[] {
  const all = workspaces(root);
  const crossing: CrossingImport[] = [];
  for (const workspace of all)
    for (const file of sourceFiles(workspace.dir, root))
      for (const specifier of importSpecifiers(readFileSync(join(root, file), "utf8"))) {
        if (!specifier.startsWith(".")) continue;
        const target = resolveImport(file, specifier, all, root) as string;
        if (workspaceOf(target, all) !== workspace) crossing.push({ file, specifier, target });
      }
  return crossing;
}

/** An entry point and every repository file it loads, through relative imports and workspace packages. */
export function moduleGraph(entry: string, root = REPO_ROOT): Set<string> {
  const all = workspaces(root);
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    if (!existsSync(join(root, file))) throw new Error(`${file} is imported but does not exist`);
    for (const specifier of importSpecifiers(readFileSync(join(root, file), "utf8"))) {
      const target = resolveImport(file, specifier, all, root);
      if (target) visit(target);
    }
  };
  visit(entry);
  return seen;
}
