/**
 * Search queries over the index tables: the storage-level query language the FHIR search layer compiles
 * to (conditions, sort keys, keyset cursors), and the statements that run it. Parameterized SQL only; the
 * condition-to-SQL compiler is in ./searchSql.ts.
 * https://hl7.org/fhir/R4/search.html
 */
import type { Queryable } from './database';
import { toVersion, type Row, type StoredVersion } from './repository';
import { compilePage, DRIVING_TABLES, searchBranches } from './searchPage';
import { compileConditions, SqlBuilder, type IndexTable } from './searchSql';

export { StatementTooLargeError, type IndexTable } from './searchSql';
export { cursorFits } from './searchPage';

export type Prefix = 'eq' | 'ne' | 'gt' | 'lt' | 'ge' | 'le' | 'sa' | 'eb' | 'ap';

/** `system` null = no system (`|code`); `text` for :text; `typeSystem`/`typeCode` for :of-type. */
export interface TokenMatch {
  system?: string | null;
  value?: string;
  text?: string;
  typeSystem?: string;
  typeCode?: string;
}
/** A date search value covering [start, end) (ISO instants, end exclusive). */
export interface DateMatch {
  prefix: Prefix;
  start: string;
  end: string;
}
/** A number (or quantity) search value as decimal text, so its precision is kept. */
export interface NumberMatch {
  prefix: Prefix;
  value: string;
  system?: string;
  unit?: string;
}
export type UriMatch = { match: 'eq' | 'below'; value: string } | { match: 'above'; values: string[] };
export type ReferenceMatch =
  | { id: string; types?: string[] }
  | { url: string; anyVersion?: boolean }
  | { identifier: { system?: string | null; value?: string } };

/** One search condition of the storage-level query language the FHIR search layer compiles to. */
export type Condition =
  | { kind: 'id'; ids: string[]; not?: boolean }
  | { kind: 'token'; code: string; any: TokenMatch[]; not?: boolean }
  | { kind: 'lastUpdated'; op: '>=' | '<' | '>' | '<='; value: string }
  /** The resource references one of the targets through one of the search parameters `codes`. */
  | { kind: 'reference'; codes: string[]; targets: { type: string; id: string }[]; not?: boolean }
  /** At least one of the conditions holds (access rules combine compartments this way). */
  | { kind: 'or'; any: Condition[] }
  | { kind: 'and'; all: Condition[] }
  /** Matches nothing (an access rule that grants no rows). */
  | { kind: 'none' }
  | { kind: 'type'; types: string[] }
  | { kind: 'string'; code: string; any: { match: 'start' | 'exact' | 'contains'; value: string }[] }
  | { kind: 'date'; code: string; any: DateMatch[] }
  | { kind: 'number'; table: 'number' | 'quantity'; code: string; any: NumberMatch[] }
  | { kind: 'uri'; code: string; any: UriMatch[] }
  | { kind: 'refValue'; code: string; any: ReferenceMatch[]; not?: boolean }
  /** One index row of a single-valued parameter meets all of these conditions on it (repeated parameters). */
  | { kind: 'values'; table: IndexTable; code: string; all: Condition[] }
  /**
   * A composite parameter's value: each part is a condition on one component (its code `<code>$<index>`),
   * and all must hold for the component rows of one element.
   */
  | { kind: 'composite'; parts: Condition[] }
  /** :missing — `missing: true` matches resources with no index row for the parameter. */
  | { kind: 'missing'; table: IndexTable; code: string; missing: boolean }
  | { kind: 'near'; latitude: number; longitude: number; km: number }
  /** The resource references through `code` a resource of one of the target types meeting its conditions. */
  | { kind: 'chain'; code: string; targets: { types: string[]; where: Condition[] }[] }
  /** A resource of `type` meeting `where` references this one through `code` (_has). */
  | { kind: 'has'; type: string; code: string; where: Condition[] }
  /**
   * A DocumentReference that an active Consent opens to the practitioner at the instant `at` (an ISO instant): the
   * rows of consent_grant (migrations/0011_consent.sql), decided in SQL (src/access/consent.ts).
   */
  | { kind: 'consent'; practitioner: string; at: string };

/** A sort key: a column of `resources`, or a search parameter's values in its index table. */
/**
 * A sort key: a column of `resources`, or a search parameter's values in its index table. `single`: the
 * parameter has at most one index row per resource; `required`: every resource has one.
 */
