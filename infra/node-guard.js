// Plain JavaScript on purpose: it must run, and explain itself, under an older Node too. The program and the policy
// pack are TypeScript that Node >= 24 runs directly; an older Node would stop on the first `.ts` import with its own
// error, so their entry points call this first.
const REQUIRED_MAJOR = 24;

/** Stops the process with one line naming the Node `what` needs and how to get it, under a Node older than 24. */
export function requireNode24(what) {
  const major = Number(process.versions.node.split(".")[0]);
  if (major >= REQUIRED_MAJOR) return;
  console.error(
    `${what} needs Node >= ${REQUIRED_MAJOR}, but pulumi ran Node ${process.versions.node} ` +
      `(${process.execPath}): install Node ${REQUIRED_MAJOR} (nvm install ${REQUIRED_MAJOR}, or nodejs.org), or put ` +
      `the repository's own Node first: PATH="$PWD/node_modules/.bin:$PATH" pulumi preview (after npm ci).`,
  );
  process.exit(1);
}
