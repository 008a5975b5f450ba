// A small ZIP reader and writer for .npz: stored and deflated members, ZIP64 sizes and offsets,
// CRC-32 (the IEEE polynomial, reflected). Every read is bounds-checked.
import { deflateRawSync, inflateRawSync } from "node:zlib";
import { Builder, ascii, decodeUtf8, Reader } from "./common";

const CRC_TABLE = (() => {
  const t = new Int32Array(256 * 8);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  // Slice-by-8 tables: t[k*256 + n] is the CRC of byte n followed by k zero bytes.
  for (let n = 0; n < 256; n++) {
    let c = t[n]!;
    for (let k = 1; k < 8; k++) {
      c = t[c & 0xff]! ^ (c >>> 8);
      t[k * 256 + n] = c;
    }
  }
  return t;
})();

/** CRC-32 of `bytes`, continuing from `crc` (0 to start). */
export function crc32(bytes: Uint8Array, crc = 0): number {
  const t = CRC_TABLE;
  let c = ~crc;
  let i = 0;
  const n = bytes.length;
  // Bytes up to a 4-byte boundary, then 8 at a time through a Uint32Array (little-endian hosts).
  for (; i < n && (bytes.byteOffset + i) % 4 !== 0; i++) c = t[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset + i, (n - i) >>> 2);
  const pairs = words.length >>> 1;
  for (let w = 0; w < 2 * pairs; w += 2) {
    const a = c ^ words[w]!;
    const b = words[w + 1]!;
    c = t[1792 + (a & 0xff)]! ^ t[1536 + ((a >>> 8) & 0xff)]! ^ t[1280 + ((a >>> 16) & 0xff)]! ^ t[1024 + (a >>> 24)]! ^
      t[768 + (b & 0xff)]! ^ t[512 + ((b >>> 8) & 0xff)]! ^ t[256 + ((b >>> 16) & 0xff)]! ^ t[b >>> 24]!;
  }
  i += 8 * pairs;
  for (; i < n; i++) c = t[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

export interface ZipEntry {
  name: string;
  method: number;
  crc: number;
  compressedSize: number;
  size: number;
  /** Offset of the member's data in the file. */
  dataStart: number;
}

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_EOCD64 = 0x06064b50;
const SIG_LOC64 = 0x07064b50;
const MAX32 = 0xffffffff;

/** The members of a ZIP file, from its central directory, with every offset checked. */
export function readZip(bytes: Uint8Array, op: string, file: string): ZipEntry[] {
  const r = new Reader(bytes, op, file);
  const len = bytes.byteLength;
  if (len < 22) throw r.fail(`Not a zip file (.npz): ${len} bytes is too short. Perhaps an incomplete download or corrupt file?`);
  let eocd = -1;
  for (let p = len - 22; p >= Math.max(0, len - 22 - 65535); p--) {
    if (r.dv.getUint32(p, true) === SIG_EOCD) {
      eocd = p;
      break;
    }
  }
  if (eocd < 0) throw r.fail("Not a zip file (.npz): no end of central directory record. Perhaps an incomplete download or corrupt file?");
  r.pos = eocd + 4;
  const disk = r.u16("the zip end record");
  const cdDisk = r.u16("the zip end record");
  r.u16("the zip end record");
  let count: number = r.u16("the zip end record");
  let cdSize: number = r.u32("the zip end record");
  let cdOffset: number = r.u32("the zip end record");
  if (disk !== 0 || cdDisk !== 0) throw r.fail("Multi-disk zip files are not supported.");
  if (count === 0xffff || cdSize === MAX32 || cdOffset === MAX32) {
    if (eocd < 20) throw r.fail("A ZIP64 zip file without its ZIP64 locator.");
    r.pos = eocd - 20;
    if (r.u32("the ZIP64 locator") !== SIG_LOC64) throw r.fail("A ZIP64 zip file without its ZIP64 locator.");
    r.u32("the ZIP64 locator");
    const rec = r.u64("ZIP64 end record offset");
    if (rec + 56 > eocd - 20) throw r.fail(`The ZIP64 end record offset ${rec} is out of range.`);
    r.pos = rec;
    if (r.u32("the ZIP64 end record") !== SIG_EOCD64) throw r.fail("Bad ZIP64 end record signature.");
    r.pos += 8 + 2 + 2 + 4 + 4 + 8;
    count = r.u64("ZIP64 entry count");
    cdSize = r.u64("ZIP64 central directory size");
    cdOffset = r.u64("ZIP64 central directory offset");
  }
  if (cdOffset + cdSize > eocd) {
    throw r.fail(`The central directory (offset ${cdOffset}, ${cdSize} bytes) lies outside the ${len}-byte file. Perhaps an incomplete download or corrupt file?`);
  }
  if (count > cdSize / 46) throw r.fail(`The zip claims ${count} members but its central directory holds at most ${Math.floor(cdSize / 46)}.`);
  const entries: ZipEntry[] = [];
  const ranges: [number, number, string][] = [];
  const cd = new Reader(bytes.subarray(0, cdOffset + cdSize), op, file, cdOffset);
  for (let k = 0; k < count; k++) {
    if (cd.u32("a central directory entry") !== SIG_CENTRAL) throw r.fail(`Bad signature of central directory entry ${k}.`);
    cd.pos += 4;
    const flags = cd.u16("a central directory entry");
    const method = cd.u16("a central directory entry");
    cd.pos += 4;
    const crc = cd.u32("a central directory entry");
    let csize: number = cd.u32("a central directory entry");
    let usize: number = cd.u32("a central directory entry");
    const nameLen = cd.u16("a central directory entry");
    const extraLen = cd.u16("a central directory entry");
    const commentLen = cd.u16("a central directory entry");
    cd.pos += 8;
    let local: number = cd.u32("a central directory entry");
    const name = decodeUtf8(cd.bytesOf(nameLen, "a member name"), cd, "member name");
    const extra = new Reader(cd.bytesOf(extraLen, "a member's extra field"), op, file);
    cd.bytesOf(commentLen, "a member comment");
    while (extra.pos + 4 <= extra.length) {
      const id = extra.u16("an extra field");
      const size = extra.u16("an extra field");
      const end = extra.pos + size;
      if (id === 1) {
        if (usize === MAX32) usize = extra.u64("a ZIP64 size");
        if (csize === MAX32) csize = extra.u64("a ZIP64 size");
        if (local === MAX32) local = extra.u64("a ZIP64 offset");
      }
      extra.pos = end;
    }
    if (flags & 1) throw r.fail(`Member '${name}' is encrypted.`);
    if (method !== 0 && method !== 8) throw r.fail(`Member '${name}' uses compression method ${method}; only stored (0) and deflate (8) are supported.`);
    if (method === 0 && csize !== usize) throw r.fail(`Stored member '${name}' has compressed size ${csize} but size ${usize}.`);
    const lr = new Reader(bytes, op, file, local);
    if (local + 30 > len || lr.u32("a local header") !== SIG_LOCAL) throw r.fail(`Member '${name}': no local header at offset ${local}.`);
    lr.pos = local + 26;
    const lname = lr.u16("a local header");
    const lextra = lr.u16("a local header");
    const dataStart = local + 30 + lname + lextra;
    if (dataStart + csize > len) {
      throw r.fail(`Member '${name}' (${csize} bytes at offset ${dataStart}) extends past the end of the ${len}-byte file. Perhaps an incomplete download or corrupt file?`);
    }
    ranges.push([local, dataStart + csize, name]);
    entries.push({ name, method, crc, compressedSize: csize, size: usize, dataStart });
  }
  ranges.sort((a, b) => a[0] - b[0]);
  for (let k = 1; k < ranges.length; k++) {
    if (ranges[k]![0] < ranges[k - 1]![1]) throw r.fail(`Members '${ranges[k - 1]![2]}' and '${ranges[k]![2]}' overlap.`);
  }
  if (ranges.length > 0 && ranges[ranges.length - 1]![1] > cdOffset) throw r.fail("A member overlaps the central directory.");
  return entries;
}

/** A member's bytes: a view of the file when stored, inflated (and CRC-checked) when deflated. */
export function memberBytes(bytes: Uint8Array, e: ZipEntry, op: string, file: string): Uint8Array {
  const raw = bytes.subarray(e.dataStart, e.dataStart + e.compressedSize);
  if (e.method === 0) return raw; // Not CRC-checked: that would read the whole file at load time.
  let out: Uint8Array;
  try {
    out = inflateRawSync(raw, { maxOutputLength: Math.max(1, e.size) });
  } catch (err) {
    throw new Reader(bytes, op, file).fail(`Member '${e.name}' could not be inflated: ${(err as Error).message}.`);
  }
  if (out.byteLength !== e.size) throw new Reader(bytes, op, file).fail(`Member '${e.name}' inflated to ${out.byteLength} bytes, not the ${e.size} its header says.`);
  if (crc32(out) !== e.crc) throw new Reader(bytes, op, file).fail(`Member '${e.name}' fails its CRC-32 check.`);
  return out;
}

export interface ZipMember {
  name: string;
  /** The member's content in pieces (written one after another). */
  parts: Uint8Array[];
}

const DOS_DATE_1980 = (0 << 9) | (1 << 5) | 1; // 1980-01-01, the date MLX's savez stamps.

/**
 * The chunks of a ZIP file of `members`, stored or deflated. ZIP64 records are added only when
 * needed (or always, with `force64`: for tests, since needing them takes 4 GiB).
 */
export function* writeZip(members: ZipMember[], compress: boolean, force64 = false): Generator<Uint8Array> {
  const central = new Builder();
  let offset = 0;
  for (const m of members) {
    let parts = m.parts;
    let size = 0;
    let crc = 0;
    for (const p of parts) {
      crc = crc32(p, crc);
      size += p.byteLength;
    }
    let csize = size;
    if (compress) {
      const all = new Uint8Array(size);
      let o = 0;
      for (const p of parts) {
        all.set(p, o);
        o += p.byteLength;
      }
      const z = deflateRawSync(all);
      parts = [new Uint8Array(z.buffer, z.byteOffset, z.byteLength)];
      csize = z.byteLength;
    }
    const name = new TextEncoder().encode(m.name);
    const big = force64 || size >= MAX32 || csize >= MAX32 || offset >= MAX32;
    const method = compress ? 8 : 0;
    const flags = /^[\x20-\x7e]*$/.test(m.name) ? 0 : 0x800; // bit 11: the name is UTF-8
    const local = new Builder()
      .u32(SIG_LOCAL).u16(big ? 45 : 20).u16(flags).u16(method).u16(0).u16(DOS_DATE_1980)
      .u32(crc).u32(big ? MAX32 : csize).u32(big ? MAX32 : size).u16(name.byteLength).u16(big ? 20 : 0).bytes(name);
    if (big) local.u16(1).u16(16).u64(size).u64(csize);
    central
      .u32(SIG_CENTRAL).u16(0x300 | (big ? 45 : 20)).u16(big ? 45 : 20).u16(flags).u16(method).u16(0).u16(DOS_DATE_1980)
      .u32(crc).u32(big ? MAX32 : csize).u32(big ? MAX32 : size).u16(name.byteLength).u16(big ? 28 : 0).u16(0)
      .u16(0).u16(0).u32(0x1800000 /* -rw------- */).u32(big ? MAX32 : offset).bytes(name);
    if (big) central.u16(1).u16(24).u64(size).u64(csize).u64(offset);
    const lh = local.done();
    yield lh;
    for (const p of parts) yield p;
    offset += lh.byteLength + csize;
  }
  const cd = central.done();
  const cdOffset = offset;
  yield cd;
  const n = members.length;
  const end = new Builder();
  if (force64 || n >= 0xffff || cdOffset >= MAX32 || cd.byteLength >= MAX32) {
    const rec = cdOffset + cd.byteLength;
    end.u32(SIG_EOCD64).u64(44).u16(45).u16(45).u32(0).u32(0).u64(n).u64(n).u64(cd.byteLength).u64(cdOffset);
    end.u32(SIG_LOC64).u32(0).u64(rec).u32(1);
    end.u32(SIG_EOCD).u16(0).u16(0).u16(0xffff).u16(0xffff).u32(MAX32).u32(MAX32).u16(0);
  } else {
    end.u32(SIG_EOCD).u16(0).u16(0).u16(n).u16(n).u32(cd.byteLength).u32(cdOffset).u16(0);
  }
  yield end.done();
}
