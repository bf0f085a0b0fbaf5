// `npm run diff` end to end: a throwaway clone of this repository's HEAD (its own git, its own commit), one change
// committed there, and the real renderer run at both commits through a git worktree.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROJECT_DIR } from "./run.ts";

let scratch: string;
let clone: string;
const git = (...args: string[]) => execFileSync("git", ["-C", clone, ...args], { encoding: "utf8" }).trim();

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "nova-diff-test-"));
  clone = join(scratch, "repo");
  execFileSync("git", ["clone", "--quiet", "--shared", PROJECT_DIR, clone]);
  await symlink(join(PROJECT_DIR, "node_modules"), join(clone, "node_modules"), "dir");
  // The change under review: Synapse's volume shrinks, which Kubernetes can only do by a new, empty claim.
  const stackFile = join(clone, "Pulumi.staging.yaml");
  const staging = await readFile(stackFile, "utf8");
  expect(staging).toContain("size: 10Gi");
  await writeFile(stackFile, staging.replace("size: 10Gi", "size: 5Gi"));
  git(
    "-c",
    "user.name=diff test",
    "-c",
    "user.email=diff@test.invalid",
    "commit",
    "--quiet",
    "-am",
    "shrink",
  );
});
afterAll(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

const diff = (...args: string[]) => {
  const result = spawnSync(
    process.execPath,
    [join(PROJECT_DIR, "infra/render/diff-cli.ts"), "--repo", clone, ...args],
    { cwd: PROJECT_DIR, encoding: "utf8", env: { ...process.env, INIT_CWD: PROJECT_DIR } },
  );
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
};

describe("npm run diff", () => {
  it("reports the committed change against the parent commit, as a replacement, and leaves no worktree behind", async () => {
    const out = join(scratch, "report.md");
    const result = diff("--stack", "staging", "--base", "HEAD~1", "--out", out);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(
      `### Stack \`staging\`: changes against \`HEAD~1\` (${git("rev-parse", "--short=12", "HEAD~1")})`,
    );
    expect(result.stdout).toContain("0 to add, 1 to change (1 replaced), 0 to remove.");
    expect(result.stdout).toContain('| `spec.resources.requests.storage` | `"10Gi"` | `"5Gi"` | replaces |');
    expect(await readFile(out, "utf8")).toBe(result.stdout);
    expect(git("worktree", "list").split("\n")).toHaveLength(1);

    const same = diff("--stack", "staging", "--base", "HEAD");
    expect(same.code, same.stderr).toBe(0);
    expect(same.stdout).toContain("No change to any resource.");
  }, 300_000); // four renders of the real program: minutes on a loaded two-core machine

  it("fails clearly on a ref that is not a commit", () => {
    const result = diff("--stack", "staging", "--base", "no-such-branch");
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('--base: "no-such-branch" is not a commit');
  });
});
