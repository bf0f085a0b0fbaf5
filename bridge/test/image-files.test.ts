// The image's file set, reproduced without Docker (no registry is reachable here, so no image can be built): each
// stage of bridge/Dockerfile is a folder, its COPY instructions copy what Docker would copy from the repository (or
// from an earlier stage), its `npm ci` runs as written, and the service is then started from the final stage's folder
// alone, as the image's CMD does, against the real Synapse. A file the image lacks fails here.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cp, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join, posix, resolve } from "node:path";
import { promisify } from "node:util";
import { ServiceProcess } from "@nova-matrix/dev/harness/service-process";
import { startTestStack, type TestStack } from "@nova-matrix/dev/harness/test-stack";
import { describeWithHarness } from "@nova-matrix/dev/harness/vitest";
import { Copy, DockerfileParser } from "dockerfile-ast";
import { afterAll, beforeAll, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../..");
const run = promisify(execFile);

interface Stage {
  name: string;
  /** The stage's file system root on the host. */
  root: string;
  workdir: string;
  cmd: string[];
}

/** Builds every stage of the Dockerfile under `into`; answers the final stage. */
async function buildFileSet(dockerfile: string, into: string): Promise<Stage> {
  const stages: Stage[] = [];
  let stage: Stage | undefined;
  const inStage = (path: string) => {
    if (!stage) throw new Error("an instruction before FROM");
    return join(stage.root, posix.resolve(stage.workdir, path));
  };
  for (const instruction of DockerfileParser.parse(dockerfile).getInstructions()) {
    const keyword = instruction.getKeyword();
    const args = instruction.getArguments().map((a) => a.getValue());
    if (keyword === "FROM") {
      const name = args[2] ?? String(stages.length);
      stage = { name, root: join(into, name), workdir: "/", cmd: [] };
      await mkdir(stage.root, { recursive: true });
      stages.push(stage);
    } else if (keyword === "WORKDIR") {
      if (!stage) throw new Error("WORKDIR before FROM");
      stage.workdir = posix.resolve(stage.workdir, args[0] ?? "/");
      await mkdir(inStage("."), { recursive: true });
    } else if (instruction instanceof Copy) {
      const paths = [...args];
      const dest = paths.pop() as string;
      const fromStage = instruction.getFromFlag()?.getValue() ?? undefined;
      const source = fromStage ? stages.find((s) => s.name === fromStage)?.root : ROOT;
      if (!source) throw new Error(`COPY --from=${fromStage}: no such stage`);
      const intoDir = dest.endsWith("/") || paths.length > 1;
      for (const path of paths) {
        const target = inStage(intoDir ? posix.join(dest, basename(path)) : dest);
        await cp(join(source, path), target, { recursive: true, verbatimSymlinks: true });
      }
    } else if (keyword === "RUN") {
      for (const command of (instruction.getArgumentsContent() ?? "").split("&&").map((c) => c.trim())) {
        const words = command.split(/\s+/);
        if (command === "npm cache clean --force") continue; // Shrinks the layer; the file set is the same.
        if (words[0] !== "npm" || words[1] !== "ci") {
          throw new Error(`RUN ${command}: this test knows only \`npm ci\`; teach it the new command`);
        }
        // From this machine's npm cache when it can: the same lockfile, the same files.
        await run("npm", [...words.slice(1), "--prefer-offline"], { cwd: inStage("."), maxBuffer: 16 << 20 });
      }
    } else if (keyword === "CMD") {
      if (!stage) throw new Error("CMD before FROM");
      stage.cmd = JSON.parse(instruction.getArgumentsContent() ?? "[]") as string[];
    }
  }
  if (!stage) throw new Error("no FROM in the Dockerfile");
  return stage;
}

describeWithHarness("the bridge image's file set", () => {
  let stack: TestStack;
  let folder: string;
  let image: Stage;

  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), "bridge-image-"));
    [stack, image] = await Promise.all([
      startTestStack(),
      buildFileSet(await readFile(join(ROOT, "bridge/Dockerfile"), "utf8"), folder),
    ]);
  }, 600_000);
  afterAll(async () => {
    await stack?.stop();
    await rm(folder, { recursive: true, force: true });
  });

  it("runs the service from the final stage's folder alone: /readyz answers 200 against the real Synapse", async () => {
    expect(image.cmd.slice(0, 1)).toEqual(["node"]);
    const entry = join(image.root, posix.resolve(image.workdir, image.cmd[1] ?? ""));
    // Only production dependencies are installed: a devDependency of the bridge is absent.
    await expect(readFile(join(image.root, "app/node_modules/vitest/package.json"))).rejects.toThrow();
    const service = new ServiceProcess({
      config: stack.config,
      databaseUrl: await stack.newBridgeDatabase(),
      apiToken: randomBytes(32).toString("base64url"),
      signingKey: randomBytes(32).toString("base64url"),
      entry,
    });
    try {
      await service.start(60_000);
      expect((await fetch(`${service.url}/readyz`)).status).toBe(200);
      // It runs the image's copy of the entry point, not the repository's.
      const cmdline = (await readFile(`/proc/${service.pid}/cmdline`, "utf8")).split("\0");
      expect(cmdline).toContain(entry);
    } finally {
      await service.stop();
    }
  }, 120_000);
});
