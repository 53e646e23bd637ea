/**
 * `npm run bench -- --explain`: for each search scenario, EXPLAIN (ANALYZE, BUFFERS) of the SQL our server
 * runs and of the baseline's hand-written SQL, on the loaded database, with every Seq Scan on a big table
 * flagged. Our SQL comes from the server's `explainSearch` when it exports one, else from what the server
 * actually ran for the request (bench/sql-capture.js, preloaded into it for --explain).
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Client } from 'pg';
import type { BenchData, Scenario, Target } from '../scenarios';
import { BASELINE_QUERIES, type Sql } from './queries';

/** Tables with at least this many rows are big: a Seq Scan on them is a finding. */
const BIG_TABLE_ROWS = 10_000;

/** Where the query side exports `explainSearch` (compiled, relative to the entry's directory), in the order we look. */
const EXPLAIN_MODULES = ['fhir/search/explain.js', 'storage/search.js'];

type ExplainSearch = (...args: unknown[]) => unknown;

/** The server's own `explainSearch`, if the build whose entry point is `entry` (dist/src/main.js) has one. */
export function findExplainSearch(entry: string): { fn: ExplainSearch; from: string } | undefined {
  for (const file of EXPLAIN_MODULES) {
    const path = join(dirname(entry), file);
    if (!existsSync(path)) continue;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require(path) as { explainSearch?: ExplainSearch };
    if (typeof mod.explainSearch === 'function') return { fn: mod.explainSearch, from: path };
  }
  return undefined;
}

/** Accepts the shapes an `explainSearch` plausibly returns: SQL text, {text|sql, values|params}, or a list of them. */
function toStatements(value: unknown): Sql[] {
  if (Array.isArray(value)) return value.flatMap(toStatements);
  if (typeof value === 'string') return [{ text: value, values: [] }];
  if (value && typeof value === 'object') {
    const v = value as Record<string, unknown>;
    const text = v.text ?? v.sql;
    if (typeof text === 'string') return [{ text, values: (v.values ?? v.params ?? []) as unknown[] }];
    if (Array.isArray(v.statements)) return toStatements(v.statements);
  }
  throw new Error(`explainSearch returned something unexpected: ${JSON.stringify(value).slice(0, 200)}`);
}

export interface OurSqlSource {
  /** How our SQL was obtained, for the report. */
  describe: string;
  statements(resourceType: string, query: URLSearchParams, path: string): Promise<Sql[]>;
}

/**
 * Our SQL through the server's `explainSearch(resourceType, query, { databaseUrl, fhirBaseUrl })`
 * (src/fhir/search/explain.ts): the page statement, then the _include/_revinclude statements for its matches.
 */
export function explainSearchSource(found: { fn: ExplainSearch; from: string }, databaseUrl: string, fhirBaseUrl: string): OurSqlSource {
  return {
    describe: `explainSearch from ${found.from}`,
    async statements(resourceType, query) {
      return toStatements(await found.fn(resourceType, query, { databaseUrl, fhirBaseUrl }));
    },
  };
}

/** Our SQL as the server ran it for one request marked with a capture token (bench/sql-capture.js). */
export function capturedSource(ours: Target, captureFile: string): OurSqlSource {
  return {
    describe: `captured from the running server (bench/sql-capture.js; no explainSearch in the build)`,
    async statements(_type, _query, path) {
      const token = randomUUID();
      const response = await fetch(ours.origin + path, {
        headers: { accept: 'application/fhir+json', 'x-bench-capture': token, ...ours.headers },
      });
      await response.text();
      if (!existsSync(captureFile)) return [];
      return readFileSync(captureFile, 'utf8')
        .split('\n')
        .filter((line) => line.includes(token))
        .map((line) => JSON.parse(line) as { text: string; values: unknown[] })
        .filter((s) => /^\s*(WITH|SELECT)\b/i.test(s.text))
        .map((s) => ({ text: s.text, values: s.values }));
    },
  };
}

async function bigTables(client: Client): Promise<Map<string, number>> {
  const { rows } = await client.query<{ relname: string; rows: string }>(
    `SELECT c.relname, c.reltuples::bigint AS rows FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind = 'r' AND n.nspname = 'public' AND c.reltuples >= $1`,
    [BIG_TABLE_ROWS],
  );
  return new Map(rows.map((r) => [r.relname, Number(r.rows)]));
}

