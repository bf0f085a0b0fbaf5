// The Pulumi program's entry point (infra/package.json "main"). Plain JavaScript on purpose: it must run, and
// explain itself, under an older Node too. The program is TypeScript that Node >= 24 runs directly; an older Node
// would stop on the `.ts` import with its own error, so check first, then load index.ts.
const REQUIRED_MAJOR = 24;
const major = Number(process.versions.node.split(".")[0]);
if (major < REQUIRED_MAJOR) {
  console.error(
    `nova-matrix's Pulumi program needs Node >= ${REQUIRED_MAJOR}, but pulumi ran Node ${process.versions.node} ` +
      `(${process.execPath}): install Node ${REQUIRED_MAJOR} (nvm install ${REQUIRED_MAJOR}, or nodejs.org), or put ` +
      `the repository's own Node first: PATH="$PWD/node_modules/.bin:$PATH" pulumi preview (after npm ci).`,
  );
  process.exit(1);
}

const program = await import("./index.ts");

/** Pulumi's runtime calls the default export and takes what it returns as the stack outputs. */
export default function stackOutputs() {
  return { ...program };
}
