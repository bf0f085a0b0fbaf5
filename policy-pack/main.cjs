// The policy pack's entry point (package.json "main"). Pulumi's runner (@pulumi/pulumi/cmd/run-policy-pack) loads it
// with require(), so it is CommonJS: any Node loads it, and an older one stops here with the Node guard's one line
// instead of failing on an ES module or a `.ts` file. The pack itself is TypeScript that Node >= 24 runs directly.
import("@nova-matrix/infra/node-guard")
  .then(({ requireNode24 }) => {
    requireNode24("nova-matrix's policy pack");
    return import("./pack.ts");
  })
  .catch((error) => {
    console.error(error);
    process.exit(1);
  });
