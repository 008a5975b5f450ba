// Builds the npm packages into tarballs: `mlx-bun` (the TypeScript sources, run by Bun as they
// are) and one `mlx-bun-<platform>` per prebuilt engine, listed as its optionalDependencies.
//
//   bun scripts/pack.ts --out DIR                  engines from zig-out/platforms/<platform>/lib
//                                                  (scripts/build_platforms.sh); platforms
//                                                  without one are skipped, with a note
//   bun scripts/pack.ts --out DIR --lib linux-x64-gnu=zig-out/lib/libmlxbun.so
//                                                  an engine file given explicitly (repeatable;
//                                                  the tests pack the local build this way)
//   bun scripts/pack.ts --out DIR --main-only      only the main package
//
// Each package is staged in DIR/stage/<name> and packed with `npm pack`; the tarball names are
// printed one a line (mlx-bun-0.1.0.tgz, mlx-bun-linux-x64-gnu-0.1.0.tgz, ...).
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";

const root = resolve(import.meta.dir, "..");

/** The prebuilt platforms: npm's os/cpu/libc fields and the library's file name. */
export const PLATFORMS = {
  "linux-x64-gnu": { os: "linux", cpu: "x64", libc: "glibc", file: "libmlxbun.so", zigTarget: "x86_64-linux-gnu.2.17", title: "Linux x86-64 (glibc 2.17+)" },
  "linux-arm64-gnu": { os: "linux", cpu: "arm64", libc: "glibc", file: "libmlxbun.so", zigTarget: "aarch64-linux-gnu.2.17", title: "Linux arm64 (glibc 2.17+)" },
  "darwin-arm64": { os: "darwin", cpu: "arm64", libc: null, file: "libmlxbun.dylib", zigTarget: "aarch64-macos.11.0", title: "macOS arm64 (11+)" },
  "darwin-x64": { os: "darwin", cpu: "x64", libc: null, file: "libmlxbun.dylib", zigTarget: "x86_64-macos.11.0", title: "macOS x86-64 (11+)" },
} as const;
export type Platform = keyof typeof PLATFORMS;

function usage(msg: string): never {
  console.error(`pack: ${msg}\nusage: bun scripts/pack.ts --out DIR [--lib PLATFORM=FILE]... [--main-only]`);
  process.exit(2);
}

function parseArgs(argv: string[]): { out: string; libs: Map<Platform, string>; mainOnly: boolean } {
  let out: string | undefined;
  const libs = new Map<Platform, string>();
  let mainOnly = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--out") out = argv[++i];
    else if (a === "--main-only") mainOnly = true;
    else if (a === "--lib") {
      const spec = argv[++i] ?? usage("--lib needs PLATFORM=FILE");
      const eq = spec.indexOf("=");
      const name = spec.slice(0, eq) as Platform;
      if (eq < 0 || !(name in PLATFORMS)) usage(`--lib ${spec}: platform must be one of ${Object.keys(PLATFORMS).join(", ")}`);
      libs.set(name, resolve(spec.slice(eq + 1)));
    } else usage(`unknown argument ${a}`);
  }
  if (out === undefined) usage("--out DIR is required");
  return { out: resolve(out), libs, mainOnly };
}

