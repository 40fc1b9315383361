// Turns measurements into the summary table and the target checks. Speed is the median over
// the rounds (one slow round on a shared 2-core machine should not decide); peak RSS is the
// highest of the rounds (a memory limit is about the worst case). 1 MB = 10^6 bytes.
import type { Measurement } from './types.js';

export interface SummaryRow {
  tool: string;
  op: string;
  runs: number;
  /** Median MB/s over the rounds. */
  mbPerSec: number;
  /** Every round's MB/s, in run order. */
  allMbPerSec: number[];
  /** This row's MB/s over the fastest other tool's of the same operation (peers only: not another Offsite variant). */
  vsFastestPeer?: number;
  /** That tool. */
  fastestPeer?: string;
  peakRssMb: number;
}

export interface TargetCheck {
  name: string;
  pass: boolean;
  value: string;
}

/** The median (the mean of the two middle values for an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function summarise(rows: Measurement[]): SummaryRow[] {
  const groups = new Map<string, Measurement[]>();
  for (const r of rows) groups.set(`${r.tool}\0${r.op}`, [...(groups.get(`${r.tool}\0${r.op}`) ?? []), r]);
  const summary = [...groups.values()].map((g): SummaryRow => {
    const speeds = g.map((r) => r.bytes / 1e6 / r.seconds);
    return { tool: g[0]!.tool, op: g[0]!.op, runs: g.length, mbPerSec: median(speeds), allMbPerSec: speeds, peakRssMb: Math.max(...g.map((r) => r.peakRssBytes / 1e6)) };
  });
  for (const s of summary) {
    const peers = summary.filter((x) => x.op === s.op && x.tool !== s.tool && !x.tool.startsWith('offsite'));
    const fastest = peers.sort((a, b) => b.mbPerSec - a.mbPerSec)[0];
    if (fastest) Object.assign(s, { vsFastestPeer: s.mbPerSec / fastest.mbPerSec, fastestPeer: fastest.tool });
  }
  return summary;
}

/**
 * Issue 15's targets for Offsite, against the fastest peer of each operation in the same run. A
 * MISS is reported, not a failure: the numbers are noisy.
 */
export function checkTargets(summary: SummaryRow[]): TargetCheck[] {
  const off = (op: string) => summary.find((s) => s.tool === 'offsite' && s.op === op);
  const ratio = (op: string, min: number): TargetCheck => {
    const row = off(op);
    const v = row?.vsFastestPeer;
    return { name: `Offsite ${op} >= ${min.toFixed(2)}x fastest peer`, pass: v !== undefined && v >= min, value: v === undefined ? 'not measured' : `${v.toFixed(2)}x (${row!.fastestPeer})` };
  };
  const rss = Math.max(...summary.filter((s) => s.tool === 'offsite').map((s) => s.peakRssMb));
  return [
    ratio('upload', 1.0),
    ratio('download', 1.1),
    { name: 'Offsite peak RSS < 150 MB', pass: Number.isFinite(rss) && rss < 150, value: Number.isFinite(rss) ? `${rss.toFixed(0)} MB` : 'not measured' },
  ];
}

const OP_ORDER = ['upload', 'download'];
const TOOL_ORDER = ['offsite', 'aws-cli-1', 'aws-cli-2', 'rclone'];
/** Known names first in their order, anything else (variants) after. */
const rank = (order: string[], name: string) => (order.includes(name) ? order.indexOf(name) : order.length);

export function formatTable(summary: SummaryRow[]): string {
  const x = (v: number | undefined) => (v === undefined ? '-' : `${v.toFixed(2)}x`);
  const header = ['tool', 'op', 'MB/s', 'vs fastest peer', 'peak RSS MB', 'MB/s per run'];
  const body = [...summary]
    .sort((a, b) => rank(OP_ORDER, a.op) - rank(OP_ORDER, b.op) || rank(TOOL_ORDER, a.tool) - rank(TOOL_ORDER, b.tool))
    .map((s) => [s.tool, s.op, s.mbPerSec.toFixed(0), s.vsFastestPeer === undefined ? '-' : `${x(s.vsFastestPeer)} ${s.fastestPeer}`, s.peakRssMb.toFixed(0), s.allMbPerSec.map((v) => v.toFixed(0)).join(' ')]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const numeric = new Set([2, 4]);
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (numeric.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

/**
 * Any table as aligned text: a header, a dashed rule, one line per row; columns listed in
 * `rightAligned` (numbers) are padded on the left. For scenarios whose rows are not MB/s figures.
 */
export function formatColumns(header: string[], rows: string[][], rightAligned: number[] = []): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const right = new Set(rightAligned);
  const line = (cells: string[]) =>
    widths
      .map((w, i) => (right.has(i) ? (cells[i] ?? '').padStart(w) : (cells[i] ?? '').padEnd(w)))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export function formatTargets(checks: TargetCheck[]): string {
  return checks.map((c) => `  ${c.pass ? 'PASS' : 'MISS'}  ${c.name.padEnd(34)} ${c.value}`).join('\n');
}