export interface PlanFindings {
  executionMs: number;
  seqScans: string[];
  error?: string;
}

async function explain(client: Client, sql: Sql, big: Map<string, number>, indent: string): Promise<PlanFindings> {
  let lines: string[];
  try {
    // The plan of a second run: a first one warms the cache, so neither side's plan shows the other's misses.
    await client.query(`EXPLAIN (ANALYZE) ${sql.text}`, sql.values);
    const { rows } = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS) ${sql.text}`, sql.values);
    lines = rows.map((r) => r['QUERY PLAN']);
  } catch (err) {
    console.log(`${indent}EXPLAIN failed: ${(err as Error).message}`);
    return { executionMs: NaN, seqScans: [], error: (err as Error).message };
  }
  const seqScans: string[] = [];
  for (const line of lines) {
    const m = /Seq Scan on (\w+)/.exec(line);
    const flag = m && big.has(m[1]) ? `   <-- SEQ SCAN on big table ${m[1]} (${big.get(m[1])!.toLocaleString('en')} rows)` : '';
    if (flag) seqScans.push(m![1]);
    console.log(indent + line + flag);
  }
  const time = /Execution Time: ([\d.]+) ms/.exec(lines.join('\n'));
  return { executionMs: time ? Number(time[1]) : NaN, seqScans };
}

function printSql(sql: Sql, indent: string): void {
  console.log(sql.text.split('\n').map((l) => indent + l.trim()).filter((l) => l.trim()).join('\n'));
  console.log(`${indent}-- parameters: ${JSON.stringify(sql.values).slice(0, 400)}`);
}

export interface ExplainSummary {
  scenario: string;
  path: string;
  ours: PlanFindings[];
  baseline: PlanFindings;
}

/** Prints both plans of each scenario's first request; returns the findings for the summary. */
export async function explainScenarios(
  scenarios: Scenario[],
  ours: Target,
  baseline: Target,
  data: BenchData,
  databaseUrl: string,
  source: OurSqlSource,
): Promise<ExplainSummary[]> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  const summaries: ExplainSummary[] = [];
  try {
    const big = await bigTables(client);
    console.log(`our SQL: ${source.describe}; big tables (>= ${BIG_TABLE_ROWS} rows): ${[...big.keys()].join(', ')}`);
    for (const scenario of scenarios) {
      const path = scenario.requests(ours, data)().path;
      const url = new URL(path, ours.origin);
      const resourceType = url.pathname.split('/').pop()!;
      console.log(`\n--- ${scenario.name}: GET ${path}`);
      const statements = await source.statements(resourceType, url.searchParams, path);
      const summary: ExplainSummary = { scenario: scenario.name, path, ours: [], baseline: { executionMs: NaN, seqScans: [] } };
      if (statements.length === 0) console.log('  ours: no SQL obtained');
      for (const [i, sql] of statements.entries()) {
        console.log(`  ours, statement ${i + 1} of ${statements.length}:`);
        printSql(sql, '    | ');
        summary.ours.push(await explain(client, sql, big, '    '));
      }
      const baselineSql = BASELINE_QUERIES[resourceType](new URL(scenario.requests(baseline, data)().path, baseline.origin).searchParams);
      console.log('  baseline:');
      printSql(baselineSql, '    | ');
      summary.baseline = await explain(client, baselineSql, big, '    ');
      summaries.push(summary);
    }
  } finally {
    await client.end();
  }
  return summaries;
}

function finding(f: PlanFindings): string {
  if (f.error) return `failed (${f.error})`;
  return `${f.executionMs.toFixed(2)} ms${f.seqScans.length ? ` SEQ SCAN ${f.seqScans.join(',')}` : ''}`;
}

export function printExplainSummary(summaries: ExplainSummary[]): void {
  for (const s of summaries) {
    const ours = s.ours.length
      ? s.ours.map(finding).join(' + ')
      : 'no SQL';
    const base = finding(s.baseline);
    const flag = [...s.ours, s.baseline].some((f) => f.seqScans.length) ? '  <-- seq scan on a big table' : '';
    console.log(`  ${s.scenario.padEnd(14)} ours ${ours}; baseline ${base}${flag}`);
  }
}
