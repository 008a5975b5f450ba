// Generates the API reference (docs/api/*.md) from the TSDoc comments of what src/index.ts
// exports, with the TypeScript compiler API (the `typescript` package scripts/bootstrap.sh
// installs into .toolchain/npm for the type check).
//
//   bun scripts/gen_api_docs.ts [--out DIR]     default DIR: docs/api
//   bun scripts/gen_api_docs.ts --check         exit 1 if docs/api differs from what it would write
//
// One page per namespace: mx.md (the top level: functions, classes with their members,
// constants, types), then mx.random, mx.fft, mx.linalg, mx.nn, ... (`export * as name`), and
// README.md listing them. Each entry: its signature(s), its documentation, its @example lines.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dir, "..");
const tsPath = join(root, ".toolchain", "npm", "node_modules", "typescript", "lib", "typescript.js");
if (!existsSync(tsPath)) {
  console.error("gen_api_docs: TypeScript is not installed; run `bash scripts/bootstrap.sh` first.");
  process.exit(2);
}
const ts = (await import(tsPath)).default as typeof import("typescript");

interface Page {
  /** "mx", "mx.random", "mx.nn.losses", ... */
  name: string;
  file: string;
  summary: string;
  sections: Map<string, string[]>;
}

const sectionOrder = ["Namespaces", "Classes", "Functions", "Constants", "Types"];

function docText(parts: readonly import("typescript").SymbolDisplayPart[]): string {
  return ts.displayPartsToString(parts).trim();
}

