/**
 * One page of a search as SQL: sort keys, keyset cursor, and the choice of the rows the page is read from.
 *
 * - Generic: the page's ids (and sort keys) are chosen from `resources` (index-only on the live-rows index
 *   of migrations/0004) with each condition an EXISTS on an index table; only the page's rows are then
 *   joined back for their content.
 * - Index-driven: when the first sort key is a parameter with at most one index row per resource (`single`,
 *   e.g. Slot.start), the page is read off that parameter's index rows in index order — an ORDER BY ...
 *   LIMIT that stops after a page even on 200,000 Slots — and conditions on the same parameter test that
 *   row directly. A parameter with several rows per resource (Patient.family) drives a search with no other
 *   condition (or with unselective ones) the same way, reading only each resource's least (greatest,
 *   descending) row. Resources without the value sort last; they are read by a second statement only
 *   when the first runs out.
 * - Filter-driven: in the default order (by id), a search with one string condition reads the page's ids off
 *   the string index rows themselves (DISTINCT, ORDER BY id and LIMIT at one level), like a hand-written
 *   query, without probing `resources` for each match: a deleted resource has no index rows (its delete
 *   removes them in the same statement), so every matching row belongs to a live resource. So does a search
 *   with one chain whose targets are read off index rows (`PractitionerRole?location.near=...`), off the
 *   reference rows that point at those targets.
 *   PostgreSQL then either sorts the matching rows (a rare prefix) or walks the rows in (type, id) order and
 *   stops after a page (a common one).
 * Paging never uses OFFSET: the cursor holds the last row's sort key values and id.
 * https://hl7.org/fhir/R4/search.html#sort — https://hl7.org/fhir/R4/http.html#paging
 */
import type { Condition, Cursor, SearchQuery, SortKey } from './search';
import { chainTargets, compileConditions, extremeRow, hasIndexDriver, indexRowsAsResources, SqlBuilder, type IndexTable, type InlineRow } from './searchSql';

type TableKey = Extract<SortKey, { table: IndexTable }>;

const SORT_COLUMN: Record<IndexTable, [asc: string, desc: string, cast: string]> = {
  string: ['value', 'value', 'text'],
  token: ['value', 'value', 'text'],
  uri: ['value', 'value', 'text'],
  number: ['value', 'value', 'numeric'],
  quantity: ['value', 'value', 'numeric'],
  // a date sorts by where it starts ascending, by where it ends descending (the latest first)
  date: ['start_at', 'end_at', 'timestamptz'],
  reference: ["coalesce(s.target_type || '/' || s.target_id, s.url)", "coalesce(s.target_type || '/' || s.target_id, s.url)", 'text'],
  position: ['latitude', 'latitude', 'float8'],
};

interface KeySql {
  expr: string;
  cast: string;
  descending: boolean;
  /** Never null (an index row's own column): ordered as the btree is, bounded so an index range applies. */
  notNull?: boolean;
}

/** A sort key's SQL expression on alias r; `driver`: r is the key's own index row. */
function sortExpr(b: SqlBuilder, key: SortKey, driver: boolean): KeySql {
  if ('column' in key) {
    return { expr: `r.${key.column}`, cast: key.column === 'id' ? 'text' : 'timestamptz', descending: key.descending, notNull: true };
  }
  const [asc, desc, cast] = SORT_COLUMN[key.table];
  const col = key.descending ? desc : asc;
  if (driver) return { expr: col.includes('s.') ? col.replace(/s\./g, 'r.') : `r.${col}`, cast, descending: key.descending, notNull: true };
  const qualified = col.includes('s.') ? col : `s.${col}`;
  // a resource with several values sorts by its least (ascending) or greatest (descending) one
  const expr = `(SELECT ${key.descending ? 'max' : 'min'}(${qualified}) FROM search_${key.table} s
    WHERE s.resource_type = r.resource_type AND s.resource_id = r.id AND s.code = ${b.p(key.code)})`;
  return { expr, cast, descending: key.descending };
}

/**
 * Whether a cursor can stand for a row of this sort: one value per key, each a text its key's cast accepts as
 * PostgreSQL writes it (`p.k0::text`: `2024-01-31 09:00:00+00`, `12.50`). A cursor comes back from the client,
 * which may have forged it: a value the cast refuses would fail the statement.
 */
