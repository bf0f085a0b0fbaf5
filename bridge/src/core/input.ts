import { InvalidIdError } from "@nova-matrix/contracts";
import { z } from "zod";
import { InvalidInputError } from "./errors.ts";

const id = (what: string) =>
  z.string({ error: `expected ${what} (a non-empty string)` }).min(1, `expected ${what}`);

export const inputSchemas = {
  conversationId: id("a conversation id"),
  userId: id("a Nova user id"),
  messageId: id("a message id").regex(/^\$/, { error: "expected a message id as returned by send ($...)" }),
  idempotencyKey: id("an idempotency key").max(200, { error: "must be at most 200 characters" }),
  text: z.string({ error: "expected a string" }).min(1, { error: "must not be empty" }).max(65_536, {
    error: "must be at most 65536 characters",
  }),
  groupName: z.string({ error: "expected a string" }).min(1, { error: "must not be empty" }).max(255, {
    error: "must be at most 255 characters",
  }),
  reason: z
    .string({ error: "expected a string" })
    .max(1000, { error: "must be at most 1000 characters" })
    .optional(),
  mimetype: z
    .string({ error: "expected a MIME type" })
    .regex(/^audio\/[a-z0-9.+-]+$/i, { error: "expected an audio MIME type (audio/...)" }),
  durationMs: z.number({ error: "expected a number of milliseconds" }).int().nonnegative().optional(),
  bytes: z.instanceof(Uint8Array, { error: "expected the file as a Uint8Array (or Buffer)" }),
  filename: z
    .string({ error: "expected a file name" })
    .min(1, { error: "must not be empty" })
    .max(255, { error: "must be at most 255 characters" })
    .refine((name) => !/[/\\]/.test(name) && ![...name].some((c) => c.charCodeAt(0) < 0x20), {
      error: "must not contain slashes or control characters",
    })
    .optional(),
  limit: z.number({ error: "expected a number" }).int().min(1).max(1000),
} as const;

/** Validates one input field; throws {@link InvalidInputError} naming it. */
export function check<S extends z.ZodType>(field: string, schema: S, value: unknown): z.infer<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw new InvalidInputError(field, result.error.issues[0]?.message ?? "is invalid");
  return result.data;
}

/** Runs an id derivation; an id that cannot become a Matrix id (too long once escaped) is an invalid input. */
export function asMatrixId<T>(field: string, derive: () => T): T {
  try {
    return derive();
  } catch (error) {
    if (error instanceof InvalidIdError) throw new InvalidInputError(field, error.message);
    throw error;
  }
}