function tagsOf(sym: import("typescript").Symbol, checker: import("typescript").TypeChecker): { examples: string[]; other: string[] } {
  const examples: string[] = [];
  const other: string[] = [];
  for (const t of sym.getJsDocTags(checker)) {
    const text = t.text ? docText(t.text) : "";
    if (t.name === "example") examples.push(text);
    else if (t.name === "deprecated") other.push(`**Deprecated.** ${text}`);
    else if (t.name === "param" && text) other.push(`- \`${text.replace(/^(\S+)\s*/, "$1`: ")}`.replace(/`: $/, "`"));
    else if (t.name === "returns" && text) other.push(`Returns: ${text}`);
  }
  return { examples, other };
}

function block(lang: string, code: string): string {
  return "```" + lang + "\n" + code.trim() + "\n```";
}

function anchor(title: string): string {
  return title.toLowerCase().replace(/[^a-z0-9_ -]/g, "").replace(/ /g, "-");
}

function main(outDir: string): Map<string, string> {
  const program = ts.createProgram([join(root, "src", "index.ts")], {
    target: ts.ScriptTarget.ESNext,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    allowImportingTsExtensions: true,
    noEmit: true,
    strict: true,
    skipLibCheck: true,
    types: ["bun"],
    typeRoots: [join(root, ".toolchain", "npm", "node_modules", "@types")],
  });
  const checker = program.getTypeChecker();
  const entry = program.getSourceFile(join(root, "src", "index.ts"))!;
  const moduleSym = checker.getSymbolAtLocation(entry)!;
  const pages: Page[] = [];
  const printer = (decl: import("typescript").Node) => decl.getText().replace(/\s+/g, " ");

  const fmtSig = (name: string, sig: import("typescript").Signature) =>
    `${name}${checker.signatureToString(sig, undefined, ts.TypeFormatFlags.NoTruncation | ts.TypeFormatFlags.WriteArrowStyleSignature).replace(/ => /, ": ")}`;

  function entryFor(displayName: string, sym: import("typescript").Symbol, page: Page, heading = "###"): { section: string; text: string } | null {
    const target = sym.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(sym) : sym;
    const decls = target.getDeclarations() ?? [];
    const doc = docText(target.getDocumentationComment(checker));
    const { examples, other } = tagsOf(target, checker);
    const lines: string[] = [`${heading} ${displayName}`, ""];
    let section = "Constants";
    const f = target.flags;
    if (f & ts.SymbolFlags.Class) {
      section = "Classes";
      const type = checker.getDeclaredTypeOfSymbol(target);
      const ctorType = checker.getTypeOfSymbol(target);
      const ctors = ctorType.getConstructSignatures();
      if (ctors.length > 0) lines.push(block("ts", ctors.map((s) => fmtSig(`new ${displayName}`, s).replace(/: [^:]*$/, "")).join("\n")), "");
      if (doc) lines.push(doc, "");
      lines.push(...other, ...(other.length ? [""] : []));
      for (const e of examples) lines.push(block("ts", e), "");
      const members = [...type.getProperties(), ...ctorType.getProperties().filter((p) => p.name !== "prototype")]
        .filter((m) => !m.name.startsWith("_") && !m.name.startsWith("#") && !m.name.startsWith("__@"))
        .filter((m) => {
          const d = m.getDeclarations()?.[0];
          const mods = d && ts.canHaveModifiers(d) ? ts.getModifiers(d) ?? [] : [];
          return !mods.some((x) => x.kind === ts.SyntaxKind.PrivateKeyword || x.kind === ts.SyntaxKind.ProtectedKeyword);
        })
        .sort((a, b) => a.name.localeCompare(b.name));
      if (members.length > 0) lines.push("| member | signature | description |", "|---|---|---|");
      for (const m of members) {
        const d = m.getDeclarations()?.[0];
        const isStatic = d !== undefined && ts.canHaveModifiers(d) && (ts.getModifiers(d) ?? []).some((x) => x.kind === ts.SyntaxKind.StaticKeyword);
        const mt = d ? checker.getTypeOfSymbolAtLocation(m, d) : checker.getTypeOfSymbol(m);
        const sigs = mt.getCallSignatures();
        const sigText = sigs.length > 0
          ? sigs.map((s) => fmtSig(m.name, s)).join("<br>")
          : `${m.name}: ${checker.typeToString(mt, undefined, ts.TypeFormatFlags.NoTruncation)}`;
        const mdoc = docText(m.getDocumentationComment(checker)).split("\n")[0] ?? "";
        const cell = (s: string) => s.replace(/\|/g, "\\|").replace(/\n/g, " ");
        lines.push(`| ${isStatic ? "static " : ""}\`${m.name}\` | \`${cell(sigText)}\` | ${cell(mdoc)} |`);
      }
      if (members.length > 0) lines.push("");
    } else if (f & ts.SymbolFlags.Function || (f & ts.SymbolFlags.Variable && checker.getTypeOfSymbol(target).getCallSignatures().length > 0 && !(f & ts.SymbolFlags.TypeAlias))) {
      section = "Functions";
      const sigs = checker.getTypeOfSymbol(target).getCallSignatures();
      lines.push(block("ts", sigs.map((s) => fmtSig(displayName, s)).join("\n")), "");
      const sdoc = doc || docText(sigs[0]?.getDocumentationComment(checker) ?? []);
      if (sdoc) lines.push(sdoc, "");
      lines.push(...other, ...(other.length ? [""] : []));
      for (const e of examples) lines.push(block("ts", e), "");
    } else if (f & (ts.SymbolFlags.TypeAlias | ts.SymbolFlags.Interface)) {
      section = "Types";
      const d = decls[0];
      if (d && ts.isTypeAliasDeclaration(d)) lines.push(block("ts", printer(d).replace(/^export /, "")), "");
      if (d && ts.isInterfaceDeclaration(d)) {
        const type = checker.getDeclaredTypeOfSymbol(target);
        const props = type.getProperties().map((p) => {
          const pd = p.getDeclarations()?.[0];
          const pt = pd ? checker.getTypeOfSymbolAtLocation(p, pd) : checker.getTypeOfSymbol(p);
          const opt = p.flags & ts.SymbolFlags.Optional ? "?" : "";
          const pdoc = docText(p.getDocumentationComment(checker));
          return (pdoc ? `  /** ${pdoc.replace(/\n/g, " ")} */\n` : "") + `  ${p.name}${opt}: ${checker.typeToString(pt, undefined, ts.TypeFormatFlags.NoTruncation)};`;
        });
        lines.push(block("ts", `interface ${displayName} {\n${props.join("\n")}\n}`), "");
      }
      if (doc) lines.push(doc, "");
      for (const e of examples) lines.push(block("ts", e), "");
    } else if (f & ts.SymbolFlags.Enum) {
      section = "Types";
      const d = decls[0];
      if (d) lines.push(block("ts", printer(d).replace(/^export /, "")), "");
      if (doc) lines.push(doc, "");
    } else if (f & ts.SymbolFlags.Variable) {
      section = "Constants";
      lines.push(block("ts", `const ${displayName}: ${checker.typeToString(checker.getTypeOfSymbol(target), undefined, ts.TypeFormatFlags.NoTruncation)}`), "");
      if (doc) lines.push(doc, "");
      for (const e of examples) lines.push(block("ts", e), "");
    } else if (f & ts.SymbolFlags.Module) {
      return null;
    } else {
      return null;
    }
    void page;
    return { section, text: lines.join("\n") };
  }

  function buildPage(name: string, sym: import("typescript").Symbol, summary: string): void {
    const page: Page = { name, file: `${name === "mx" ? "mx" : name.replace(/^mx\./, "")}.md`, summary, sections: new Map() };
    pages.push(page);
    const exports = checker.getExportsOfModule(sym).slice().sort((a, b) => a.name.localeCompare(b.name));
    for (const e of exports) {
      const target = e.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(e) : e;
      if (target.flags & ts.SymbolFlags.ValueModule && !(target.flags & (ts.SymbolFlags.Class | ts.SymbolFlags.Function))) {
        const sub = `${name}.${e.name}`;
        const decl = target.getDeclarations()?.[0];
        const file = decl && ts.isSourceFile(decl) ? decl : undefined;
        const fileDoc = file ? moduleDoc(file) : "";
        buildPage(sub, target, fileDoc);
        const list = page.sections.get("Namespaces") ?? [];
        list.push(`- [\`${sub}\`](${pages.find((p) => p.name === sub)!.file})${fileDoc ? `: ${fileDoc.split("\n")[0]}` : ""}`);
        page.sections.set("Namespaces", list);
        continue;
      }
      const ent = entryFor(e.name, e, page);
      if (ent === null) continue;
      const list = page.sections.get(ent.section) ?? [];
      list.push(ent.text);
      page.sections.set(ent.section, list);
    }
  }

  buildPage("mx", moduleSym, moduleDoc(entry));

  const files = new Map<string, string>();
  for (const p of pages) {
    const out: string[] = [`# ${p.name}`, "", "<!-- Generated by scripts/gen_api_docs.ts from the TSDoc comments in src/: do not edit. -->", ""];
    if (p.summary) out.push(p.summary, "");
    const toc = sectionOrder.filter((s) => p.sections.has(s)).map((s) => `[${s}](#${anchor(s)}) (${p.sections.get(s)!.length})`);
    if (toc.length) out.push(toc.join(" · "), "");
    for (const s of sectionOrder) {
      const items = p.sections.get(s);
      if (!items) continue;
      out.push(`## ${s}`, "");
      out.push(s === "Namespaces" ? items.join("\n") + "\n" : items.join("\n"));
    }
    files.set(p.file, out.join("\n").replace(/\n{3,}/g, "\n\n").trimEnd() + "\n");
  }
  const index = ["# mlx-bun API reference", "", "<!-- Generated by scripts/gen_api_docs.ts: do not edit. -->", "",
    "`import * as mx from \"mlx-bun\"`. Generated from the TSDoc comments in `src/` by `bun scripts/gen_api_docs.ts`;",
    "what MLX names are covered, and how: [../COMPAT.md](../COMPAT.md).", "",
    ...pages.map((p) => `- [\`${p.name}\`](${p.file})${p.summary ? `: ${p.summary.split("\n")[0]}` : ""}`), ""];
  files.set("README.md", index.join("\n"));
  void outDir;
  return files;
}

