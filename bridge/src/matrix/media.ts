import { type MatrixClient, MediaPrefix } from "./client.ts";

/** The homeserver's upload limit in bytes (`m.upload.size`), or undefined when it sets none. */
export async function maxUploadSize(client: MatrixClient): Promise<number | undefined> {
  const config = await client.get<{ "m.upload.size"?: number }>("/media/config", {
    prefix: "/_matrix/client/v1",
  });
  const size = config["m.upload.size"];
  return typeof size === "number" && Number.isFinite(size) ? size : undefined;
}

/** Uploads bytes to the media repository; returns the `mxc://` URI. */
export async function upload(
  client: MatrixClient,
  bytes: Uint8Array,
  contentType: string,
  filename: string,
  asUser: string,
): Promise<string> {
  const { content_uri } = await client.post<{ content_uri: string }>("/upload", bytes, {
    prefix: MediaPrefix.V3,
    query: { filename },
    headers: { "Content-Type": contentType },
    as: asUser,
  });
  return content_uri;
}

/** The parts of an `mxc://<server>/<media id>` URI, or undefined when it is not one. */
export function parseMxc(uri: string): { serverName: string; mediaId: string } | undefined {
  const match = /^mxc:\/\/([^/?#]+)\/([A-Za-z0-9_-]+)$/.exec(uri);
  return match ? { serverName: match[1] as string, mediaId: match[2] as string } : undefined;
}

/** A thumbnail request as the media API takes it (`scale` keeps the aspect ratio, `crop` fills the box). */
export interface ThumbnailSpec {
  width: number;
  height: number;
  method: "crop" | "scale";
}

/**
 * The media item's bytes as the homeserver answers (authenticated media, `/_matrix/client/v1/media`): a Response
 * to stream, status and headers included. The path is the standard one, so a media worker behind a proxy serves it.
 */
export function download(
  client: MatrixClient,
  media: { serverName: string; mediaId: string },
  signal?: AbortSignal,
): Promise<Response> {
  return client.raw(
    `/media/download/${encodeURIComponent(media.serverName)}/${encodeURIComponent(media.mediaId)}`,
    {
      prefix: "/_matrix/client/v1",
      // The homeserver answers at once with what it has; a remote fetch is not waited for (federation is off).
      query: { timeout_ms: "20000" },
      ...(signal ? { signal } : {}),
    },
  );
}

/** A thumbnail the homeserver made (Synapse generates its configured sizes at upload, for the images it can read). */
export function thumbnail(
  client: MatrixClient,
  media: { serverName: string; mediaId: string },
  spec: ThumbnailSpec,
  signal?: AbortSignal,
): Promise<Response> {
  return client.raw(
    `/media/thumbnail/${encodeURIComponent(media.serverName)}/${encodeURIComponent(media.mediaId)}`,
    {
      prefix: "/_matrix/client/v1",
      query: {
        width: String(spec.width),
        height: String(spec.height),
        method: spec.method,
        timeout_ms: "20000",
      },
      ...(signal ? { signal } : {}),
    },
  );
}
