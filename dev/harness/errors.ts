/** The harness cannot run here; the message says exactly why and how to fix it. */
export class HarnessUnavailableError extends Error {
  override name = "HarnessUnavailableError";
}
