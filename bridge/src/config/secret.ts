import { inspect } from "node:util";

/**
 * A secret value that does not leak by accident: printing, logging, JSON-encoding or interpolating it gives
 * `[redacted]`. Read the value only where it is used, with {@link Secret.reveal}.
 */
export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return "[redacted]";
  }
  toJSON(): string {
    return "[redacted]";
  }
  [inspect.custom](): string {
    return "Secret([redacted])";
  }
}
