/** The side-by-side table printed at the end of a bench run. */
import type { Measurement } from './measure';

export interface Row {
  scenario: string;
  connections: number;
  target: number;
  /** ours p95 must stay under this (ms); undefined: no latency target. */
  p95Target?: number;
  ours: Measurement;
  baseline: Measurement;
}

const COLUMNS = [
  'scenario',
  'conns',
  'ours req/s',
  'base req/s',
  'ratio',
  'target',
  'ours p95 ms',
  'p95 target',
  'ours p99 ms',
  'base p95 ms',
  'non-2xx ours/base',
  'errors ours/base',
];

function fixed(n: number, digits: number): string {
  return Number.isFinite(n) ? n.toFixed(digits) : '-';
}

export function cells(row: Row): string[] {
  const ratio = row.ours.requestsPerSecond / row.baseline.requestsPerSecond;
  // A side that failed requests did not do the same work: its ratio means nothing.
  const failed = row.ours.non2xx + row.ours.errors + row.baseline.non2xx + row.baseline.errors > 0;
  const verdict = failed ? ' INVALID' : !Number.isFinite(ratio) ? '' : ratio >= row.target ? ' ok' : ' LOW';
  return [
    row.scenario,
    String(row.connections),
    fixed(row.ours.requestsPerSecond, 0),
    fixed(row.baseline.requestsPerSecond, 0),
    fixed(ratio, 2),
    `>= ${row.target}${verdict}`,
    fixed(row.ours.p95, 1),
    row.p95Target === undefined ? '-' : `< ${row.p95Target}${row.ours.p95 < row.p95Target ? ' ok' : ' LOW'}`,
    fixed(row.ours.p99, 1),
    fixed(row.baseline.p95, 1),
    `${row.ours.non2xx}/${row.baseline.non2xx}`,
    `${row.ours.errors}/${row.baseline.errors}`,
  ];
}

export function table(rows: Row[]): string {
  const body = rows.map(cells);
  const widths = COLUMNS.map((c, i) => Math.max(c.length, ...body.map((r) => r[i].length)));
  const line = (r: string[]): string => r.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(COLUMNS), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}
