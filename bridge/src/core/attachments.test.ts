import { describe, expect, it } from "vitest";
import { gradientPng, onePagePdf, videoMp4 } from "../../test/samples.ts";
import { sineWav } from "../../test/wav.ts";
import { probeAttachment, UnsupportedAttachmentError } from "./attachments.ts";

const text = (value: string) => new TextEncoder().encode(value);

describe("probeAttachment: the kind from the bytes", () => {
  it("reads an image's type and size, whatever the declared type says of the subtype", async () => {
    expect(await probeAttachment(gradientPng(64, 48))).toEqual({
      kind: "image",
      mimetype: "image/png",
      ext: "png",
      width: 64,
      height: 48,
    });
    // A JPEG declared for PNG bytes: the bytes win (same family, so not refused).
    expect(await probeAttachment(gradientPng(8, 8), "image/jpeg")).toMatchObject({ mimetype: "image/png" });
  });

  it("reads audio's duration from the container", async () => {
    expect(await probeAttachment(sineWav(750), "audio/wav")).toEqual({
      kind: "audio",
      mimetype: "audio/wav",
      ext: "wav",
      durationMs: 750,
    });
  });

  it("recognises video and documents", async () => {
    expect(await probeAttachment(videoMp4(2000, 320, 240), "video/mp4")).toMatchObject({
      kind: "video",
      mimetype: "video/mp4",
    });
    expect(await probeAttachment(onePagePdf("hello"))).toEqual({
      kind: "file",
      mimetype: "application/pdf",
      ext: "pdf",
    });
  });

  it("carries UTF-8 text as a file of the declared text type, plain text by default", async () => {
    expect(await probeAttachment(text("a,b\n1,2\n"), "text/csv")).toMatchObject({
      kind: "file",
      mimetype: "text/csv",
    });
    expect(await probeAttachment(text("héllo"))).toMatchObject({ kind: "file", mimetype: "text/plain" });
  });

  it("refuses what it does not carry, and a declared type the bytes contradict", async () => {
    const refused = (bytes: Uint8Array, declared?: string) =>
      expect(probeAttachment(bytes, declared)).rejects.toThrow(UnsupportedAttachmentError);
    // An ELF executable, unknown binary, HTML declared as an image, a PNG declared as audio.
    await refused(new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0, ...new Array(60).fill(0)]));
    await refused(new Uint8Array([0xff, 0x00, 0x13, 0x37, 0x00]));
    await refused(text("<html><script>alert(1)</script></html>"), "image/png");
    await expect(probeAttachment(gradientPng(4, 4), "audio/wav")).rejects.toThrow(
      /content-type says audio\/wav but the bytes are image\/png/,
    );
  });
});
