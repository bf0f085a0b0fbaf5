// Runs Prometheus' own `promtool` (Debian's `prometheus` package) on rule groups: the check and the unit tests
// evaluate our expressions with the real PromQL engine. Test support, not used by the Pulumi program.
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { stringify } from "yaml";
import type { RuleGroup } from "./rules.ts";

const run = promisify(execFile);

/** One `promtool test rules` test group: sample series and the alerts expected at given times. */
export interface PromtoolTestGroup {
  readonly name: string;
  readonly interval: string;
  readonly input_series: readonly { series: string; values: string }[];
  readonly alert_rule_test: readonly {
    eval_time: string;
    alertname: string;
    exp_alerts: readonly { exp_labels: Record<string, string>; exp_annotations: Record<string, string> }[];
  }[];
}

export interface PromtoolResult {
  readonly ok: boolean;
  readonly output: string;
}

async function promtool(args: string[], cwd: string): Promise<PromtoolResult> {
  try {
    const { stdout, stderr } = await run("promtool", args, { cwd });
    return { ok: true, output: `${stdout}${stderr}` };
  } catch (error) {
    const failed = error as { stdout?: string; stderr?: string; message: string };
    return { ok: false, output: `${failed.stdout ?? ""}${failed.stderr ?? failed.message}` };
  }
}

/** `promtool check rules` then `promtool test rules` on the groups, in a temporary directory. */
export async function promtoolCheckAndTest(
  groups: readonly RuleGroup[],
  tests: readonly PromtoolTestGroup[],
): Promise<{ check: PromtoolResult; test: PromtoolResult }> {
  const dir = await mkdtemp(join(tmpdir(), "nova-promtool-"));
  try {
    await writeFile(join(dir, "rules.yaml"), stringify({ groups }));
    await writeFile(
      join(dir, "tests.yaml"),
      stringify({ rule_files: ["rules.yaml"], evaluation_interval: "30s", tests }),
    );
    const check = await promtool(["check", "rules", "rules.yaml"], dir);
    const test = await promtool(["test", "rules", "tests.yaml"], dir);
    return { check, test };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Builders of promtool expectations for these rule groups: `fires` (the rule's labels and annotations plus the
 * series' labels, as promtool reports the alert), `silent`, and a test `group` at a 1-minute interval.
 */
export function expectations(groups: readonly RuleGroup[], prefix: string) {
  const rule = (alertname: string) => {
    const found = groups.flatMap((g) => g.rules).find((r) => r.alert === alertname);
    if (!found) throw new Error(`${prefix}: no rule ${alertname}`);
    return found;
  };
  return {
    fires: (alertname: string, evalTime: string, seriesLabels: Record<string, string>) => ({
      eval_time: evalTime,
      alertname,
      exp_alerts: [
        {
          exp_labels: { ...rule(alertname).labels, ...seriesLabels },
          exp_annotations: { ...rule(alertname).annotations },
        },
      ],
    }),
    silent: (alertname: string, evalTime: string) => ({ eval_time: evalTime, alertname, exp_alerts: [] }),
    group: (
      name: string,
      series: PromtoolTestGroup["input_series"],
      tests: PromtoolTestGroup["alert_rule_test"],
    ): PromtoolTestGroup => ({
      name: `${prefix}: ${name}`,
      interval: "1m",
      input_series: series,
      alert_rule_test: tests,
    }),
  };
}
