// Reads an engine library's header (ELF or Mach-O, 64-bit little-endian) and checks it is what
// a platform package needs: the right architecture, a shared library, and dynamic
// dependencies only on the system's C library (for Linux: glibc symbol versions no newer than
// the baseline). Our own reader, so the check runs anywhere Bun does (no readelf/otool needed).
//
//   bun scripts/check_artifact.ts PLATFORM FILE     prints the facts; exits 1 if a check fails
//
// PLATFORM: linux-x64-gnu, linux-arm64-gnu, darwin-arm64, darwin-x64.
import { readFileSync } from "node:fs";

export interface LibraryInfo {
  format: "ELF" | "Mach-O";
  arch: "x86-64" | "arm64" | string;
  kind: "shared library" | string;
  /** DT_NEEDED (ELF) or LC_LOAD_DYLIB and friends (Mach-O). */
  needed: string[];
  /** DT_SONAME (ELF) or LC_ID_DYLIB (Mach-O). */
  soname: string | null;
  /** ELF: the newest GLIBC_x.y symbol version required; null if none. */
  glibc: string | null;
  /** Mach-O: the minimum macOS version (LC_BUILD_VERSION / LC_VERSION_MIN_MACOSX). */
  minMacos: string | null;
  /** Mach-O: whether a code signature is present (arm64 macOS loads only signed code). */
  signed: boolean;
}

function cstr(b: Uint8Array, off: number): string {
  let end = off;
  while (end < b.length && b[end] !== 0) end++;
  return new TextDecoder().decode(b.subarray(off, end));
}

function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function readElf(b: Uint8Array, v: DataView): LibraryInfo {
  if (b[4] !== 2 || b[5] !== 1) throw new Error("not a 64-bit little-endian ELF file");
  const type = v.getUint16(16, true);
  const machine = v.getUint16(18, true);
  const shoff = Number(v.getBigUint64(0x28, true));
  const shentsize = v.getUint16(0x3a, true);
  const shnum = v.getUint16(0x3c, true);
  const sections = Array.from({ length: shnum }, (_, i) => {
    const o = shoff + i * shentsize;
    return { type: v.getUint32(o + 4, true), offset: Number(v.getBigUint64(o + 0x18, true)), size: Number(v.getBigUint64(o + 0x20, true)), link: v.getUint32(o + 0x28, true) };
  });
  const needed: string[] = [];
  let soname: string | null = null;
  let glibc: string | null = null;
  for (const s of sections) {
    const strtab = sections[s.link];
    if (s.type === 6 && strtab) { // SHT_DYNAMIC: (tag, value) pairs
      for (let o = s.offset; o + 16 <= s.offset + s.size; o += 16) {
        const tag = Number(v.getBigInt64(o, true));
        const val = Number(v.getBigUint64(o + 8, true));
        if (tag === 0) break;
        if (tag === 1) needed.push(cstr(b, strtab.offset + val)); // DT_NEEDED
        if (tag === 14) soname = cstr(b, strtab.offset + val); // DT_SONAME
      }
    }
    if (s.type === 0x6ffffffe && strtab) { // SHT_GNU_verneed: Verneed entries, each with Vernaux
      let o = s.offset;
      for (;;) {
        const cnt = v.getUint16(o + 2, true);
        let a = o + v.getUint32(o + 8, true);
        for (let i = 0; i < cnt; i++) {
          const name = cstr(b, strtab.offset + v.getUint32(a + 8, true));
          const m = /^GLIBC_(\d+(\.\d+)*)$/.exec(name);
          if (m && (glibc === null || compareVersions(m[1]!, glibc) > 0)) glibc = m[1]!;
          const next = v.getUint32(a + 12, true);
          if (next === 0) break;
          a += next;
        }
        const next = v.getUint32(o + 12, true);
        if (next === 0) break;
        o += next;
      }
    }
  }
  const arch = machine === 62 ? "x86-64" : machine === 183 ? "arm64" : `machine ${machine}`;
  return { format: "ELF", arch, kind: type === 3 ? "shared library" : `type ${type}`, needed, soname, glibc, minMacos: null, signed: false };
}

function machoVersion(x: number): string {
  return `${x >>> 16}.${(x >>> 8) & 0xff}${x & 0xff ? `.${x & 0xff}` : ""}`;
}

