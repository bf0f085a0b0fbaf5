// Real files of each attachment kind, made here (no binary fixtures in the repository): a PNG any decoder reads,
// an MP4 container with a video track header, a PDF. The WAV is in wav.ts.
import { crc32, deflateSync } from "node:zlib";

/** An RGB PNG of `width` x `height` with a gradient (decodable by Pillow, so Synapse thumbnails it). */
export function gradientPng(width: number, height: number): Uint8Array {
  const chunk = (type: string, data: Buffer) => {
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    out.write(type, 4, "ascii");
    data.copy(out, 8);
    out.writeUInt32BE(crc32(Buffer.concat([Buffer.from(type, "ascii"), data])), 8 + data.length);
    return out;
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // RGB
  const rows = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    const row = y * (width * 3 + 1); // filter byte 0, then the pixels
    for (let x = 0; x < width; x++) {
      rows[row + 1 + x * 3] = Math.floor((255 * x) / width);
      rows[row + 2 + x * 3] = Math.floor((255 * y) / height);
      rows[row + 3 + x * 3] = 160;
    }
  }
  return new Uint8Array(
    Buffer.concat([
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      chunk("IHDR", header),
      chunk("IDAT", deflateSync(rows)),
      chunk("IEND", Buffer.alloc(0)),
    ]),
  );
}

/** An ISO BMFF (MP4) file: `ftyp`, a `moov` with the movie's duration and one video track of the given size. */
export function videoMp4(durationMs: number, width: number, height: number): Uint8Array {
  const box = (type: string, ...parts: Buffer[]) => {
    const body = Buffer.concat(parts);
    const head = Buffer.alloc(8);
    head.writeUInt32BE(8 + body.length, 0);
    head.write(type, 4, "ascii");
    return Buffer.concat([head, body]);
  };
  const u32 = (...values: number[]) => {
    const out = Buffer.alloc(4 * values.length);
    values.forEach((v, i) => void out.writeUInt32BE(v >>> 0, i * 4));
    return out;
  };
  const matrix = u32(0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000);
  const mvhd = box(
    "mvhd",
    u32(0, 0, 0, 1000, durationMs, 0x10000),
    Buffer.from([0x01, 0x00, 0, 0]),
    Buffer.alloc(8),
    matrix,
    Buffer.alloc(24),
    u32(2),
  );
  const tkhd = box(
    "tkhd",
    u32(0x00000003, 0, 0, 1, 0, durationMs),
    Buffer.alloc(8),
    Buffer.alloc(8), // layer, alternate group, volume (0 for video), reserved
    matrix,
    u32(width * 0x10000, height * 0x10000),
  );
  const mdhd = box("mdhd", u32(0, 0, 0, 1000, durationMs), Buffer.from([0x55, 0xc4, 0, 0]));
  const hdlr = box("hdlr", u32(0, 0), Buffer.from("vide", "ascii"), Buffer.alloc(12), Buffer.from("video\0"));
  // One AVC sample description (a visual sample entry with the frame size) and empty sample tables.
  const avc1 = box(
    "avc1",
    Buffer.alloc(6),
    Buffer.from([0, 1]),
    Buffer.alloc(16),
    Buffer.from([width >> 8, width & 0xff, height >> 8, height & 0xff]),
    u32(0x480000, 0x480000, 0),
    Buffer.from([0, 1]),
    Buffer.alloc(32),
    Buffer.from([0, 0x18, 0xff, 0xff]),
  );
  const stbl = box(
    "stbl",
    box("stsd", u32(0, 1), avc1),
    box("stts", u32(0, 0)),
    box("stsc", u32(0, 0)),
    box("stsz", u32(0, 0, 0)),
    box("stco", u32(0, 0)),
  );
  const minf = box("minf", box("vmhd", u32(1), Buffer.alloc(8)), stbl);
  const trak = box("trak", tkhd, box("mdia", mdhd, hdlr, minf));
  return new Uint8Array(
    Buffer.concat([
      box("ftyp", Buffer.from("isom", "ascii"), u32(0x200), Buffer.from("isomiso2mp41", "ascii")),
      box("moov", mvhd, trak),
      box("mdat"),
    ]),
  );
}

/** A one-page PDF with a line of text. */
export function onePagePdf(text: string): Uint8Array {
  const objects = [
    "<< /Type /Catalog /Pages 2 0 R >>",
    "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] /Contents 4 0 R >>",
  ];
  const stream = `BT /F1 12 Tf 10 50 Td (${text.replace(/[()\\]/g, "")}) Tj ET`;
  objects.push(`<< /Length ${stream.length} >>\nstream\n${stream}\nendstream`);
  let out = "%PDF-1.4\n";
  const offsets: number[] = [];
  objects.forEach((body, i) => {
    offsets.push(out.length);
    out += `${i + 1} 0 obj\n${body}\nendobj\n`;
  });
  const xref = out.length;
  out += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
  for (const offset of offsets) out += `${String(offset).padStart(10, "0")} 00000 n \n`;
  out += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return new Uint8Array(Buffer.from(out, "latin1"));
}
