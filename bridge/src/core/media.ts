// Who may read a media item, and its bytes. The rule: a media item belongs to the conversations its messages were
// sent in (the store's media index, fed by the event log and the bridge's own sends); a member of one of them, or
// the service, may read it. Anyone else is told the same as for a media item that does not exist.
import type { MatrixClient } from "../matrix/client.ts";
import { download, parseMxc, type ThumbnailSpec, thumbnail } from "../matrix/media.ts";
import type { MediaIndex } from "../store/store.ts";
import type { Conversations } from "./conversations.ts";
import { ConversationNotFoundError } from "./errors.ts";

/** The thumbnail sizes the API offers: Synapse's default `thumbnail_sizes` it generates at upload (no dynamic work). */
export const THUMBNAIL_SIZES = {
  small: { width: 96, height: 96, method: "crop" },
  medium: { width: 320, height: 240, method: "scale" },
  large: { width: 800, height: 600, method: "scale" },
} as const satisfies Record<string, ThumbnailSpec>;
export type ThumbnailSize = keyof typeof THUMBNAIL_SIZES;

export interface MediaDeps {
  client: MatrixClient;
  index: MediaIndex;
  conversations: Conversations;
}

export class Media {
  readonly #deps: MediaDeps;

  constructor(deps: MediaDeps) {
    this.#deps = deps;
  }

  /**
   * Whether `reader` (a Nova user id; undefined for the service) may read the media item: it is in the index and,
   * for a user, the user is a member of one of its conversations now.
   */
  async mayRead(mxcUri: string, reader: string | undefined): Promise<boolean> {
    const conversations = await this.#deps.index.mediaConversations(mxcUri);
    if (reader === undefined) return conversations.length > 0;
    for (const conversationId of conversations) {
      const members = await this.#deps.conversations.members(conversationId).catch((error: unknown) => {
        if (error instanceof ConversationNotFoundError) return [] as string[];
        throw error;
      });
      if (members.includes(reader)) return true;
    }
    return false;
  }

  /** The homeserver's response for the file (stream it; the caller checked {@link mayRead} first). */
  open(mxcUri: string, signal?: AbortSignal): Promise<Response> {
    return download(this.#deps.client, mxcOrThrow(mxcUri), signal);
  }

  /** The homeserver's thumbnail of an image at one of {@link THUMBNAIL_SIZES}. */
  openThumbnail(mxcUri: string, size: ThumbnailSize, signal?: AbortSignal): Promise<Response> {
    return thumbnail(this.#deps.client, mxcOrThrow(mxcUri), THUMBNAIL_SIZES[size], signal);
  }
}

function mxcOrThrow(uri: string) {
  const parts = parseMxc(uri);
  if (!parts) throw new Error(`not an mxc:// URI: ${uri}`);
  return parts;
}
