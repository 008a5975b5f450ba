// A small SVG writer for the benchmark report's bar charts (bench/report_all.ts): horizontal bars
// of time ratios (mlx-bun / peer) on a log2 axis centred on 1, one group of bars per case, one
// colour per peer. Left of the 1 line mlx-bun is faster, right of it slower. No dependencies.

export interface Bar {
  /** The peer this bar compares against (the legend entry and colour). */
  series: string;
  /** mlx-bun time / peer time. */
  value: number;
}
export interface BarGroup {
  label: string;
  bars: Bar[];
}
export interface RatioChartOptions {
  title: string;
  /** The series in legend order (their colours follow this order). */
  series: string[];
  width?: number;
}

const PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1", "#edc948", "#9c755f", "#ff9da7", "#bab0ac"];

/** Escapes text for an SVG text node or attribute. */
export function escapeXml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&apos;");
}

/** A number for an attribute: at most 2 decimals, no trailing zeros. */
function n(x: number): string {
  return String(Math.round(x * 100) / 100);
}

/** A label for a ratio: "0.42×", "3.1×", "120×". */
export function ratioLabel(r: number): string {
  if (!Number.isFinite(r)) return "n/a";
  return `${r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r.toFixed(2)}×`;
}

/**
 * A horizontal bar chart of ratios. Bars start at 1 and end at their value on a log2 axis whose
 * range covers every value (at least 1/4 .. 4). Bars with a non-finite or non-positive value are
 * left out (the tables carry those cases as n/a).
 */
export function ratioChart(groups: BarGroup[], opts: RatioChartOptions): string {
  const width = opts.width ?? 760;
  const labelW = 260;
  const rightPad = 70;
  const barH = 12;
  const groupGap = 10;
  const top = 46;
  const legendH = 22;
  const plotW = width - labelW - rightPad;
  const values = groups.flatMap((g) => g.bars.map((b) => b.value)).filter((v) => Number.isFinite(v) && v > 0);
  let lo = Math.min(-2, ...values.map((v) => Math.floor(Math.log2(v))));
  let hi = Math.max(2, ...values.map((v) => Math.ceil(Math.log2(v))));
  if (hi - lo > 16) {
    lo = Math.max(lo, -8);
    hi = Math.min(hi, 8);
  }
  const x = (v: number) => labelW + ((Math.min(hi, Math.max(lo, Math.log2(v))) - lo) / (hi - lo)) * plotW;
  const colour = (s: string) => PALETTE[Math.max(0, opts.series.indexOf(s)) % PALETTE.length]!;
  const rowsH = groups.reduce((h, g) => h + Math.max(1, g.bars.length) * barH + groupGap, 0);
  const height = top + rowsH + 30 + legendH;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${n(height)}" viewBox="0 0 ${width} ${n(height)}" font-family="sans-serif" font-size="11">`);
  out.push(`<rect width="100%" height="100%" fill="#ffffff"/>`);
  out.push(`<text x="${width / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">${escapeXml(opts.title)}</text>`);
  out.push(`<text x="${width / 2}" y="34" text-anchor="middle" fill="#555">mlx-bun time / peer time (log scale): left of 1 mlx-bun is faster</text>`);
  // Grid lines at powers of two.
  const axisY = top + rowsH;
  for (let e = lo; e <= hi; e++) {
    const gx = x(2 ** e);
    out.push(`<line x1="${n(gx)}" y1="${top - 4}" x2="${n(gx)}" y2="${n(axisY)}" stroke="${e === 0 ? "#000" : "#ddd"}" stroke-width="${e === 0 ? 1.5 : 1}"/>`);
    out.push(`<text x="${n(gx)}" y="${n(axisY + 14)}" text-anchor="middle">${escapeXml(ratioLabel(2 ** e))}</text>`);
  }
  let y = top;
  for (const g of groups) {
    const gh = Math.max(1, g.bars.length) * barH;
    out.push(`<text x="${labelW - 6}" y="${n(y + gh / 2 + 4)}" text-anchor="end">${escapeXml(g.label.length > 42 ? g.label.slice(0, 41) + "…" : g.label)}</text>`);
    g.bars.forEach((b, i) => {
      const by = y + i * barH;
      if (!(Number.isFinite(b.value) && b.value > 0)) return;
      const x0 = x(1);
      const x1 = x(b.value);
      const bx = Math.min(x0, x1);
      const bw = Math.max(1, Math.abs(x1 - x0));
      out.push(
        `<rect x="${n(bx)}" y="${n(by + 1)}" width="${n(bw)}" height="${barH - 2}" fill="${colour(b.series)}"><title>${escapeXml(`${g.label} vs ${b.series}: ${ratioLabel(b.value)}`)}</title></rect>`,
      );
      const tx = x1 >= x0 ? x1 + 3 : x1 - 3;
      out.push(`<text x="${n(tx)}" y="${n(by + barH - 2)}" text-anchor="${x1 >= x0 ? "start" : "end"}" font-size="9">${escapeXml(ratioLabel(b.value))}</text>`);
    });
    y += gh + groupGap;
  }
  // Legend.
  let lx = labelW;
  const ly = axisY + 30;
  for (const s of opts.series) {
    out.push(`<rect x="${lx}" y="${ly - 9}" width="10" height="10" fill="${colour(s)}"/>`);
    out.push(`<text x="${lx + 14}" y="${ly}">${escapeXml(s)}</text>`);
    lx += 24 + s.length * 6.5;
  }
  out.push(`</svg>`);
  return out.join("\n") + "\n";
}