export type SortKey =
  | { column: 'id' | 'last_updated'; descending: boolean }
  | { table: IndexTable; code: string; descending: boolean; single?: boolean; required?: boolean };

/** A keyset position: the sort key values (as text) and id of a row; backward = the rows before it. */
export interface Cursor {
  values: (string | null)[];
  id: string;
  backward?: boolean;
}

export interface SearchQuery {
  /** One type; or several (system search); neither: every type. */
  resourceType?: string;
  resourceTypes?: string[];
  conditions: Condition[];
  count: number;
  /** Sort keys before the implicit last key, id ascending. */
  sort?: SortKey[];
  cursor?: Cursor;
  /** Keyset cursor of the default order (by id): only ids after this one. */
  afterId?: string;
  /**
   * Read the page off the first sort key's index rows even though it has several rows per resource and the
   * search has other conditions (unset: `searchResources` decides, from the planner's estimates).
   */
  sortDriven?: boolean;
}

export interface SearchPage {
  versions: StoredVersion[];
  /** Sort key values of each returned row, as text (for cursors). */
  keys: (string | null)[][];
  /** More rows exist beyond this page in the direction read. */
  more: boolean;
}

function baseWhere(b: SqlBuilder, s: Pick<SearchQuery, 'resourceType' | 'resourceTypes' | 'conditions'>): string[] {
  const where: string[] = [];
  if (s.resourceType !== undefined) where.push(`r.resource_type = ${b.p(s.resourceType)}`);
  else if (s.resourceTypes !== undefined) where.push(`r.resource_type = ANY(${b.p(s.resourceTypes, 'text[]')})`);
  where.push('NOT r.deleted', ...compileConditions(b, s.conditions, 'r'));
  return where;
}

/** The first statement of a page (the benchmark and tests EXPLAIN exactly what a search runs). */
export function compileSearch(s: SearchQuery): { sql: string; params: unknown[] } {
  return compilePage(searchBranches(s)[0].spec(s.count + 1));
}

export async function searchResources(q: Queryable, s: SearchQuery): Promise<SearchPage> {
  if (s.sortDriven === undefined && multiValuedSortWithConditions(s)) s = { ...s, sortDriven: await sortDrivenPays(q, s) };
  const rows: { row: Row; keys: (string | null)[] }[] = [];
  const n = s.sort?.length ?? 0;
  for (const branch of searchBranches(s)) {
    const limit = s.count + 1 - rows.length;
    if (limit <= 0) break;
    const { sql, params } = compilePage(branch.spec(limit));
    const r = await q.query<Row & Record<string, string | null>>(sql, params);
    const width = n - (branch.withoutFirstKey ? 1 : 0);
    for (const row of r.rows) rows.push({ row, keys: branch.keys(Array.from({ length: width }, (_, i) => row[`k${i}`] ?? null)) });
  }
  const page = rows.slice(0, s.count);
  if (s.cursor?.backward) page.reverse();
  return { versions: page.map((x) => toVersion(x.row)), keys: page.map((x) => x.keys), more: rows.length > s.count };
}

type CountQuery = Pick<SearchQuery, 'resourceType' | 'resourceTypes' | 'conditions'>;

export function compileCount(s: CountQuery): { sql: string; params: unknown[] } {
  const b = new SqlBuilder();
  const where = baseWhere(b, s);
  return { sql: `SELECT count(*) AS n FROM resources r WHERE ${where.join(' AND ')}`, params: b.params };
}

export async function countResources(q: Queryable, s: CountQuery): Promise<number> {
  const { sql, params } = compileCount(s);
  const r = await q.query<{ n: string | number }>(sql, params);
  return Number(r.rows[0].n);
}

/**
 * The planner's estimate of the resources meeting the conditions (no scan): the row estimate of the top node of
 * the plain SELECT, a Gather's included (under count(*), a parallel plan's nodes estimate one worker's rows).
 */
async function plannedRows(q: Queryable, s: CountQuery): Promise<number> {
  const b = new SqlBuilder();
  const r = await q.query<{ 'QUERY PLAN': unknown }>(`EXPLAIN (FORMAT JSON) SELECT 1 FROM resources r WHERE ${baseWhere(b, s).join(' AND ')}`, b.params);
  const raw = r.rows[0]['QUERY PLAN'];
  const plan = (typeof raw === 'string' ? JSON.parse(raw) : raw) as { Plan: { 'Plan Rows': number } }[];
  return Math.round(plan[0].Plan['Plan Rows'] ?? 0);
}