export function cursorFits(sort: SortKey[], cursor: Cursor): boolean {
  if (cursor.values.length !== sort.length || !TEXT.test(cursor.id)) return false;
  return sort.every((key, i) => {
    const v = cursor.values[i];
    if (v === null) return true;
    const cast = 'column' in key ? (key.column === 'id' ? 'text' : 'timestamptz') : SORT_COLUMN[key.table][2];
    return cast === 'timestamptz' ? isTimestamp(v) : cast === 'numeric' ? NUMERIC.test(v) : TEXT.test(v);
  });
}

/** Text PostgreSQL stores: no NUL (and no unpaired surrogate, which the driver would not send as written). */
const TEXT = /^[^\u0000\p{Surrogate}]*$/u;
const NUMERIC = /^(-?\d{1,1000}(\.\d{1,1000})?|NaN|-?Infinity)$/;
const TIMESTAMP = /^(\d{4,6})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(\.\d{1,6})?([+-](\d\d)(:(\d\d))?(:(\d\d))?)?( BC)?$/;

/** A timestamptz as PostgreSQL writes it (ISO DateStyle), within its range (4713 BC to 294276 AD). */
function isTimestamp(v: string): boolean {
  if (v === 'infinity' || v === '-infinity') return true;
  const m = TIMESTAMP.exec(v);
  if (!m) return false;
  const [y, month, day, hour, minute, second] = m.slice(1, 7).map(Number);
  const [offsetHours, offsetMinutes, offsetSeconds] = [m[9], m[11], m[13]].map((x) => Number(x ?? 0));
  const bc = m[14] !== undefined;
  // the proleptic Gregorian calendar; 1 BC is the astronomical year 0, a leap year
  const year = bc ? 1 - y : y;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1];
  return (
    y >= 1 && (bc ? y <= 4713 : y <= 294275) && days !== undefined && day >= 1 && day <= days &&
    hour <= 23 && minute <= 59 && second <= 59 && offsetHours <= 15 && offsetMinutes <= 59 && offsetSeconds <= 59
  );
}

/**
 * "After (or before) the cursor row" in the order (keys..., id), nulls last: an OR of "equal on the first
 * i keys and beyond on key i", which each index range can answer.
 */
function keysetWhere(b: SqlBuilder, keys: KeySql[], cursor: Cursor, backward: boolean): string {
  if (cursor.values.length !== keys.length) throw new RangeError('cursor does not match the sort');
  const alternatives: string[] = [];
  const equal: string[] = [];
  keys.forEach((k, i) => {
    const v = cursor.values[i];
    const val = v === null ? '' : b.p(v, k.cast);
    const beyond = (backward ? k.descending : !k.descending) ? '>' : '<';
    let step: string;
    if (!backward) step = v === null ? 'false' : k.notNull ? `${k.expr} ${beyond} ${val}` : `(${k.expr} ${beyond} ${val} OR ${k.expr} IS NULL)`;
    else step = v === null ? `${k.expr} IS NOT NULL` : `${k.expr} ${beyond} ${val}`;
    if (step !== 'false') alternatives.push([...equal, step].join(' AND '));
    equal.push(v === null ? `${k.expr} IS NULL` : `${k.expr} = ${val}`);
  });
  alternatives.push([...equal, `r.id ${backward ? '<' : '>'} ${b.p(cursor.id)}`].join(' AND '));
  const expanded = `(${alternatives.map((a) => `(${a})`).join(' OR ')})`;
  // implied by the alternatives, but an index range scan needs it spelled out
  const k0 = keys[0];
  const v0 = cursor.values[0];
  if (!k0?.notNull || v0 === null) return expanded;
  return `${k0.expr} ${(backward ? k0.descending : !k0.descending) ? '>=' : '<='} ${b.p(v0, k0.cast)} AND ${expanded}`;
}

/** One statement of a page: rows of `resourceType(s)` meeting `conditions`, after `cursor`, in `sort` order. */
interface PageSpec {
  resourceType?: string;
  resourceTypes?: string[];
  conditions: Condition[];
  sort: SortKey[];
  cursor?: Cursor;
  backward: boolean;
  limit: number;
  /** Read the rows off this (first) sort key's index rows. */
  driver?: TableKey;
  afterId?: string;
}