function readMachO(b: Uint8Array, v: DataView): LibraryInfo {
  const cputype = v.getUint32(4, true);
  const filetype = v.getUint32(12, true);
  const ncmds = v.getUint32(16, true);
  const needed: string[] = [];
  let soname: string | null = null;
  let minMacos: string | null = null;
  let signed = false;
  let o = 32;
  for (let i = 0; i < ncmds; i++) {
    const cmd = v.getUint32(o, true);
    const size = v.getUint32(o + 4, true);
    if (cmd === 0xc || cmd === 0x80000018 || cmd === 0x8000001f || cmd === 0x23) needed.push(cstr(b, o + v.getUint32(o + 8, true)));
    if (cmd === 0xd) soname = cstr(b, o + v.getUint32(o + 8, true)); // LC_ID_DYLIB
    if (cmd === 0x32 && v.getUint32(o + 8, true) === 1) minMacos = machoVersion(v.getUint32(o + 12, true)); // LC_BUILD_VERSION, macOS
    if (cmd === 0x24) minMacos = machoVersion(v.getUint32(o + 8, true)); // LC_VERSION_MIN_MACOSX
    if (cmd === 0x1d) signed = true; // LC_CODE_SIGNATURE
    o += size;
  }
  const arch = cputype === 0x01000007 ? "x86-64" : cputype === 0x0100000c ? "arm64" : `cputype ${cputype}`;
  return { format: "Mach-O", arch, kind: filetype === 6 ? "shared library" : `filetype ${filetype}`, needed, soname, glibc: null, minMacos, signed };
}

/** The header facts of an ELF or Mach-O (64-bit, little-endian) file. */
export function inspectLibrary(bytes: Uint8Array): LibraryInfo {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length >= 64 && v.getUint32(0, false) === 0x7f454c46) return readElf(bytes, v);
  if (bytes.length >= 32 && v.getUint32(0, true) === 0xfeedfacf) return readMachO(bytes, v);
  throw new Error("neither a 64-bit ELF nor a 64-bit Mach-O file");
}

const expected: Record<string, { format: LibraryInfo["format"]; arch: string }> = {
  "linux-x64-gnu": { format: "ELF", arch: "x86-64" },
  "linux-arm64-gnu": { format: "ELF", arch: "arm64" },
  "darwin-arm64": { format: "Mach-O", arch: "arm64" },
  "darwin-x64": { format: "Mach-O", arch: "x86-64" },
};

/** The glibc the packaged Linux builds target (build_platforms.sh: -Dtarget=...-linux-gnu.2.17). */
export const GLIBC_BASELINE = "2.17";
const linuxSystemLibs = /^(libc\.so\.6|libm\.so\.6|libdl\.so\.2|libpthread\.so\.0|librt\.so\.1|ld-linux-(x86-64|aarch64)\.so\.[12])$/;

/** What is wrong with `info` as `platform`'s engine (empty: nothing). */
export function problems(platform: string, info: LibraryInfo): string[] {
  const want = expected[platform];
  if (want === undefined) return [`unknown platform ${platform}`];
  const out: string[] = [];
  if (info.format !== want.format) out.push(`format is ${info.format}, want ${want.format}`);
  if (info.arch !== want.arch) out.push(`architecture is ${info.arch}, want ${want.arch}`);
  if (info.kind !== "shared library") out.push(`file is a ${info.kind}, want a shared library`);
  if (info.format === "ELF") {
    for (const n of info.needed) if (!linuxSystemLibs.test(n)) out.push(`depends on ${n}, not a glibc library`);
    if (info.glibc !== null && compareVersions(info.glibc, GLIBC_BASELINE) > 0) out.push(`needs GLIBC_${info.glibc}, newer than the ${GLIBC_BASELINE} baseline`);
  } else {
    for (const n of info.needed) if (n !== "/usr/lib/libSystem.B.dylib") out.push(`depends on ${n}, not libSystem`);
    if (info.arch === "arm64" && !info.signed) out.push("arm64 Mach-O without a code signature (macOS would refuse to load it)");
  }
  return out;
}

export function describe(info: LibraryInfo): string {
  const parts = [`${info.format} ${info.arch} ${info.kind}`, `needs [${info.needed.join(", ")}]`, `soname ${info.soname ?? "-"}`];
  if (info.format === "ELF") parts.push(`glibc >= ${info.glibc ?? "any"}`);
  else parts.push(`macOS >= ${info.minMacos ?? "?"}`, info.signed ? "signed (ad hoc or better)" : "unsigned");
  return parts.join("; ");
}

if (import.meta.main) {
  const [platform, file] = process.argv.slice(2);
  if (platform === undefined || file === undefined) {
    console.error("usage: bun scripts/check_artifact.ts PLATFORM FILE");
    process.exit(2);
  }
  const info = inspectLibrary(new Uint8Array(readFileSync(file)));
  console.log(`${platform}: ${file}\n  ${describe(info)}`);
  const bad = problems(platform, info);
  for (const p of bad) console.log(`  PROBLEM: ${p}`);
  process.exit(bad.length === 0 ? 0 : 1);
}