/** The first JSDoc block of a file that carries `@module`, or its leading // comment. */
function moduleDoc(file: import("typescript").SourceFile): string {
  const text = file.getFullText();
  const m = /^\s*\/\*\*([\s\S]*?)\*\//.exec(text);
  if (m && m[1]!.includes("@module")) {
    return m[1]!.split("\n").map((l) => l.replace(/^\s*\* ?/, "")).filter((l) => !l.startsWith("@module")).join("\n").trim();
  }
  const lines: string[] = [];
  for (const l of text.split("\n")) {
    if (!l.startsWith("//")) break;
    lines.push(l.replace(/^\/\/ ?/, ""));
  }
  return lines.join(" ").replace(/\s+/g, " ").trim();
}

const args = process.argv.slice(2);
const check = args.includes("--check");
const outIdx = args.indexOf("--out");
const outDir = resolve(outIdx >= 0 ? args[outIdx + 1]! : join(root, "docs", "api"));
const files = main(outDir);
if (check) {
  const stale: string[] = [];
  for (const [f, text] of files) {
    const p = join(outDir, f);
    if (!existsSync(p) || readFileSync(p, "utf8") !== text) stale.push(f);
  }
  if (existsSync(outDir)) for (const f of readdirSync(outDir)) if (!files.has(f)) stale.push(f);
  if (stale.length) {
    console.error(`gen_api_docs: ${outDir} is stale (${stale.join(", ")}); run \`bun scripts/gen_api_docs.ts\`.`);
    process.exit(1);
  }
  console.log(`gen_api_docs: ${outDir} is up to date (${files.size} files).`);
} else {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  for (const [f, text] of files) writeFileSync(join(outDir, f), text);
  console.log(`gen_api_docs: wrote ${files.size} files to ${outDir}`);
}