type ChainCondition = Extract<Condition, { kind: 'chain' }>;

/**
 * The condition a page in id order can be read off (see the file comment), if any: the one string condition,
 * or else the one chain whose targets are themselves read off index rows (`location.near=...`).
 */
function pageFilter(s: PageSpec): { table: IndexTable; code: string; chain?: ChainCondition } | undefined {
  if (s.driver || s.sort.length > 0 || s.resourceType === undefined || readsResourceColumns(s.conditions)) return undefined;
  const strings = s.conditions.filter((c): c is Extract<Condition, { kind: 'string' }> => c.kind === 'string');
  if (strings.length === 1) return { table: 'string', code: strings[0].code };
  const chains = s.conditions.filter((c): c is ChainCondition => c.kind === 'chain');
  if (chains.length === 1 && chains[0].targets.every((t) => hasIndexDriver(t.where))) return { table: 'reference', code: chains[0].code, chain: chains[0] };
  return undefined;
}

export function compilePage(s: PageSpec): { sql: string; params: unknown[] } {
  const b = new SqlBuilder();
  const where: string[] = [];
  let from: string;
  // the filter's rows are flattened into this query: DISTINCT, ORDER BY id and LIMIT at one level let
  // PostgreSQL either sort the matching rows or walk (resource_type, resource_id) in order and stop early
  const filter = pageFilter(s);
  const multiValued = s.driver && !s.driver.single ? s.driver : undefined;
  const rows: InlineRow | undefined = s.driver ?? (filter && { table: filter.table, code: filter.code });
  // conditions on the driving parameter can be tested on its row only when that row is the resource's one value
  // (a chain's row is one of the resource's references: its other conditions on the parameter test any of them)
  const inline = multiValued || filter?.chain ? undefined : rows;
  if (rows) {
    // the parameter's index rows, shaped like `resources` rows (resource_type, id) for the conditions
    from = `${indexRowsAsResources(rows.table, `x.resource_type = ${b.p(s.resourceType)} AND x.code = ${b.p(rows.code)}`)} r`;
  } else {
    from = 'resources r';
    if (s.resourceType !== undefined) where.push(`r.resource_type = ${b.p(s.resourceType)}`);
    else if (s.resourceTypes !== undefined) where.push(`r.resource_type = ANY(${b.p(s.resourceTypes, 'text[]')})`);
    where.push('NOT r.deleted');
  }
  where.push(...compileConditions(b, filter?.chain ? s.conditions.filter((c) => c !== filter.chain) : s.conditions, 'r', inline));
  if (filter?.chain) where.push(chainTargets(b, filter.chain, 'r'));
  if (multiValued) {
    const [asc, desc] = SORT_COLUMN[multiValued.table];
    where.push(extremeRow(b, multiValued.table, multiValued.code, multiValued.descending ? desc : asc, multiValued.descending, 'r'));
  }
  const keys = s.sort.map((k, i) => sortExpr(b, k, i === 0 && !!s.driver));
  if (s.cursor) where.push(keysetWhere(b, keys, s.cursor, s.backward));
  if (s.afterId !== undefined) where.push(`r.id > ${b.p(s.afterId)}`);
  // nulls sort last (first when reading backward); a never-null key takes the btree's own order
  const nulls = (k: KeySql, desc: boolean) => (k.notNull ? (desc ? 'FIRST' : 'LAST') : s.backward ? 'FIRST' : 'LAST');
  const order = (names: string[], id: string) => [
    ...keys.map((k, i) => {
      const desc = k.descending !== s.backward;
      return `${names[i]} ${desc ? 'DESC' : 'ASC'} NULLS ${nulls(k, desc)}`;
    }),
    `${id} ${s.backward ? 'DESC' : 'ASC'}`,
  ];
  const select = keys.map((k, i) => `, ${k.expr} AS k${i}`).join('');
  const inner = `SELECT${filter ? ' DISTINCT' : ''} r.resource_type, r.id${select} FROM ${from}${where.length ? ` WHERE ${where.join(' AND ')}` : ''}
    ORDER BY ${order(keys.map((k) => k.expr), 'r.id').join(', ')} LIMIT ${b.p(s.limit)}`;
  // only the page's rows are read for their content
  const sql = `SELECT c.resource_type, c.id, c.version_id, c.last_updated, c.deleted, c.content${keys.map((_, i) => `, p.k${i}::text AS k${i}`).join('')}
    FROM (${inner}) p JOIN resources c ON c.resource_type = p.resource_type AND c.id = p.id${filter ? ' AND NOT c.deleted' : ''}
    ORDER BY ${order(keys.map((_, i) => `p.k${i}`), 'p.id').join(', ')}`;
  return { sql, params: b.params };
}

