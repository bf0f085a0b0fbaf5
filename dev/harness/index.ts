// The real-Synapse and real-PostgreSQL test harness, shared by the tests of every package and by `npm run local`.

export { CHROMIUM_PATH, chromiumUnavailable, type HeadlessChromium, launchChromium } from "./browser.ts";
export { cacheDir, chrootPreflight, ensureSynapseChroot, type SynapseChroot } from "./chroot.ts";
export { HarnessUnavailableError } from "./errors.ts";
export { checkHaproxyConfig, type RunningHaproxy, startHaproxy } from "./haproxy.ts";
export { type RegisteredUser, registerWithSharedSecret } from "./matrix-admin.ts";
export {
  COUNT_STATEMENTS,
  type PostgresOptions,
  type PostgresServer,
  postgresBinDir,
  startPostgres,
  statementCalls,
} from "./postgres.ts";
export { freePort, run, sleep, waitFor } from "./process.ts";
export {
  checkSynapseConfig,
  type RunningSynapse,
  runInChroot,
  type SynapseOptions,
  type SynapsePaths,
  startSynapse,
} from "./synapse.ts";
export {
  newRedisPassword,
  PYTHON_DIR,
  type RunningSynapseCluster,
  startSynapseCluster,
} from "./synapse-workers.ts";
export { type ProxyMode, startTcpProxy, type TcpProxy } from "./tcp-proxy.ts";
export { signingKeyFile, type TestHomeserverOptions, testHomeserverFiles } from "./test-homeserver.ts";
