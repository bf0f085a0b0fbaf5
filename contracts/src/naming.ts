/**
 * The appservice's and the bridge's Matrix names: what Synapse's appservice registration (infra) reserves and what the
 * bridge creates inside it. One definition, so the registration's exclusive namespaces and the ids the bridge makes
 * cannot drift apart.
 *
 * Nova ids -> Matrix identifiers, and back. Matrix localparts allow only `a-z 0-9 . _ = - /`. Nova ids are arbitrary
 * strings, so they are escaped the way mautrix bridges do it, which is injective (two ids never share a localpart)
 * and reversible: `a-z 0-9 . -` are kept, `_` becomes `__`, an upper-case letter becomes `_` + its lower-case form,
 * and every other UTF-8 byte (including `=` and `/`) becomes `=` + two lower-case hex digits.
 */

/** The appservice registration's `id`. */
export const APPSERVICE_ID = "nova-bridge";
/** Prefix of every ghost user's localpart, `@nova_<escaped id>:<server>`: the exclusive users namespace `@nova_.*`. */
export const GHOST_PREFIX = "nova_";
/** Prefix of every conversation alias, `#nova_conv_<escaped id>:<server>`: the exclusive aliases namespace. */
export const CONVERSATION_ALIAS_PREFIX = "nova_conv_";
/** The localpart of the backend's service user `@nova-service:<server>` (exclusive too); the bridge acts as it. */
export const SERVICE_LOCALPART = "nova-service";
/** The registration's `sender_localpart`, the appservice's own bot: Synapse refuses it `/sync`, hence the service user. */
export const SENDER_LOCALPART = "nova-bridge";
/** `MATRIX_DEVICE_NAME` given to realtime-chat-service. */
export const DEVICE_NAME = "nova-realtime-chat-service";
/** Matrix limits a full user id or alias to 255 bytes. */
const MAX_ID_BYTES = 255;

export class InvalidIdError extends Error {
  override name = "InvalidIdError";
}

const KEPT = /^[a-z0-9.-]$/;

export function escapeLocalpart(id: string): string {
  let out = "";
  for (const char of id) {
    if (KEPT.test(char)) out += char;
    else if (char === "_") out += "__";
    else if (char >= "A" && char <= "Z") out += `_${char.toLowerCase()}`;
    else for (const byte of new TextEncoder().encode(char)) out += `=${byte.toString(16).padStart(2, "0")}`;
  }
  return out;
}

/** The inverse of {@link escapeLocalpart}; throws {@link InvalidIdError} on text it cannot have produced. */
export function unescapeLocalpart(escaped: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < escaped.length; i++) {
    const char = escaped[i] as string;
    if (KEPT.test(char)) bytes.push(char.charCodeAt(0));
    else if (char === "_") {
      const next = escaped[++i];
      if (next === "_") bytes.push(0x5f);
      else if (next !== undefined && next >= "a" && next <= "z") bytes.push(next.toUpperCase().charCodeAt(0));
      else throw new InvalidIdError(`"${escaped}" is not an escaped id: "_" must be followed by "_" or a-z`);
    } else if (char === "=") {
      const hex = escaped.slice(i + 1, i + 3);
      if (!/^[0-9a-f]{2}$/.test(hex))
        throw new InvalidIdError(`"${escaped}" is not an escaped id: "=" must be followed by 2 hex digits`);
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else throw new InvalidIdError(`"${escaped}" is not an escaped id: unexpected "${char}"`);
  }
  return new TextDecoder("utf-8", { fatal: true }).decode(new Uint8Array(bytes));
}

function checkNovaId(kind: string, id: string): void {
  if (typeof id !== "string" || id.length === 0)
    throw new InvalidIdError(`${kind} must be a non-empty string`);
}

function checkLength(kind: string, full: string): string {
  if (new TextEncoder().encode(full).length > MAX_ID_BYTES)
    throw new InvalidIdError(`${kind} is too long: its Matrix id "${full}" exceeds ${MAX_ID_BYTES} bytes`);
  return full;
}

/** `@nova_<escaped>:<server>`: the ghost Matrix user that speaks for a Nova user. */
export function ghostUserId(novaUserId: string, serverName: string): string {
  checkNovaId("user id", novaUserId);
  return checkLength("user id", `@${GHOST_PREFIX}${escapeLocalpart(novaUserId)}:${serverName}`);
}

export function ghostLocalpart(novaUserId: string): string {
  checkNovaId("user id", novaUserId);
  return `${GHOST_PREFIX}${escapeLocalpart(novaUserId)}`;
}

/** The Nova user id behind a ghost's Matrix id, or undefined for any other Matrix user. */
export function novaUserIdOf(matrixUserId: string, serverName: string): string | undefined {
  const prefix = `@${GHOST_PREFIX}`;
  const suffix = `:${serverName}`;
  if (!matrixUserId.startsWith(prefix) || !matrixUserId.endsWith(suffix)) return undefined;
  try {
    return unescapeLocalpart(matrixUserId.slice(prefix.length, -suffix.length));
  } catch {
    return undefined;
  }
}

/** The alias localpart (without `#` and server) for a conversation. */
export function conversationAliasLocalpart(conversationId: string): string {
  checkNovaId("conversation id", conversationId);
  return `${CONVERSATION_ALIAS_PREFIX}${escapeLocalpart(conversationId)}`;
}

/** `#nova_conv_<escaped>:<server>` */
export function conversationAlias(conversationId: string, serverName: string): string {
  return checkLength("conversation id", `#${conversationAliasLocalpart(conversationId)}:${serverName}`);
}

/** `@<localpart>:<serverName>` */
export function userId(localpart: string, serverName: string): string {
  return `@${localpart}:${serverName}`;
}

/** The full user id of the service user on a server. */
export function serviceUserId(serverName: string): string {
  return userId(SERVICE_LOCALPART, serverName);
}
