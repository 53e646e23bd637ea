/** The side-by-side table printed at the end of a bench run. */
import type { Measurement } from './measure';

export interface Row {
  scenario: string;
  connections: number;
  /**
   * Requests per second both sides were offered (a fixed-rate latency run); undefined: closed loop, as fast
   * as the connections go (a throughput run).
   */
  rate?: number;
  target: number;
  /**
   * ours p95 must stay under this (ms) in this row; undefined: not judged here. Set on the row of the fewest
   * connections: the latency of a request that is not queued behind others.
   */
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
  // A side that failed requests did not do the same work: its ratio or latency means nothing.
  const failed = row.ours.non2xx + row.ours.errors + row.baseline.non2xx + row.baseline.errors > 0;
  const common = (conns: string, ratio: string, target: string, p95Target: string): string[] => [
    row.scenario,
    conns,
    fixed(row.ours.requestsPerSecond, 0),
    fixed(row.baseline.requestsPerSecond, 0),
    ratio,
    target,
    fixed(row.ours.p95, 1),
    p95Target,
    fixed(row.ours.p99, 1),
    fixed(row.baseline.p95, 1),
    `${row.ours.non2xx}/${row.baseline.non2xx}`,
    `${row.ours.errors}/${row.baseline.errors}`,
  ];
  const limit = row.p95Target;
  const p95Cell = limit === undefined ? '-' : `< ${limit}${failed ? ' INVALID' : !Number.isFinite(row.ours.p95) ? '' : row.ours.p95 < limit ? ' ok' : ' LOW'}`;
  if (row.rate !== undefined) {
    // A latency run: both sides were offered the same load, so their req/s are not a throughput ratio.
    return common(`${row.connections}@${row.rate}/s`, '-', '-', p95Cell);
  }
  const ratio = row.ours.requestsPerSecond / row.baseline.requestsPerSecond;
  const verdict = failed ? ' INVALID' : !Number.isFinite(ratio) ? '' : ratio >= row.target ? ' ok' : ' LOW';
  return common(String(row.connections), fixed(ratio, 2), `>= ${row.target}${verdict}`, p95Cell);
}

export function table(rows: Row[]): string {
  const body = rows.map(cells);
  const widths = COLUMNS.map((c, i) => Math.max(c.length, ...body.map((r) => r[i].length)));
  const line = (r: string[]): string => r.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(COLUMNS), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}