/** Conditions that read columns of `resources` other than (resource_type, id). */
function readsResourceColumns(conditions: Condition[]): boolean {
  return conditions.some(
    (c) => c.kind === 'lastUpdated' || (c.kind === 'or' && readsResourceColumns(c.any)) || (c.kind === 'and' && readsResourceColumns(c.all)),
  );
}

/** A top-level condition that needs a value of the parameter: no resource without one can match. */
function requiresValue(conditions: Condition[], key: TableKey): boolean {
  return conditions.some((c) => {
    if (c.kind === 'missing') return !c.missing && c.table === key.table && c.code === key.code;
    if (c.kind === 'values') return c.table === key.table && c.code === key.code;
    const table = c.kind === 'date' ? 'date' : c.kind === 'number' ? c.table : c.kind === 'uri' ? 'uri' : undefined;
    return table === key.table && 'code' in c && c.code === key.code;
  });
}

/**
 * Index tables whose sort column is never null and in index order: a parameter with several rows per resource
 * in one of them drives a sorted search too, reading each resource at its least (greatest) row (`extremeRow`):
 * a search with no other condition, or one whose conditions match so many resources that a page is met soon
 * (`sortDriven`, decided by src/storage/search.ts); a selective condition would be probed on every row of the
 * parameter instead, where the generic plan finds its few matches and sorts those.
 */
export const DRIVING_TABLES: ReadonlySet<IndexTable> = new Set<IndexTable>(['string', 'date', 'number', 'quantity', 'uri']);

export interface Branch {
  spec: (limit: number) => PageSpec;
  /** The branch's sort key values, in the query's key order. */
  keys: (row: (string | null)[]) => (string | null)[];
  /** The branch reads rows without the first key's value (and selects the other keys only). */
  withoutFirstKey?: boolean;
}

/** The statements a page is read from, in order; the next runs only while the page is not full. */
export function searchBranches(s: SearchQuery): Branch[] {
  const sort = s.sort ?? [];
  const backward = !!s.cursor?.backward;
  const base = { resourceType: s.resourceType, resourceTypes: s.resourceTypes, conditions: s.conditions, afterId: s.afterId, backward };
  const first = sort[0];
  const indexDriven =
    first !== undefined &&
    'table' in first &&
    (first.single === true || (DRIVING_TABLES.has(first.table) && (s.conditions.length === 0 || s.sortDriven === true))) &&
    s.resourceType !== undefined &&
    s.afterId === undefined &&
    !readsResourceColumns(s.conditions) &&
    !sort.some((k) => 'column' in k && k.column === 'last_updated');
  if (!indexDriven) return [{ spec: (limit) => ({ ...base, sort, cursor: s.cursor, limit }), keys: (k) => k }];

  const key = first as TableKey;
  const rest = sort.slice(1);
  const inNulls = s.cursor !== undefined && s.cursor.values[0] === null;
  const values: Branch = {
    spec: (limit) => ({ ...base, sort, cursor: inNulls ? undefined : s.cursor, limit, driver: key }),
    keys: (k) => k,
  };
  const missingCondition: Condition = { kind: 'missing', table: key.table, code: key.code, missing: true };
  const nulls: Branch = {
    spec: (limit) => ({
      ...base,
      conditions: [...s.conditions, missingCondition],
      sort: rest,
      cursor: inNulls ? { ...s.cursor!, values: s.cursor!.values.slice(1) } : undefined,
      limit,
    }),
    keys: (k) => [null, ...k],
    withoutFirstKey: true,
  };
  const withNulls = !(key.required || requiresValue(s.conditions, key));
  // forward: values, then the rows without one; backward: the reverse
  if (!backward) return inNulls ? [nulls] : withNulls ? [values, nulls] : [values];
  return inNulls ? [nulls, values] : [values];
}
