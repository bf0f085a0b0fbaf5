// What an uploaded file is, decided from its bytes: the declared Content-Type is a claim, the bytes are the file.
// `file-type` reads the magic numbers (and, for Office files, the zip's members), `image-size` an image's header,
// `music-metadata` an audio or video container's duration.
import { fileTypeFromBuffer } from "file-type";
import { imageSize } from "image-size";
import { parseBuffer } from "music-metadata";
import type { AttachmentKind } from "./events.ts";

/** What the bridge learned of a file: its kind, its real type, and the sizes a front end lays it out with. */
export interface Probed {
  kind: AttachmentKind;
  mimetype: string;
  /** The file name extension of the type (`png`, `mp4`), for a default file name. */
  ext: string;
  width?: number;
  height?: number;
  durationMs?: number;
}

/** Why a file is not accepted (the API answers 415 with this text). */
export class UnsupportedAttachmentError extends Error {
  override name = "UnsupportedAttachmentError";
}

/**
 * Images the homeserver can thumbnail (Synapse's THUMBNAIL_SUPPORTED_MEDIA_FORMAT_MAP) are images; other image
 * formats (TIFF, PSD, HEIC, ...) are carried as files: a front end could not show them inline everywhere.
 */
const IMAGE_TYPES = new Set(["image/png", "image/jpeg", "image/gif", "image/webp"]);
const VIDEO_TYPES = new Set(["video/mp4", "video/webm", "video/quicktime", "video/ogg", "video/x-matroska"]);
/** Documents and archives carried as files (`m.file`). Anything else binary is refused. */
const FILE_TYPES = new Set([
  "application/pdf",
  "application/zip",
  "application/gzip",
  "application/x-7z-compressed",
  "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
  "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
  "application/vnd.openxmlformats-officedocument.presentationml.presentation",
  "application/vnd.oasis.opendocument.text",
  "application/vnd.oasis.opendocument.spreadsheet",
  "application/vnd.oasis.opendocument.presentation",
  "application/rtf",
  "image/tiff",
  "image/heic",
  "image/avif",
  "image/bmp",
]);
/** Text has no magic number: accepted when it is valid UTF-8 without NUL bytes, as the declared text type. */
const TEXT_TYPES = new Set(["text/plain", "text/csv", "text/markdown"]);
const TEXT_DEFAULT = "text/plain";

/** The accepted types, for error messages and the API docs. */
export const ACCEPTED_TYPES = {
  image: [...IMAGE_TYPES],
  video: [...VIDEO_TYPES],
  audio: ["audio/*"],
  file: [...FILE_TYPES, ...TEXT_TYPES],
} as const;

/**
 * Decides the kind from the bytes. `declared` (the Content-Type the caller sent, optional) must not contradict
 * them: declaring `image/png` for a WAV file is a client bug, refused rather than guessed.
 */
export async function probeAttachment(bytes: Uint8Array, declared?: string): Promise<Probed> {
  const claimed = declared?.split(";")[0]?.trim().toLowerCase() || undefined;
  const sniffed = await fileTypeFromBuffer(bytes);
  if (!sniffed) {
    const type = claimed && TEXT_TYPES.has(claimed) ? claimed : TEXT_DEFAULT;
    if (claimed && !TEXT_TYPES.has(claimed) && claimed !== "application/octet-stream")
      throw new UnsupportedAttachmentError(
        `the bytes are not a recognised ${claimed} file (accepted: images ${ACCEPTED_TYPES.image.join(", ")}; ` +
          `video ${ACCEPTED_TYPES.video.join(", ")}; audio/*; documents and ${[...TEXT_TYPES].join(", ")})`,
      );
    if (!isUtf8Text(bytes))
      throw new UnsupportedAttachmentError(
        "unrecognised binary data: not a supported image, video, audio or document",
      );
    return {
      kind: "file",
      mimetype: type,
      ext: type === "text/csv" ? "csv" : type === "text/markdown" ? "md" : "txt",
    };
  }
  const { mime, ext } = sniffed;
  const kind = kindOf(mime);
  if (!kind)
    throw new UnsupportedAttachmentError(
      `${mime} files are not accepted (images, video, audio and documents are)`,
    );
  if (
    claimed &&
    claimed !== "application/octet-stream" &&
    majorOf(claimed) !== majorOf(mime) &&
    !sameFamily(claimed, mime)
  )
    throw new UnsupportedAttachmentError(`content-type says ${claimed} but the bytes are ${mime}`);
  const probed: Probed = { kind, mimetype: mime, ext };
  if (kind === "image") {
    const size = safely(() => imageSize(bytes));
    if (size?.width && size.height) {
      // EXIF orientations 5 to 8 turn the picture a quarter: the displayed width is the stored height.
      const turned = (size.orientation ?? 1) >= 5;
      probed.width = turned ? size.height : size.width;
      probed.height = turned ? size.width : size.height;
    }
  }
  if (kind === "audio" || kind === "video") {
    const metadata = await parseBuffer(
      bytes,
      { mimeType: mime, size: bytes.byteLength },
      { duration: true },
    ).catch(() => undefined);
    const seconds = metadata?.format.duration;
    if (seconds !== undefined && Number.isFinite(seconds) && seconds >= 0)
      probed.durationMs = Math.round(seconds * 1000);
    const video = metadata?.format.trackInfo?.find((track) => track.video)?.video;
    if (kind === "video" && video?.pixelWidth && video.pixelHeight) {
      probed.width = video.pixelWidth;
      probed.height = video.pixelHeight;
    }
  }
  return probed;
}

function kindOf(mime: string): AttachmentKind | undefined {
  if (IMAGE_TYPES.has(mime)) return "image";
  if (VIDEO_TYPES.has(mime)) return "video";
  if (mime.startsWith("audio/")) return "audio";
  if (FILE_TYPES.has(mime)) return "file";
  return undefined;
}

const majorOf = (mime: string) => mime.split("/")[0];

/** `application/zip` declared for a .docx (itself a zip), `audio/mp4` for an `.m4a` sniffed as video: the same file. */
function sameFamily(claimed: string, sniffed: string): boolean {
  if (claimed === "application/zip" && sniffed.startsWith("application/vnd.openxmlformats")) return true;
  return (
    (majorOf(claimed) === "audio" || majorOf(claimed) === "video") &&
    (majorOf(sniffed) === "audio" || majorOf(sniffed) === "video")
  );
}

function isUtf8Text(bytes: Uint8Array): boolean {
  if (bytes.includes(0)) return false;
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

function safely<T>(run: () => T): T | undefined {
  try {
    return run();
  } catch {
    return undefined;
  }
}
