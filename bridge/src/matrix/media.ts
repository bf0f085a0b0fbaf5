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
