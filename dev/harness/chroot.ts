import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import lockfile from "proper-lockfile";
import { HarnessUnavailableError } from "./errors.ts";
import { run, which } from "./process.ts";

/** A Debian sid root file system with Debian's `matrix-synapse` package installed. */
export interface SynapseChroot {
  /** Host path of the chroot's root directory. */
  readonly root: string;
  /** The Debian package version of matrix-synapse inside it, for example `1.160.0-1`. */
  readonly version: string;
}

const COMPLETE_MARKER = ".nova-chroot-complete";
/**
 * Installed beside matrix-synapse: the Redis reply parser its worker mode needs (Debian's package does not depend
 * on it; the other half, txredisapi, is not in Debian at all: see dev/harness/txredisapi). A cached chroot built
 * before this list grew gets them installed in place (see `ensureSynapseChroot`).
 */
export const EXTRA_PACKAGES = ["python3-hiredis"] as const;
const DIR_PREFIX = "synapse-";

/** Where built chroots are cached: `$NOVA_MATRIX_CACHE`, else `/var/cache/nova-matrix`. */
export function cacheDir(): string {
  return process.env.NOVA_MATRIX_CACHE ?? "/var/cache/nova-matrix";
}

/** Why no chroot can be made on this machine, with the fix; undefined when one can. */
export async function chrootPreflight(): Promise<string | undefined> {
  if (process.platform !== "linux") {
    return `The Synapse test harness needs Linux (it runs Debian's matrix-synapse in a chroot); this is ${process.platform}. Run the tests on a Linux machine or in a Linux VM.`;
  }
  if (process.getuid?.() !== 0) {
    return "The Synapse test harness needs root: it builds a Debian chroot with mmdebstrap and starts Synapse with chroot(2). Run the tests as root (for example `sudo npm test`), or in a root container or VM.";
  }
  if (!(await which("mmdebstrap")) && !(await which("apt-get"))) {
    return "The Synapse test harness needs mmdebstrap, and there is no apt-get to install it with. Install mmdebstrap (Debian/Ubuntu: `apt-get install mmdebstrap`).";
  }
  return undefined;
}

async function findCached(dir: string): Promise<SynapseChroot | undefined> {
  if (!existsSync(dir)) return undefined;
  const candidates: { chroot: SynapseChroot; builtAt: number }[] = [];
  for (const name of await readdir(dir)) {
    if (!name.startsWith(DIR_PREFIX)) continue;
    const marker = join(dir, name, COMPLETE_MARKER);
    if (!existsSync(marker)) continue;
    const version = (await readFile(marker, "utf8")).trim();
    candidates.push({ chroot: { root: join(dir, name), version }, builtAt: (await stat(marker)).mtimeMs });
  }
  candidates.sort((a, b) => b.builtAt - a.builtAt);
  return candidates[0]?.chroot;
}