function npmPack(dir: string, dest: string): string {
  const r = Bun.spawnSync(["npm", "pack", "--pack-destination", dest, "--loglevel=error"], { cwd: dir, stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`npm pack failed in ${dir}: ${r.stderr.toString()}`);
  const lines = r.stdout.toString().trim().split("\n");
  return lines[lines.length - 1]!.trim();
}

function writeJson(path: string, value: unknown): void {
  writeFileSync(path, JSON.stringify(value, null, 2) + "\n");
}

/** Stage and pack the main package; returns the tarball's file name. */
export function packMain(out: string): string {
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  const dir = join(out, "stage", "mlx-bun");
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, "ffi"), { recursive: true });
  cpSync(join(root, "src"), join(dir, "src"), { recursive: true });
  // The loader, the generated symbol table and header; not ffi/engine_dev_*.ts (a checkout's build).
  for (const f of ["lib.ts", "symbols.ts", "mlxbun.h"]) cpSync(join(root, "ffi", f), join(dir, "ffi", f));
  cpSync(join(root, "README.md"), join(dir, "README.md"));
  if (existsSync(join(root, "docs", "GETTING-STARTED.md"))) {
    mkdirSync(join(dir, "docs"), { recursive: true });
    cpSync(join(root, "docs", "GETTING-STARTED.md"), join(dir, "docs", "GETTING-STARTED.md"));
  }
  const optionalDependencies = Object.fromEntries(Object.keys(PLATFORMS).map((p) => [`mlx-bun-${p}`, pkg.version]));
  writeJson(join(dir, "package.json"), {
    name: pkg.name,
    version: pkg.version,
    description: pkg.description,
    type: "module",
    module: "src/index.ts",
    types: "src/index.ts",
    exports: { ".": "./src/index.ts" },
    files: ["src", "ffi", "docs", "README.md"],
    engines: { bun: `>=${pkg.engines.bun}` },
    optionalDependencies,
    keywords: ["mlx", "bun", "array", "machine-learning", "autograd", "ffi"],
    license: pkg.license,
  });
  return npmPack(dir, out);
}

/** Stage and pack one platform's engine package around `lib`; returns the tarball's file name. */
export function packPlatform(out: string, platform: Platform, lib: string): string {
  const { version, license } = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  const p = PLATFORMS[platform];
  const name = `mlx-bun-${platform}`;
  const dir = join(out, "stage", name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  cpSync(lib, join(dir, p.file));
  writeFileSync(join(dir, "index.js"),
    `// The engine library's path. Imported as a file, so \`bun build --compile\` embeds it.\n` +
    `import path from "./${p.file}" with { type: "file" };\nexport default path;\n`);
  writeFileSync(join(dir, "index.d.ts"), "/** The path of the mlx-bun engine library in this package. */\ndeclare const path: string;\nexport default path;\n");
  writeFileSync(join(dir, "README.md"), `# ${name}\n\nThe prebuilt engine of [mlx-bun](https://www.npmjs.com/package/mlx-bun) (\`${p.file}\`) for ${p.title}.\n` +
    `Installed automatically with \`mlx-bun\` on matching machines; not meant to be used directly.\n`);
  writeJson(join(dir, "package.json"), {
    name,
    version,
    description: `The mlx-bun engine for ${p.title}.`,
    type: "module",
    main: "index.js",
    types: "index.d.ts",
    exports: { ".": { types: "./index.d.ts", default: "./index.js" }, [`./${p.file}`]: `./${p.file}` },
    files: ["index.js", "index.d.ts", p.file, "README.md"],
    os: [p.os],
    cpu: [p.cpu],
    ...(p.libc !== null ? { libc: [p.libc] } : {}),
    license,
  });
  return npmPack(dir, out);
}

if (import.meta.main) {
  const { out, libs, mainOnly } = parseArgs(process.argv.slice(2));
  mkdirSync(out, { recursive: true });
  const made: string[] = [packMain(out)];
  if (!mainOnly) {
    for (const platform of Object.keys(PLATFORMS) as Platform[]) {
      const lib = libs.get(platform) ?? join(root, "zig-out", "platforms", platform, "lib", PLATFORMS[platform].file);
      if (!existsSync(lib)) {
        console.error(`pack: no engine for ${platform} (${lib}); run scripts/build_platforms.sh or pass --lib ${platform}=FILE`);
        continue;
      }
      made.push(packPlatform(out, platform, lib));
    }
  }
  rmSync(join(out, "stage"), { recursive: true, force: true });
  for (const t of made) console.log(basename(t));
}
