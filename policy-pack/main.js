// The policy pack's entry point (package.json "main"), which Pulumi's runner (@pulumi/pulumi/cmd/run-policy-pack)
// loads with require(): plain JavaScript and no top-level await (require() of an ES module cannot wait), so it checks
// the Node version first, then loads the TypeScript pack with Node 24's type stripping.
import { requireNode24 } from "@nova-matrix/infra/node-guard";

requireNode24("nova-matrix's policy pack");

import("./pack.ts").catch((error) => {
  console.error(error);
  process.exit(1);
});
