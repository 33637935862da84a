/** Small inline-SVG plots for the self-contained report (no network, no library). */

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
export const colour = (i: number) => PALETTE[i % PALETTE.length]!;
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
/** A rough rendered width of `text` in sans-serif at `size` px (to size an SVG so titles and legends are not cut off). */
const textWidth = (text: string, size: number) => text.length * size * 0.6;
const TITLE_SIZE = 13; // px
/** A chart's title, left-aligned at the top (`y`: its baseline), and the SVG width it needs. */
const chartTitle = (title: string, y: number) => `<text x="8" y="${y}" font-size="${TITLE_SIZE}" font-weight="bold">${esc(title)}</text>`;
const titleWidth = (title: string) => 16 + textWidth(title, TITLE_SIZE);
/** The right margin that holds a legend of these names. */
const legendMargin = (names: readonly string[]) => Math.max(150, 40 + Math.max(0, ...names.map((n) => textWidth(n, 11))));
const num = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toFixed(3));

export interface Series {
  name: string;
  points: Array<[number, number]>;
  dashed?: boolean;
}

/** A line chart with axes, ticks and a legend; `logY` plots the values on a log scale (positive values only). */
export function lineChart(series: readonly Series[], opts: { title: string; xLabel: string; yLabel: string; width?: number; height?: number; yMin?: number; yMax?: number; logY?: boolean }): string {
  const m = { l: 56, r: legendMargin(series.map((s) => s.name)), t: 28, b: 40 };
  const W = Math.max(opts.width ?? 410 + m.r, titleWidth(opts.title));
  const H = opts.height ?? 300;
  const shown = (y: number) => (opts.logY ? Math.log10(y) : y); // the plotted coordinate of a value
  const label = (v: number) => num(opts.logY ? 10 ** v : v); // a tick's value from its coordinate
  // each series' points as plotted, without those that cannot be drawn (non-finite, or ≤ 0 on a log scale)
  const plotted = series.map((s) => ({ ...s, points: s.points.map(([x, y]): [number, number] => [x, shown(y)]).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)) }));
  const all = plotted.flatMap((s) => s.points);
  if (all.length === 0) return `<svg width="${W}" height="60"><text x="10" y="30">${esc(opts.title)}: no data</text></svg>`;
  const x0 = Math.min(...all.map((p) => p[0]));
  const x1 = Math.max(...all.map((p) => p[0]), x0 + 1);
  let y0 = opts.yMin !== undefined ? shown(opts.yMin) : Math.min(...all.map((p) => p[1]));
  let y1 = opts.yMax !== undefined ? shown(opts.yMax) : Math.max(...all.map((p) => p[1]));
  if (y1 - y0 < 1e-9) [y0, y1] = [y0 - 0.5, y1 + 0.5];
  const X = (x: number) => m.l + ((x - x0) / (x1 - x0)) * (W - m.l - m.r);
  const Y = (y: number) => H - m.b - ((y - y0) / (y1 - y0)) * (H - m.t - m.b);
  const ticks = (a: number, b: number) => [0, 0.25, 0.5, 0.75, 1].map((f) => a + f * (b - a));
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`];
  parts.push(chartTitle(opts.title, 16));
  for (const v of ticks(y0, y1)) parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${Y(v)}" y2="${Y(v)}" stroke="#eee"/><text x="${m.l - 4}" y="${Y(v) + 4}" text-anchor="end">${label(v)}</text>`);
  for (const v of ticks(x0, x1)) parts.push(`<text x="${X(v)}" y="${H - m.b + 14}" text-anchor="middle">${num(v)}</text>`);
  parts.push(`<line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${H - m.b}" stroke="#333"/><line x1="${m.l}" x2="${W - m.r}" y1="${H - m.b}" y2="${H - m.b}" stroke="#333"/>`);
  parts.push(`<text x="${(m.l + W - m.r) / 2}" y="${H - 6}" text-anchor="middle">${esc(opts.xLabel)}</text>`);
  parts.push(`<text transform="translate(12 ${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle">${esc(opts.yLabel)}</text>`);
  plotted.forEach((s, i) => {
    const d = s.points.map(([x, y], k) => `${k ? 'L' : 'M'}${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join('');
    parts.push(`<path d="${d}" fill="none" stroke="${colour(i)}" stroke-width="1.8"${s.dashed ? ' stroke-dasharray="5,3"' : ''}/>`);
    parts.push(`<line x1="${W - m.r + 10}" x2="${W - m.r + 28}" y1="${m.t + 8 + i * 16}" y2="${m.t + 8 + i * 16}" stroke="${colour(i)}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5,3"' : ''}/><text x="${W - m.r + 32}" y="${m.t + 12 + i * 16}">${esc(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('');
}

/** A square heatmap (e.g. query × query cosine) with a colour scale from `min` (white) to `max` (dark blue). */
export function heatmap(matrix: readonly (readonly number[])[], opts: { title: string; label?: string; cell?: number }): string {
  const n = matrix.length;
  const c = opts.cell ?? Math.max(6, Math.floor(400 / Math.max(1, n)));
  const vals = matrix.flat();
  const lo = Math.min(...vals);
  const hi = Math.max(...vals, lo + 1e-9);
  const shade = (v: number) => {
    const f = (v - lo) / (hi - lo);
    return `rgb(${Math.round(255 - 225 * f)},${Math.round(255 - 180 * f)},${Math.round(255 - 80 * f)})`;
  };
  const left = 34; // row labels
  const top = 36; // title, then column labels
  const W = Math.max(left + n * c + 90, titleWidth(opts.title));
  const H = top + n * c + 8;
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="10">`];
  parts.push(chartTitle(opts.title, 14));
  matrix.forEach((row, i) =>
    row.forEach((v, j) => parts.push(`<rect x="${left + j * c}" y="${top + i * c}" width="${c}" height="${c}" fill="${shade(v)}"><title>${opts.label ?? ''} ${i},${j}: ${v.toFixed(3)}</title></rect>`)),
  );
  for (let i = 0; i < n; i += Math.max(1, Math.ceil(n / 8))) {
    parts.push(`<text x="${left - 4}" y="${top + i * c + c * 0.8}" text-anchor="end">${i}</text><text x="${left + i * c + c / 2}" y="${top - 4}" text-anchor="middle">${i}</text>`);
  }
  const lx = left + n * c + 14;
  for (let k = 0; k <= 10; k++) parts.push(`<rect x="${lx}" y="${top + (10 - k) * 12}" width="14" height="12" fill="${shade(lo + (k / 10) * (hi - lo))}"/>`);
  parts.push(`<text x="${lx + 18}" y="${top + 10}">${hi.toFixed(2)}</text><text x="${lx + 18}" y="${top + 11 * 12}">${lo.toFixed(2)}</text>`);
  parts.push('</svg>');
  return parts.join('');
}

/** Grouped vertical bars: one group per category, one bar per series; values in [0, yMax]. */
export function groupedBars(categories: readonly string[], series: ReadonlyArray<{ name: string; values: readonly number[] }>, opts: { title: string; yLabel: string; yMax?: number; width?: number; height?: number; chance?: number }): string {
  const m = { l: 46, r: legendMargin(series.map((s) => s.name)), t: 28, b: 40 };
  const W = Math.max(opts.width ?? Math.max(420, 60 + categories.length * (series.length * 14 + 18) + m.r), titleWidth(opts.title));
  const H = opts.height ?? 260;
  const yMax = opts.yMax ?? Math.max(1e-9, ...series.flatMap((s) => s.values));
  const groupW = (W - m.l - m.r) / Math.max(1, categories.length);
  const barW = Math.max(2, (groupW - 8) / Math.max(1, series.length));
  const Y = (v: number) => H - m.b - (Math.max(0, v) / yMax) * (H - m.t - m.b);
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`];
  parts.push(chartTitle(opts.title, 16));
  for (const f of [0, 0.25, 0.5, 0.75, 1]) parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${Y(f * yMax)}" y2="${Y(f * yMax)}" stroke="#eee"/><text x="${m.l - 4}" y="${Y(f * yMax) + 4}" text-anchor="end">${num(f * yMax)}</text>`);
  categories.forEach((cat, g) => {
    series.forEach((s, k) => {
      const v = s.values[g] ?? 0;
      parts.push(`<rect x="${m.l + g * groupW + 4 + k * barW}" y="${Y(v)}" width="${barW - 1}" height="${H - m.b - Y(v)}" fill="${colour(k)}"><title>${esc(s.name)} ${esc(cat)}: ${num(v)}</title></rect>`);
    });
    if (categories.length <= 40 || g % Math.ceil(categories.length / 40) === 0) parts.push(`<text x="${m.l + g * groupW + groupW / 2}" y="${H - m.b + 14}" text-anchor="middle">${esc(cat)}</text>`);
  });
  if (opts.chance !== undefined) parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${Y(opts.chance)}" y2="${Y(opts.chance)}" stroke="#555" stroke-dasharray="4,3"/>`);
  parts.push(`<line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${H - m.b}" stroke="#333"/><line x1="${m.l}" x2="${W - m.r}" y1="${H - m.b}" y2="${H - m.b}" stroke="#333"/>`);
  parts.push(`<text transform="translate(12 ${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle">${esc(opts.yLabel)}</text>`);
  series.forEach((s, k) => parts.push(`<rect x="${W - m.r + 10}" y="${m.t + k * 16}" width="12" height="10" fill="${colour(k)}"/><text x="${W - m.r + 26}" y="${m.t + 9 + k * 16}">${esc(s.name)}</text>`));
  parts.push('</svg>');
  return parts.join('');
}

export { esc };