/** The planner's row estimate for `_total=estimate` (no scan); small estimates are counted exactly. */
export async function estimateResources(q: Queryable, s: CountQuery, exactBelow = 10_000): Promise<number> {
  const estimate = await plannedRows(q, s);
  return estimate < exactBelow ? countResources(q, s) : estimate;
}

/**
 * A search sorted by a parameter with several rows per resource, with other conditions: reading its index in
 * order and testing the conditions on each resource it meets stops after a page, but meets about
 * page x (resources of the type / matches) of them; finding the matches and sorting them costs about one step
 * per match. The planner's estimates of both numbers pick the cheaper (https://hl7.org/fhir/R4/search.html#sort:
 * `Patient?gender=female&_sort=family` reads in index order, `Patient?_tag=x&_sort=family` sorts its few).
 */
function multiValuedSortWithConditions(s: SearchQuery): boolean {
  const first = s.sort?.[0];
  if (first === undefined || !('table' in first) || first.single || !DRIVING_TABLES.has(first.table)) return false;
  return s.conditions.length > 0 && s.resourceType !== undefined && s.afterId === undefined;
}

async function sortDrivenPays(q: Queryable, s: SearchQuery): Promise<boolean> {
  const matches = await plannedRows(q, s);
  const all = await plannedRows(q, { resourceType: s.resourceType, conditions: [] });
  return matches * matches > (s.count + 1) * all;
}

/** `EXPLAIN (ANALYZE, BUFFERS)` of a statement, as text lines. */
export async function explain(q: Queryable, sql: string, params: unknown[]): Promise<string> {
  const r = await q.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS) ${sql}`, params);
  return r.rows.map((row) => row['QUERY PLAN']).join('\n');
}

export interface IncludeQuery {
  /** _include: follow the sources' references; _revinclude: find resources of `sourceType` referencing the targets. */
  reverse: boolean;
  sourceType: string;
  codes: string[];
  /** _include: the resources whose references are followed. */
  sourceIds?: string[];
  /** _include: only targets of this type. */
  targetType?: string;
  /** _revinclude: the resources that must be referenced. */
  targets?: { type: string; id: string }[];
  /** Conditions on the included rows (access rules), compiled on them. */
  where: Condition[];
  limit: number;
}

/**
 * _include (https://hl7.org/fhir/R4/search.html#include) follows search_reference rows by their
 * (resource_type, resource_id) index; _revinclude finds them by the (target_type, target_id, resource_type,
 * code) index. Either way, a semi-join: each included resource once.
 */
export function compileInclude(inc: IncludeQuery): { sql: string; params: unknown[] } {
  const b = new SqlBuilder();
  const refs = [`s.resource_type = ${b.p(inc.sourceType)}`, `s.code = ANY(${b.p(inc.codes, 'text[]')})`];
  let match: string;
  if (inc.reverse) {
    const targets = inc.targets ?? [];
    refs.push(
      `(s.target_type, s.target_id) IN (SELECT * FROM unnest(${b.p(targets.map((t) => t.type), 'text[]')}, ${b.p(targets.map((t) => t.id), 'text[]')}))`,
    );
    match = `r.resource_type = ${b.p(inc.sourceType)} AND r.id IN (SELECT s.resource_id FROM search_reference s WHERE ${refs.join(' AND ')})`;
  } else {
    refs.push(`s.resource_id = ANY(${b.p(inc.sourceIds ?? [], 'text[]')})`, 's.target_id IS NOT NULL');
    if (inc.targetType) refs.push(`s.target_type = ${b.p(inc.targetType)}`);
    match = `(r.resource_type, r.id) IN (SELECT s.target_type, s.target_id FROM search_reference s WHERE ${refs.join(' AND ')})`;
  }
  const where = [match, 'NOT r.deleted', ...compileConditions(b, inc.where, 'r')];
  const sql = `SELECT r.resource_type, r.id, r.version_id, r.last_updated, r.deleted, r.content FROM resources r
    WHERE ${where.join(' AND ')} LIMIT ${b.p(inc.limit)}`;
  return { sql, params: b.params };
}

export async function includeResources(q: Queryable, inc: IncludeQuery): Promise<StoredVersion[]> {
  const { sql, params } = compileInclude(inc);
  const r = await q.query<Row>(sql, params);
  return r.rows.map(toVersion);
}
