// The Pulumi program's entry point (infra/package.json "main"). Plain JavaScript: it checks the Node version first
// (node-guard.js), then loads index.ts.
import { requireNode24 } from "./node-guard.js";

requireNode24("nova-matrix's Pulumi program");

const program = await import("./index.ts");

/** Pulumi's runtime calls the default export and takes what it returns as the stack outputs. */
export default function stackOutputs() {
  return { ...program };
}
