/**
 * What a search runs, for the benchmark (`npm run bench -- --explain`) and for tuning: the exact statements
 * (page, count, and the _include/_revinclude queries for the page's matches) and their EXPLAIN ANALYZE plans.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Resource } from '@medplum/fhirtypes';
import { projectRoot } from '../../config';
import { openDatabase, type Queryable } from '../../storage/database';
import { compileCount, compileInclude, compileSearch, explain, searchResources } from '../../storage/search';
import { loadDefinitions } from '../definitions';
import { registerSearchParameters } from '../searchParameters';
import { planIncludes } from './include';
import { parseSearch } from './parse';

export interface ExplainOptions {
  /** Where to run the page query, to plan the include queries for its matches (either one). */
  db?: Queryable;
  databaseUrl?: string;
  fhirBaseUrl?: string;
  /** Custom SearchParameters to register first (default: the project's fhir-profiles/). */
  profilesDir?: string;
}

export interface Statement {
  text: string;
  values: unknown[];
}

let ready = false;

/** Standalone callers (the benchmark) get the same definitions the server loads at start. */
function ensureDefinitions(profilesDir: string): void {
  if (ready) return;
  loadDefinitions();
  const resources = readdirSync(profilesDir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(readFileSync(join(profilesDir, f), 'utf8')) as Resource);
  registerSearchParameters(resources);
  ready = true;
}

/** The statements `GET [resourceType]?query` runs (without access rules: as the system caller). */
export async function explainSearch(
  resourceType: string,
  query: URLSearchParams | string,
  options: ExplainOptions = {},
): Promise<{ statements: Statement[] }> {
  ensureDefinitions(options.profilesDir ?? join(projectRoot(), 'fhir-profiles'));
  const params = typeof query === 'string' ? new URLSearchParams(query) : query;
  const parsed = parseSearch(resourceType, params, { fhirBaseUrl: options.fhirBaseUrl ?? '' });
  const where = { resourceType, conditions: parsed.conditions };
  const page = { ...where, count: parsed.count, sort: parsed.sort, cursor: parsed.cursor };
  const statements: Statement[] = [];
  const add = (s: { sql: string; params: unknown[] }) => statements.push({ text: s.sql, values: s.params });
  add(compileSearch(page));
  if (parsed.total === 'accurate' || parsed.total === 'estimate') add(compileCount(where));
  if (parsed.include.length > 0 && (options.db || options.databaseUrl)) {
    const own = options.db ? undefined : await openDatabase({ databaseUrl: options.databaseUrl, dataDir: 'memory://', poolSize: 1 });
    try {
      const { versions } = await searchResources(options.db ?? own!, page);
      for (const inc of planIncludes(versions, parsed.include, () => [])) add(compileInclude(inc));
    } finally {
      await own?.close();
    }
  }
  return { statements };
}

/** Each statement of the search with its EXPLAIN (ANALYZE, BUFFERS) plan, as text. */
export async function explainSearchPlan(db: Queryable, resourceType: string, query: URLSearchParams | string, options: ExplainOptions = {}): Promise<string> {
  const { statements } = await explainSearch(resourceType, query, { ...options, db });
  const out: string[] = [];
  for (const s of statements) {
    out.push(s.text, `-- parameters: ${JSON.stringify(s.values)}`, await explain(db, s.text, s.values), '');
  }
  return out.join('\n');
}
