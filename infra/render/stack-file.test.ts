// Both stack files name their Cloud KMS key as the secrets provider (never a passphrase), so the first
// `pulumi stack init` of a stack cannot fall back to passphrase encryption; each broken variant is refused.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { secretsProviderUrl } from "../bootstrap/plan.ts";
import { PROJECT_DIR } from "./run.ts";
import { STACKS, secretsProviderProblems } from "./stack-file.ts";

describe.each(STACKS)("Pulumi.%s.yaml", (stack) => {
  it("names the stack's own bootstrap KMS key and no passphrase", () => {
    const file = parse(readFileSync(join(PROJECT_DIR, `Pulumi.${stack}.yaml`), "utf8")) as {
      secretsprovider: string;
    };
    expect(secretsProviderProblems(file, stack)).toEqual([]);
    expect(file.secretsprovider).toBe(secretsProviderUrl("nova-chat-prod", "europe-west1", stack));
  });
});

describe("secretsProviderProblems", () => {
  const good = { secretsprovider: secretsProviderUrl("nova-chat-prod", "europe-west1", "prod") };
  it("refuses a stack file without a secrets provider", () => {
    expect(secretsProviderProblems({ config: {} }, "prod")).toEqual([
      "Pulumi.prod.yaml: no secretsprovider; name the stack's KMS key: secretsprovider: " +
        "gcpkms://projects/<project>/locations/<region>/keyRings/pulumi/cryptoKeys/pulumi-prod",
    ]);
  });

  it("refuses a passphrase, however it is spelled", () => {
    expect(secretsProviderProblems({ ...good, encryptionsalt: "v1:abc:def" }, "prod")).toEqual([
      "Pulumi.prod.yaml: encryptionsalt is a passphrase provider's; secrets are encrypted with Cloud KMS only",
    ]);
    expect(secretsProviderProblems({ secretsprovider: "passphrase" }, "prod")[0]).toMatch(/is not Cloud KMS/);
    expect(secretsProviderProblems({ secretsprovider: "awskms://alias/x" }, "prod")[0]).toMatch(
      /is not Cloud KMS/,
    );
  });

  it("refuses another stack's key or a key outside the bootstrap's ring", () => {
    expect(secretsProviderProblems(good, "staging")[0]).toMatch(/is not this stack's bootstrap key/);
    const otherRing = good.secretsprovider.replace("keyRings/pulumi/", "keyRings/other/");
    expect(secretsProviderProblems({ secretsprovider: otherRing }, "prod")[0]).toMatch(/bootstrap key/);
    expect(secretsProviderProblems(good, "prod")).toEqual([]);
  });
});
