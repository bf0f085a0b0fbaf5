// Plain JavaScript on purpose: it must run, and explain itself, under the wrong (older) Node too.
// Fails fast when the project's scripts run under the wrong Node: the pinned `node` devDependency
// puts Node 24 first on PATH for every npm script; a bare `node` 20 means that install step did not run.
const major = Number(process.versions.node.split(".")[0]);
if (major < 24) {
  console.error(
    `nova-matrix needs Node >= 24, but this is Node ${process.versions.node} (${process.execPath}).\n` +
      "Run the project's commands through npm (npm test, npm run local): npm puts node_modules/.bin first on PATH,\n" +
      "and the `node` devDependency installs Node 24 there. If node_modules/.bin/node is missing, run `npm ci` again.",
  );
  process.exit(1);
}
console.log(`node ${process.versions.node} (${process.execPath})`);
