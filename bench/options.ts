// The bench's command line (`npm run bench -- --help`). Parsed once by run.ts; every phase reads the result.
import { fileURLToPath } from "node:url";
import { Command, InvalidArgumentError } from "commander";

export interface BenchOptions {
  /** Concurrent conversations per workload run. */
  concurrency: number[];
  /** Length of each workload window (s). */
  duration: number;
  /** Messages sent while the bridge is stopped (catch-up). */
  catchup: number;
  /** Conversation counts for memory and start-up (scale). */
  scale: number[];
  /** Minutes of conversation creation the scale phase may spend; beyond it the points are extrapolated. */
  scaleBudget: number;
  createConcurrency: number;
  /** Alternating pairs (raw/bridge, default/shipped); the report compares medians. */
  repeat: number;
  /** Idle WebSocket subscribers (five per user) and the length of each idle window (s). */
  subscribers: number;
  idleWindow: number;
  /** File name of the results (default: the date). */
  name?: string;
  /** Phases (or parts of one) left out, by the names in `--help`. */
  skip: string[];
  /** Results folder. */
  out: string;
}

const list = (value: string) =>
  value.split(",").map((part) => {
    const n = Number(part);
    if (!Number.isInteger(n) || n < 1)
      throw new InvalidArgumentError(`expected positive integers, got "${part}"`);
    return n;
  });
const positive = (value: string) => {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0)
    throw new InvalidArgumentError(`expected a positive number, got "${value}"`);
  return n;
};

/**
 * `--skip`'s parser: the comma-separated names, each one of `skippable` (each phase's name and parts); an unknown
 * one is an error that lists them, not a phase silently run.
 */
export const skipList = (skippable: readonly string[]) => (value: string) => {
  const skip = value.split(",").filter(Boolean);
  const unknown = skip.filter((name) => !skippable.includes(name));
  if (unknown.length > 0)
    throw new InvalidArgumentError(`unknown phase "${unknown.join('", "')}"; known: ${skippable.join(",")}`);
  return skip;
};

/** Parses `argv` (process.argv's shape); `--skip` takes the names in `skippable`. */
export function parseOptions(argv: readonly string[], skippable: readonly string[]): BenchOptions {
  const program = new Command()
    .name("bench")
    .description("Bridge vs raw Synapse on the harness (see docs/performance.md)")
    .option("--concurrency <list>", "concurrent conversations per run", list, [1, 8, 32])
    .option("--duration <seconds>", "length of each workload window", positive, 20)
    .option("--catchup <messages>", "messages sent while the bridge is stopped", positive, 1000)
    .option("--scale <list>", "conversation counts for memory and start-up", list, [100, 1000, 10_000])
    .option(
      "--scale-budget <minutes>",
      "room creation allowed for the scale phase; beyond it: slope",
      positive,
      20,
    )
    .option(
      "--subscribers <n>",
      "idle WebSocket subscribers (user tokens, five per user); at least 2",
      (v) => {
        const n = list(v)[0] as number;
        if (n < 2)
          throw new InvalidArgumentError("expected at least 2 (idle windows with a tenth and all of them)");
        return n;
      },
      1000,
    )
    .option("--idle-window <seconds>", "length of each idle window of the subscribers phase", positive, 20)
    .option("--create-concurrency <n>", "concurrent conversation creations", positive, 8)
    .option(
      "--repeat <n>",
      "alternating raw/bridge and default/shipped pairs; the report uses medians",
      (v) => list(v)[0] as number,
      3,
    )
    .option("--name <name>", "file name of the results (default: the date)")
    .option("--skip <phases>", `comma-separated: ${skippable.join(",")}`, skipList(skippable), [])
    .option("--out <dir>", "results folder", fileURLToPath(new URL("./results", import.meta.url)));
  program.parse(argv);
  return program.opts<BenchOptions>();
}
