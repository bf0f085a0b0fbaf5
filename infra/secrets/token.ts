// The one way the program makes a secret string: @pulumi/random, kept in the stack's state, rotated by its keeper.
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";

/**
 * A generated token of `length` alphanumeric characters (safe unquoted in YAML, in URLs, headers and libpq connection
 * strings), wrapped with `pulumi.secret`. A new `keeper` value replaces it: that is how a secret is rotated
 * (docs/secrets.md).
 */
export function generatedToken(
  parent: pulumi.Resource,
  name: string,
  keeper: string | undefined,
  length: number,
): pulumi.Output<string> {
  return pulumi.secret(
    new random.RandomPassword(
      name,
      { length, special: false, keepers: { rotation: keeper ?? "initial" } },
      { parent },
    ).result,
  );
}
