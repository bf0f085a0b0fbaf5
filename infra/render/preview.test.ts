// Previews with unknowns: the real program under the mock runtime in preview mode, where providers compute nothing
// (generated passwords, Cloud SQL's IP and CA, the static IP are unknown until apply). Both stacks must complete, and
// the offline diff must say "known after apply" where a value is unknown.
import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cell, diffMarkdown, diffRenders, type RenderedResource } from "./diff.ts";
import { KNOWN_AFTER_APPLY } from "./mocks.ts";
import { PROJECT_DIR } from "./run.ts";

let workDir: string;
beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), "nova-preview-"));
});
afterAll(async () => {
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

async function render(stack: string, preview: boolean): Promise<RenderedResource[]> {
  const out = join(workDir, `${stack}-${preview ? "preview" : "known"}`);
  const args = [join(PROJECT_DIR, "infra/render/cli.ts"), "--stack", stack, "--out", out];
  const result = spawnSync(process.execPath, preview ? [...args, "--preview"] : args, {
    cwd: PROJECT_DIR,
    encoding: "utf8",
    env: { ...process.env, INIT_CWD: PROJECT_DIR },
  });
  expect(result.status, result.stderr).toBe(0);
  expect(result.stderr).toBe("");
  return JSON.parse(await readFile(join(out, "resources.json"), "utf8")) as RenderedResource[];
}

const inputsOf = (resources: RenderedResource[], type: string, name: string) => {
  const found = resources.find((r) => r.type === type && r.name === name);
  if (!found) throw new Error(`no ${type} ${name}`);
  return found.inputs as Record<string, Record<string, unknown>>;
};

describe.each(["staging", "prod"])("stack %s in preview mode", (stack) => {
  it("completes, with every generated secret and what is built from it unknown, and the same resources", async () => {
    const [known, preview] = [await render(stack, false), await render(stack, true)];
    expect(preview.map((r) => `${r.type} ${r.name}`)).toEqual(known.map((r) => `${r.type} ${r.name}`));
    // Generated secrets: the values are unknown, so is everything derived from them.
    const synapseSecret = inputsOf(preview, "kubernetes:core/v1:Secret", "synapse-secrets");
    expect(synapseSecret.stringData).toBe(KNOWN_AFTER_APPLY);
    const synapse = inputsOf(preview, "kubernetes:apps/v1:Deployment", "synapse-deployment");
    const template = synapse.spec?.template as { metadata: { annotations: Record<string, string> } };
    expect(template.metadata.annotations["nova.chat/config-checksum"]).toBe(KNOWN_AFTER_APPLY);
    // The bridge image is built on merge (the stack file names its repository only): unknown until then.
    const bridge = inputsOf(preview, "kubernetes:apps/v1:Deployment", "bridge-deployment");
    const pod = bridge.spec?.template as { spec: { containers: { name: string; image: string }[] } };
    expect(pod.spec.containers.find((c) => c.name === "bridge")?.image).toBe(KNOWN_AFTER_APPLY);
    // What the program decides alone stays known: the Synapse image and the namespace.
    expect(JSON.stringify(synapse.spec)).toContain("ghcr.io/element-hq/synapse:v");
    expect((synapse.metadata as { namespace: string }).namespace).toBe(`nova-${stack}`);
  });
});

describe("prod in preview mode: what Google computes", () => {
  it("leaves Cloud SQL's address and the static IP unknown where they are used", async () => {
    const preview = await render("prod", true);
    const dns = inputsOf(preview, "gcp:dns/recordSet:RecordSet", "synapse-public-dns");
    expect(dns.rrdatas).toEqual([KNOWN_AFTER_APPLY]);
    const job = preview.find((r) => r.type === "kubernetes:batch/v1:Job" && r.name === "synapse-db-setup");
    expect(JSON.stringify(job?.inputs)).toContain(KNOWN_AFTER_APPLY);
    expect(JSON.stringify(job?.inputs)).not.toContain("10.20.0.3"); // the known-mode mock IP
  });
});

describe("the offline diff of unknown values", () => {
  it("says known after apply, in the cell and in the report", () => {
    expect(cell(KNOWN_AFTER_APPLY)).toBe("_known after apply_");
    const base: RenderedResource[] = [
      { type: "kubernetes:core/v1:ConfigMap", name: "c", inputs: { data: { a: "1" } } },
    ];
    const head: RenderedResource[] = [
      { type: "kubernetes:core/v1:ConfigMap", name: "c", inputs: { data: { a: KNOWN_AFTER_APPLY } } },
    ];
    const report = diffMarkdown(diffRenders(base, head), { stack: "prod", baseRef: "main", preview: true });
    expect(report).toContain('| `data.a` | `"1"` | _known after apply_ |');
    expect(report).toContain("values providers compute are known after apply");
  });
});
