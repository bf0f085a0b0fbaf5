// A PostgreSQL SCRAM-SHA-256 password verifier, computed here so the setup Job sets the role's password without
// ever holding the password: `ALTER ROLE ... PASSWORD '<verifier>'` stores it as is, and a failed statement that
// PostgreSQL logs (log_min_error_statement) shows only the verifier. Format: RFC 5803, as PostgreSQL stores it.
import { createHash, createHmac, pbkdf2Sync } from "node:crypto";

const ITERATIONS = 4096; // PostgreSQL's default scram_iterations

/**
 * `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`. The salt is derived from the password, so the same
 * password always gives the same verifier (a stable Secret, no needless Job re-runs); passwords here are random.
 * Passwords must be ASCII (SASLprep leaves ASCII unchanged; the generated ones are alphanumeric).
 */
export function scramSha256Verifier(password: string): string {
  if (!/^[\x20-\x7e]+$/.test(password))
    throw new Error("scramSha256Verifier: the password must be printable ASCII");
  const salt = createHash("sha256").update(`nova-matrix scram salt\0${password}`).digest().subarray(0, 16);
  const salted = pbkdf2Sync(password, salt, ITERATIONS, 32, "sha256");
  const hmac = (key: Buffer, text: string) => createHmac("sha256", key).update(text).digest();
  const storedKey = createHash("sha256").update(hmac(salted, "Client Key")).digest();
  const serverKey = hmac(salted, "Server Key");
  return `SCRAM-SHA-256$${ITERATIONS}:${salt.toString("base64")}$${storedKey.toString("base64")}:${serverKey.toString("base64")}`;
}
