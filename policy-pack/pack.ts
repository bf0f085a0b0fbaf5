// The pack Pulumi runs: every policy mandatory (a violation stops the preview or the update).
import { PolicyPack } from "@pulumi/policy";
import { policies } from "./policies.ts";

new PolicyPack("nova-matrix", {
  description:
    "nova-matrix's deployment rules (infra/policy/rules.ts), the ones npm test checks the rendered stacks with.",
  enforcementLevel: "mandatory",
  policies,
});
