// Renders a stack at a git ref (a temporary `git worktree` sharing this checkout's node_modules) and at the working
// tree, each with that tree's own renderer in its own Node process, and returns both resources.json lists.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RenderedResource } from "./diff.ts";

const git = (repoDir: string, args: string[]) =>
  execFileSync("git", ["-C", repoDir, ...args], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  }).trim();

/** Runs `treeDir`'s renderer for `stack` into `outDir`; throws with the renderer's own message on failure. */
async function renderTree(
  treeDir: string,
  stack: string,
  outDir: string,
  what: string,
  preview: boolean,
): Promise<RenderedResource[]> {
  const cli = join(treeDir, "infra/render/cli.ts");
  if (!existsSync(cli)) throw new Error(`${what} has no offline renderer (infra/render/cli.ts)`);
  // process.execPath: the Node 24 this command runs on (npm scripts put node_modules/.bin/node first).
  const args = [cli, "--stack", stack, "--out", outDir, ...(preview ? ["--preview"] : [])];
  const result = spawnSync(process.execPath, args, {
    cwd: treeDir,
    encoding: "utf8",
    env: { ...process.env, INIT_CWD: treeDir },
  });
  if (result.status !== 0)
    throw new Error(
      `rendering ${what} failed: ${(result.stderr || result.stdout).trim() || `exit ${result.status}`}`,
    );
  return JSON.parse(await readFile(join(outDir, "resources.json"), "utf8")) as RenderedResource[];
}

export interface RenderPair {
  baseCommit: string;
  base: RenderedResource[];
  head: RenderedResource[];
}

/** Renders `stack` at `baseRef` and in `repoDir`'s working tree (`preview`: as a first `pulumi preview` sees it). */
export async function renderBaseAndHead(
  repoDir: string,
  stack: string,
  baseRef: string,
  preview = false,
): Promise<RenderPair> {
  let baseCommit: string;
  try {
    baseCommit = git(repoDir, ["rev-parse", "--verify", "--end-of-options", `${baseRef}^{commit}`]);
  } catch {
    throw new Error(
      `--base: "${baseRef}" is not a commit in ${repoDir} (fetch it first, e.g. git fetch origin main)`,
    );
  }
  const scratch = await mkdtemp(join(tmpdir(), "nova-diff-"));
  const tree = join(scratch, "base");
  let worktreeAdded = false;
  try {
    // A run killed half-way leaves a worktree entry whose directory is gone: forget those first.
    git(repoDir, ["worktree", "prune"]);
    git(repoDir, ["worktree", "add", "--detach", "--quiet", tree, baseCommit]);
    worktreeAdded = true;
    // The base tree reuses this checkout's dependencies (an older lock file may differ; the renderer's own imports
    // are what matters, and a missing one fails loudly).
    await symlink(join(repoDir, "node_modules"), join(tree, "node_modules"), "dir");
    const base = await renderTree(tree, stack, join(scratch, "base-out"), `--base ${baseRef}`, preview);
    const head = await renderTree(repoDir, stack, join(scratch, "head-out"), "the working tree", preview);
    return { baseCommit, base, head };
  } finally {
    if (worktreeAdded) git(repoDir, ["worktree", "remove", "--force", tree]);
    await rm(scratch, { recursive: true, force: true });
  }
}
