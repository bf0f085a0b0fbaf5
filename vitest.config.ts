import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["{contracts,dev,infra,bridge,bench,policy-pack}/**/*.test.ts"],
    exclude: ["**/node_modules/**", "**/.local/**"],
    globalSetup: ["dev/harness/global-setup.ts"],
    // Each file in its own process: Pulumi's mock runtime and the sync loops keep process-wide state.
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 180_000,
    // A real server's log is the first thing a failing test needs; show console output as it happens.
    silent: false,
  },
});
