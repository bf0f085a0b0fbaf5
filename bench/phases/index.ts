// The phases `npm run bench` runs, in this order. A new phase: a module exporting a `Phase` (../phase.ts), listed
// here, with its results' field and table in ../report.ts and a line in docs/performance.md.
import type { Phase } from "../phase.ts";
import { catchup } from "./catchup.ts";
import { scale } from "./scale.ts";
import { subscribers } from "./subscribers.ts";
import { throughput } from "./throughput.ts";
import { tuning } from "./tuning.ts";
import { workers } from "./workers.ts";

export const PHASES: readonly Phase[] = [throughput, workers, catchup, tuning, subscribers, scale];