async function ensureMmdebstrap(log: (line: string) => void): Promise<void> {
  if (await which("mmdebstrap")) return;
  log("mmdebstrap is missing: installing it with apt-get (apt-get update, then install; about 30 s)");
  for (const args of [
    ["update", "-qq"],
    ["install", "-y", "-qq", "mmdebstrap"],
  ]) {
    const result = await run("apt-get", args, { env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
    if (result.code !== 0) {
      throw new HarnessUnavailableError(
        `Installing mmdebstrap failed (apt-get ${args.join(" ")} exited ${result.code}). Install it by hand: apt-get install mmdebstrap.\n${result.stderr.slice(-2000)}`,
      );
    }
  }
}

async function build(dir: string, log: (line: string) => void): Promise<SynapseChroot> {
  await ensureMmdebstrap(log);
  const buildDir = join(dir, `build-${process.pid}`);
  await rm(buildDir, { recursive: true, force: true });
  const started = Date.now();
  const elapsed = () => `${Math.round((Date.now() - started) / 1000)}s`;
  log(
    `Building the Synapse chroot once: Debian sid + matrix-synapse with mmdebstrap into ${dir} ` +
      "(usually about 80 s and 450 MB; later runs reuse it).",
  );
  const ticker = setInterval(() => log(`  still building the Synapse chroot (${elapsed()})`), 15_000);
  try {
    const result = await run(
      "mmdebstrap",
      [
        "--variant=apt",
        // sid's Release file is past its Valid-Until date; without this apt refuses it as expired.
        '--aptopt=Acquire::Check-Valid-Until "false"',
        `--include=${["matrix-synapse", ...EXTRA_PACKAGES].join(",")}`,
        "sid",
        buildDir,
      ],
      { onLine: (line) => line.startsWith("I: ") && log(`  [${elapsed()}] ${line.slice(3)}`) },
    );
    if (result.code !== 0) {
      throw new HarnessUnavailableError(
        `mmdebstrap failed (exit ${result.code}) while building the Synapse chroot. Check that Debian's package mirror is reachable.\n${result.stderr.slice(-3000)}`,
      );
    }
    // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format syntax, not a JS template.
    const query = await run("chroot", [buildDir, "dpkg-query", "-W", "-f=${Version}", "matrix-synapse"]);
    const version = query.stdout.trim();
    if (query.code !== 0 || !version) throw new Error(`matrix-synapse is not installed in ${buildDir}`);
    const root = join(dir, `${DIR_PREFIX}${version}`);
    await rm(root, { recursive: true, force: true });
    await rename(buildDir, root);
    await writeFile(join(root, COMPLETE_MARKER), `${version}\n`);
    log(`Synapse chroot ready: matrix-synapse ${version} at ${root} (${elapsed()})`);
    return { root, version };
  } finally {
    clearInterval(ticker);
    await rm(buildDir, { recursive: true, force: true });
  }
}

/** The extra packages a chroot lacks. */
async function missingExtras(chroot: SynapseChroot): Promise<string[]> {
  const query = await run("chroot", [
    chroot.root,
    "dpkg-query",
    "-W",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format syntax, not a JS template.
    "-f=${Package} ${Status}\n",
    ...EXTRA_PACKAGES,
  ]);
  const installed = new Set(
    query.stdout
      .split("\n")
      .filter((line) => line.endsWith(" install ok installed"))
      .map((line) => line.split(" ")[0]),
  );
  return EXTRA_PACKAGES.filter((name) => !installed.has(name));
}

/** Installs the missing extra packages into an existing chroot (apt-get inside it). */
async function installExtras(chroot: SynapseChroot, missing: readonly string[], log: (line: string) => void) {
  log(`Adding ${missing.join(", ")} to the Synapse chroot at ${chroot.root} (apt-get inside it, once)`);
  const env = {
    PATH: "/usr/sbin:/usr/bin:/sbin:/bin",
    DEBIAN_FRONTEND: "noninteractive",
    LANG: "C.UTF-8",
  };
  for (const args of [
    ["update", "-qq", "-o", "Acquire::Check-Valid-Until=false"],
    ["install", "-y", "-qq", "--no-install-recommends", ...missing],
  ]) {
    const result = await run("chroot", [chroot.root, "apt-get", ...args], { env });
    if (result.code !== 0)
      throw new HarnessUnavailableError(
        `Installing ${missing.join(", ")} into the Synapse chroot failed (apt-get ${args[0]} exited ${result.code}). ` +
          `Rebuild it with NOVA_MATRIX_SYNAPSE_REBUILD=1.\n${result.stderr.slice(-2000)}`,
      );
  }
}

/**
 * Returns the cached Synapse chroot, building it first when there is none. Concurrent callers (test workers,
 * `npm run local`) share one build through a lock file. Set `NOVA_MATRIX_SYNAPSE_REBUILD=1` to build a fresh
 * one with sid's newest matrix-synapse.
 */
export async function ensureSynapseChroot(
  log: (line: string) => void = (line) => console.log(line),
): Promise<SynapseChroot> {
  const dir = cacheDir();
  const rebuild = process.env.NOVA_MATRIX_SYNAPSE_REBUILD === "1";
  const cached = rebuild ? undefined : await findCached(dir);
  if (cached && (await missingExtras(cached)).length === 0) return cached;
  const problem = await chrootPreflight();
  if (problem) throw new HarnessUnavailableError(problem);
  await mkdir(dir, { recursive: true });
  const release = await lockfile.lock(dir, {
    lockfilePath: join(dir, "chroot.lock"),
    stale: 60_000,
    retries: { retries: 300, minTimeout: 1_000, maxTimeout: 1_000, factor: 1 },
    onCompromised: (error) => log(`warning: the chroot build lock was compromised: ${error.message}`),
  });
  try {
    const builtMeanwhile = rebuild ? undefined : await findCached(dir);
    if (!builtMeanwhile) return await build(dir, log);
    const missing = await missingExtras(builtMeanwhile);
    if (missing.length > 0) await installExtras(builtMeanwhile, missing, log);
    return builtMeanwhile;
  } finally {
    await release();
  }
}
