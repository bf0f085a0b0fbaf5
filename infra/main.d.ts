/** The stack outputs of infra/index.ts (infra/main.js checks the Node version, then loads it). */
export default function stackOutputs(): Record<string, unknown>;
