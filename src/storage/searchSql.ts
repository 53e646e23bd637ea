/**
 * Compiles storage-level search conditions (src/storage/search.ts) to parameterized SQL over `resources`
 * and the index side tables of migrations/0002_search_index.sql.
 *
 * Every condition on an index table is an EXISTS over rows of that table for the same resource. Each
 * side table leads with (resource_type, code, value...), so PostgreSQL can either drive the query from
 * the most selective side table (turning the EXISTS into a semi-join) or probe it per candidate row
 * through its (resource_type, resource_id) index; the planner picks by statistics.
 * https://hl7.org/fhir/R4/search.html
 */
import type { Condition, DateMatch, NumberMatch, Prefix, ReferenceMatch, TokenMatch, UriMatch } from './search';
import { indexKey } from './values';

/**
 * Subqueries of one statement that PostgreSQL may flatten into a single join search. An EXISTS (or IN) in
 * the WHERE's top-level AND becomes a semi-join, and the planner's work grows far faster than their number:
 * 200 repeated parameters (`name=a&name=b&...`) took 9 s to plan and 20 ms to run. Past this many, a subquery
 * is fenced with `OFFSET 0`, which PostgreSQL never flattens: it is planned on its own and tested as a filter
 * on the rows the others leave. Ordinary searches stay below it (as PostgreSQL's own join_collapse_limit, 8)
 * and keep the planner's full choice.
 */
const FLATTENED_SUBQUERIES = 8;

/** PostgreSQL's wire protocol numbers a statement's bind parameters in 16 bits. */
const MAX_PARAMETERS = 65_535;

/**
 * A statement would need more bind parameters than PostgreSQL takes (the search limits keep a search well
 * below; this is the guard of last resort, answered like them: 400 too-costly).
 */
export class StatementTooLargeError extends Error {
  constructor() {
    super(`The statement would need more than ${MAX_PARAMETERS} parameters`);
    this.name = 'StatementTooLargeError';
  }
}

/** Accumulates the parameters of one statement and hands out unique table aliases. */
export class SqlBuilder {
  readonly params: unknown[] = [];
  private aliases = 0;
  private flattenable = 0;
  private underOr = 0;
  /** Adds a parameter, optionally cast: `$3::timestamptz`. */
  p(value: unknown, cast?: string): string {
    if (this.params.length === MAX_PARAMETERS) throw new StatementTooLargeError();
    this.params.push(value);
    return `$${this.params.length}${cast ? `::${cast}` : ''}`;
  }
  alias(prefix: string): string {
    return `${prefix}${++this.aliases}`;
  }
  /** Ends a subquery: `' OFFSET 0'` once more than FLATTENED_SUBQUERIES could be flattened together. */
  fence(): string {
    if (this.underOr > 0) return '';
    return ++this.flattenable > FLATTENED_SUBQUERIES ? ' OFFSET 0' : '';
  }
  /** Compiles the branches of an OR: PostgreSQL flattens no subquery there, so they are not counted. */
  alternatives<T>(fn: () => T): T {
    this.underOr++;
    try {
      return fn();
    } finally {
      this.underOr--;
    }
  }
}

const TABLES = {
  token: 'search_token',
  string: 'search_string',
  date: 'search_date',
  number: 'search_number',
  quantity: 'search_quantity',
  reference: 'search_reference',
  uri: 'search_uri',
  position: 'search_position',
} as const;
export type IndexTable = keyof typeof TABLES;

/** `EXISTS (rows of table for the resource aliased r [with code] [and where])`. */
function exists(b: SqlBuilder, table: IndexTable, r: string, code: string | undefined, where: (s: string) => string, not = false): string {
  const s = b.alias('s');
  const fence = b.fence();
  const codeSql = code === undefined ? '' : ` AND ${s}.code = ${b.p(code)}`;
  const extra = where(s);
  return `${not ? 'NOT ' : ''}EXISTS (SELECT 1 FROM ${TABLES[table]} ${s} WHERE ${s}.resource_type = ${r}.resource_type
    AND ${s}.resource_id = ${r}.id${codeSql}${extra ? ` AND (${extra})` : ''}${fence})`;
}

/**
 * The index rows of a table shaped like `resources` rows: (resource_type, id) plus the row's own columns. A plain
 * subquery, so PostgreSQL flattens it into the query around it. Index rows exist only for live resources.
 */
export function indexRowsAsResources(table: IndexTable, where = ''): string {
  return `(SELECT x.*, x.resource_id AS id, x.ctid AS row_ctid FROM ${TABLES[table]} x${where ? ` WHERE ${where}` : ''})`;
}

/**
 * On the index row aliased r (from `indexRowsAsResources`): r is its resource's least (greatest, `descending`)
 * row of the parameter by `column`, ties going to the first row, so each resource is read once, at the value
 * it sorts by (https://hl7.org/fhir/R4/search.html#sort: a resource with several values sorts by its lowest
 * one ascending, its highest one descending).
 */
export function extremeRow(b: SqlBuilder, table: IndexTable, code: string, column: string, descending: boolean, r: string): string {
  const beyond = descending ? '>' : '<';
  return exists(b, table, r, code, (s) => `${s}.${column} ${beyond} ${r}.${column} OR (${s}.${column} = ${r}.${column} AND ${s}.ctid < ${r}.row_ctid)`, true);
}

/** `<alias>.code = <code> AND (<match>)`: a side condition tested on one index row. */
function sideMatch(b: SqlBuilder, side: SideCondition, a: string): string {
  const match = side.where(a);
  return `${a}.code = ${b.p(side.code)}${match ? ` AND (${match})` : ''}`;
}

const or = (parts: string[]) => (parts.length === 0 ? 'false' : parts.length === 1 ? parts[0] : `(${parts.join(' OR ')})`);
const and = (parts: string[]) => (parts.length === 0 ? 'true' : parts.length === 1 ? parts[0] : `(${parts.join(' AND ')})`);

/**
 * A row of one index table that `compileConditions` may test directly instead of through EXISTS: when the
 * search is driven by the rows of a single-valued parameter (src/storage/search.ts), the alias `r` *is* that
 * parameter's index row.
 */
export interface InlineRow {
  table: IndexTable;
  code: string;
}

export function compileConditions(b: SqlBuilder, conditions: Condition[], r: string, inline?: InlineRow): string[] {
  return conditions.map((c) => {
    const side = inline ? sideCondition(b, c) : undefined;
    if (side && inline && side.table === inline.table && side.code === inline.code) {
      if (c.kind === 'missing') return c.missing ? 'false' : 'true';
      if (!side.not) return `(${side.where(r) || 'true'})`;
    }
    return compileCondition(b, c, r);
  });
}

/** A condition on one parameter's index rows: "some row of `table` with `code` meets `where`" (or none, if `not`). */
interface SideCondition {
  table: IndexTable;
  code: string;
  where: (s: string) => string;
  not?: boolean;
}

function sideCondition(b: SqlBuilder, c: Condition): SideCondition | undefined {
  switch (c.kind) {
    case 'token':
      return { table: 'token', code: c.code, where: (s) => tokenAlternatives(b, s, c.any), not: c.not };
    case 'string':
      return { table: 'string', code: c.code, where: (s) => or(c.any.map((m) => stringMatch(b, s, m.match, m.value))) };
    case 'date':
      return { table: 'date', code: c.code, where: (s) => or(c.any.map((m) => dateMatch(b, `${s}.start_at`, `${s}.end_at`, m))) };
    case 'number':
      return { table: c.table, code: c.code, where: (s) => or(c.any.map((m) => numberMatch(b, s, m))) };
    case 'uri':
      return { table: 'uri', code: c.code, where: (s) => or(c.any.map((m) => uriMatch(b, s, m))) };
    case 'refValue':
      return { table: 'reference', code: c.code, where: (s) => referenceAlternatives(b, s, c.any), not: c.not };
    case 'missing':
      return { table: c.table, code: c.code, where: () => '', not: c.missing };
    case 'values': {
      // one row meets every condition: the parameter has a single index row per resource
      const parts = c.all.map((x) => sideCondition(b, x)).filter((x): x is SideCondition => !!x && !x.not);
      return { table: c.table, code: c.code, where: (s) => and(parts.map((x) => x.where(s) || 'true')) };
    }
    default:
      return undefined;
  }
}

export function compileCondition(b: SqlBuilder, c: Condition, r: string): string {
  switch (c.kind) {
    case 'none':
      return 'false';
    case 'or':
      return b.alternatives(() => or(c.any.map((x) => compileCondition(b, x, r))));
    case 'and':
      return and(c.all.map((x) => compileCondition(b, x, r)));
    case 'type':
      return `${r}.resource_type = ANY(${b.p(c.types, 'text[]')})`;
    case 'id':
      return `${c.not ? 'NOT ' : ''}(${r}.id = ANY(${b.p(c.ids, 'text[]')}))`;
    case 'lastUpdated':
      return `${r}.last_updated ${c.op} ${b.p(c.value, 'timestamptz')}`;
    case 'reference':
      // The shape the access module generates: any of `codes` points at any of `targets`.
      return exists(
        b,
        'reference',
        r,
        undefined,
        (s) => `${s}.code = ANY(${b.p(c.codes, 'text[]')}) AND (${s}.target_type, ${s}.target_id) IN
          (SELECT * FROM unnest(${b.p(c.targets.map((t) => t.type), 'text[]')}, ${b.p(c.targets.map((t) => t.id), 'text[]')}))`,
        c.not,
      );
    case 'near':
      return exists(b, 'position', r, undefined, (s) => nearMatch(b, s, c.latitude, c.longitude, c.km));
    case 'chain':
      return chain(b, c, r);
    case 'composite':
      return composite(b, c, r);
    case 'has':
      return has(b, c, r);
    case 'missing':
      return exists(b, c.table, r, c.table === 'position' ? undefined : c.code, () => '', c.missing);
    case 'consent':
      return consentOpens(b, c, r);
    default: {
      const side = sideCondition(b, c)!;
      return exists(b, side.table, r, side.code, side.where, side.not);
    }
  }
}

/**
 * A comma-separated list of values (https://hl7.org/fhir/R4/search.html#combining) of the same shape, e.g. 500
 * `system|code` pairs of one system, is one `value = ANY(array)` per shape: one index condition whose row count
 * PostgreSQL can estimate, instead of an OR of hundreds of branches (slower to plan, and estimated so poorly that
 * the planner walks every resource in id order testing each branch).
 */
function tokenAlternatives(b: SqlBuilder, s: string, any: TokenMatch[]): string {
  const lists = new Map<string, { system: TokenMatch['system']; values: string[] }>();
  const single: TokenMatch[] = [];
  for (const t of any) {
    if (t.value === undefined || t.text !== undefined || t.typeSystem !== undefined || t.typeCode !== undefined) single.push(t);
    else {
      const key = t.system === undefined ? 'any' : t.system === null ? 'none' : `=${t.system}`;
      const list = lists.get(key) ?? lists.set(key, { system: t.system, values: [] }).get(key)!;
      list.values.push(t.value);
    }
  }
  const parts = single.map((t) => tokenMatch(b, s, t));
  for (const { system, values } of lists.values()) {
    if (values.length === 1) parts.push(tokenMatch(b, s, { system, value: values[0] }));
    else parts.push(and([...systemMatch(b, s, system), `${s}.value = ANY(${b.p(values.map(indexKey), 'text[]')})`]));
  }
  return or(parts);
}

/** `system|` (that system), `|code` (no system) or `code` (any system): https://hl7.org/fhir/R4/search.html#token */
function systemMatch(b: SqlBuilder, s: string, system: TokenMatch['system']): string[] {
  if (system === null) return [`${s}.system IS NULL`];
  return system === undefined ? [] : [`${s}.system = ${b.p(indexKey(system))}`];
}

function tokenMatch(b: SqlBuilder, s: string, t: TokenMatch): string {
  const parts: string[] = systemMatch(b, s, t.system);
  if (t.value !== undefined) parts.push(`${s}.value = ${b.p(indexKey(t.value))}`);
  if (t.typeSystem !== undefined) parts.push(`${s}.type_system = ${b.p(t.typeSystem)}`);
  if (t.typeCode !== undefined) parts.push(`${s}.type_code = ${b.p(t.typeCode)}`);
  if (t.text !== undefined) {
    // :text matches the start of the text or of any word in it (https://hl7.org/fhir/R4/search.html#modifiers)
    const v = escapeLike(t.text);
    parts.push(`(${s}.text LIKE ${b.p(v + '%')} OR ${s}.text LIKE ${b.p('% ' + v + '%')})`);
  }
  return and(parts);
}

export const escapeLike = (v: string) => v.replace(/[\\%_]/g, (m) => '\\' + m);

function stringMatch(b: SqlBuilder, s: string, match: 'start' | 'exact' | 'contains', value: string): string {
  if (match === 'exact') return `${s}.exact = ${b.p(value)}`;
  // value is already normalized (lower-cased, accent-free) by the caller, as the indexer stores it
  if (match === 'contains') return `${s}.value LIKE ${b.p('%' + escapeLike(value) + '%')}`;
  return `${s}.value LIKE ${b.p(escapeLike(value) + '%')}`;
}

/**
 * Date prefixes on ranges (https://hl7.org/fhir/R4/search.html#prefix): the target value covers [vs, ve), the
 * search value [ps, pe), both end-exclusive. Where the predicate is an OR, a redundant sargable bound is added so
 * an index range on start_at or end_at applies.
 */
export function dateMatch(b: SqlBuilder, vs: string, ve: string, m: DateMatch): string {
  // parameters are added on first use: an unused one would have no type PostgreSQL can infer
  let start: string | undefined;
  let end: string | undefined;
  const ps = () => (start ??= b.p(m.start, 'timestamptz'));
  const pe = () => (end ??= b.p(m.end, 'timestamptz'));
  switch (m.prefix) {
    case 'eq':
      return `(${vs} >= ${ps()} AND ${ve} <= ${pe()})`;
    case 'ne':
      return `NOT (${vs} >= ${ps()} AND ${ve} <= ${pe()})`;
    case 'gt':
      return `${ve} > ${pe()}`;
    case 'lt':
      return `${vs} < ${ps()}`;
    case 'ge':
      return `(${ve} > ${ps()} AND (${ve} > ${pe()} OR ${vs} >= ${ps()}))`;
    case 'le':
      return `(${vs} < ${pe()} AND (${vs} < ${ps()} OR ${ve} <= ${pe()}))`;
    case 'sa':
      return `${vs} >= ${pe()}`;
    case 'eb':
      return `${ve} <= ${ps()}`;
    case 'ap':
      // the caller widened [start, end) by the approximation margin
      return `(${vs} < ${pe()} AND ${ve} > ${ps()})`;
  }
}

/**
 * Number and quantity prefixes (https://hl7.org/fhir/R4/search.html#number): `eq` matches stored values within
 * the search value's implicit precision range (100 -> [99.5, 100.5)), computed in SQL from the decimal's scale
 * so no binary floating point creeps in.
 */
function numberMatch(b: SqlBuilder, s: string, m: NumberMatch): string {
  const v = b.p(m.value, 'numeric');
  const half = `(power(10::numeric, -scale(${v})) / 2)`;
  const cmp: Record<Prefix, string> = {
    eq: `(${s}.value >= ${v} - ${half} AND ${s}.value < ${v} + ${half})`,
    ne: `NOT (${s}.value >= ${v} - ${half} AND ${s}.value < ${v} + ${half})`,
    gt: `${s}.value > ${v}`,
    sa: `${s}.value > ${v}`,
    lt: `${s}.value < ${v}`,
    eb: `${s}.value < ${v}`,
    ge: `${s}.value >= ${v}`,
    le: `${s}.value <= ${v}`,
    // "approximately": within 10% of the search value
    ap: `(${s}.value >= ${v} - abs(${v}) / 10 AND ${s}.value <= ${v} + abs(${v}) / 10)`,
  };
  const parts = [cmp[m.prefix]];
  if (m.system !== undefined) parts.push(`${s}.system = ${b.p(m.system)}`);
  if (m.unit !== undefined) {
    const u = b.p(m.unit);
    parts.push(m.system !== undefined ? `${s}.unit_code = ${u}` : `(${s}.unit_code = ${u} OR ${s}.unit = ${u})`);
  }
  return and(parts);
}

function uriMatch(b: SqlBuilder, s: string, m: UriMatch): string {
  if (m.match === 'below') return `${s}.value LIKE ${b.p(escapeLike(m.value) + '%')}`;
  // :above: the stored value is the search value or one of its path ancestors (computed by the caller)
  if (m.match === 'above') return `${s}.value = ANY(${b.p(m.values.map(indexKey), 'text[]')})`;
  return `${s}.value = ${b.p(indexKey(m.value))}`;
}

/** Like `tokenAlternatives`: the local targets of a list, grouped by their type(s), as `target_id = ANY(array)`. */
function referenceAlternatives(b: SqlBuilder, s: string, any: ReferenceMatch[]): string {
  const lists = new Map<string, { types?: string[]; ids: string[] }>();
  const parts: string[] = [];
  for (const m of any) {
    if ('url' in m || 'identifier' in m) {
      parts.push(referenceMatch(b, s, m));
      continue;
    }
    const key = m.types ? m.types.join(',') : '';
    const list = lists.get(key) ?? lists.set(key, { types: m.types, ids: [] }).get(key)!;
    list.ids.push(m.id);
  }
  for (const { types, ids } of lists.values()) {
    if (ids.length === 1) parts.push(referenceMatch(b, s, { id: ids[0], types }));
    else parts.push(and([`${s}.target_id = ANY(${b.p(ids, 'text[]')})`, ...(types ? [targetTypes(b, s, types)] : [])]));
  }
  return or(parts);
}

const targetTypes = (b: SqlBuilder, s: string, types: string[]) =>
  types.length === 1 ? `${s}.target_type = ${b.p(types[0])}` : `${s}.target_type = ANY(${b.p(types, 'text[]')})`;

function referenceMatch(b: SqlBuilder, s: string, m: ReferenceMatch): string {
  if ('url' in m) {
    // a canonical without a version matches every version of it (https://hl7.org/fhir/R4/search.html#versions)
    return m.anyVersion
      ? `(${s}.url = ${b.p(indexKey(m.url))} OR ${s}.url LIKE ${b.p(escapeLike(m.url) + '|%')})`
      : `${s}.url = ${b.p(indexKey(m.url))}`;
  }
  if ('identifier' in m) {
    const parts: string[] = [];
    if (m.identifier.system === null) parts.push(`${s}.identifier_system IS NULL`);
    else if (m.identifier.system !== undefined) parts.push(`${s}.identifier_system = ${b.p(m.identifier.system)}`);
    if (m.identifier.value !== undefined) parts.push(`${s}.identifier_value = ${b.p(m.identifier.value)}`);
    if (parts.length === 0) parts.push(`${s}.identifier_value IS NOT NULL`);
    return and(parts);
  }
  const parts = [`${s}.target_id = ${b.p(m.id)}`];
  if (m.types) parts.push(targetTypes(b, s, m.types));
  return and(parts);
}

const EARTH_RADIUS_KM = 6371;

/**
 * `near` (https://hl7.org/fhir/R4/location.html#positional): a latitude/longitude bounding box the
 * (latitude, longitude) index answers, then the exact haversine great-circle distance.
 */
function nearMatch(b: SqlBuilder, s: string, lat: number, long: number, km: number): string {
  const dLat = (km / EARTH_RADIUS_KM) * (180 / Math.PI);
  const cosLat = Math.cos((lat * Math.PI) / 180);
  const dLong = cosLat < 1e-9 ? 360 : dLat / cosLat;
  const box = [`${s}.latitude BETWEEN ${b.p(lat - dLat, 'float8')} AND ${b.p(lat + dLat, 'float8')}`];
  // near the antimeridian or a pole the box would wrap: the distance test alone decides there
  if (long - dLong > -180 && long + dLong < 180) box.push(`${s}.longitude BETWEEN ${b.p(long - dLong, 'float8')} AND ${b.p(long + dLong, 'float8')}`);
  return `${box.join(' AND ')} AND ${haversineSql(b, s, lat, long)} <= ${b.p(km, 'float8')}`;
}

export function haversineSql(b: SqlBuilder, s: string, lat: number, long: number): string {
  const la = b.p(lat, 'float8');
  const lo = b.p(long, 'float8');
  return `(2 * ${EARTH_RADIUS_KM} * asin(sqrt(power(sin(radians(${s}.latitude - ${la}) / 2), 2)
    + cos(radians(${la})) * cos(radians(${s}.latitude)) * power(sin(radians(${s}.longitude - ${lo}) / 2), 2))))`;
}

/**
 * Chaining (https://hl7.org/fhir/R4/search.html#chaining): the resource references, through `code`, a current
 * resource of one of the target types that meets that type's conditions.
 */
function chain(b: SqlBuilder, c: Extract<Condition, { kind: 'chain' }>, r: string): string {
  const s = b.alias('c');
  const fence = b.fence();
  return `EXISTS (SELECT 1 FROM search_reference ${s} WHERE ${s}.resource_type = ${r}.resource_type AND ${s}.resource_id = ${r}.id
    AND ${s}.code = ${b.p(c.code)} AND ${chainTargets(b, c, s)}${fence})`;
}

type ChainTarget = Extract<Condition, { kind: 'chain' }>['targets'][number];

/** The reference row aliased s points at a target of the chain (its code is the caller's to test). */
export function chainTargets(b: SqlBuilder, c: Extract<Condition, { kind: 'chain' }>, s: string): string {
  const target = (x: ChainTarget) => chainTarget(b, x, s);
  return c.targets.length === 1 ? target(c.targets[0]) : b.alternatives(() => or(c.targets.map(target)));
}

function chainTarget(b: SqlBuilder, target: ChainTarget, s: string): string {
  const t = b.alias('t');
  const fence = b.fence();
  const types = target.types.length === 1 ? `= ${b.p(target.types[0])}` : `= ANY(${b.p(target.types, 'text[]')})`;
  const driver = indexDriver(b, target.where, t);
  if (driver) {
    // the targets are read off the index rows of one of their conditions: index rows exist only for live
    // resources, so no probe of `resources` is needed (t is that index row, exposing its resource as id)
    const rest = target.where.filter((x) => x !== driver.condition);
    const where = [`${t}.resource_type ${types}`, driver.where, ...compileConditions(b, rest, t)];
    return `(${s}.target_type, ${s}.target_id) IN (SELECT ${t}.resource_type, ${t}.id
      FROM ${indexRowsAsResources(driver.table)} ${t} WHERE ${where.join(' AND ')}${fence})`;
  }
  const where = [`${t}.resource_type ${types}`, `NOT ${t}.deleted`, ...compileConditions(b, target.where, t)];
  return `(${s}.target_type, ${s}.target_id) IN (SELECT ${t}.resource_type, ${t}.id FROM resources ${t} WHERE ${where.join(' AND ')}${fence})`;
}

/**
 * Whether `indexDriver` finds a condition among these to read the resources meeting them off its index rows: a
 * chain with such targets points at few, known rows (`location.near=...`, `subject.identifier=...`).
 */
export function hasIndexDriver(conditions: Condition[]): boolean {
  return indexDriver(new SqlBuilder(), conditions, 't') !== undefined;
}

/**
 * A composite value: a row of each component's table, all from the same element of the same resource
 * (https://hl7.org/fhir/R4/search.html#composite).
 */
function composite(b: SqlBuilder, c: Extract<Condition, { kind: 'composite' }>, r: string): string {
  const sides = c.parts.map((part) => sideCondition(b, part));
  if (sides.length === 0 || sides.some((x) => x === undefined || x.not)) throw new RangeError('composite parts must be positive value conditions');
  const aliases = sides.map(() => b.alias('k'));
  const fence = b.fence();
  const [first, ...rest] = sides as SideCondition[];
  const joins = rest.map((side, i) => {
    const a = aliases[i + 1];
    return `JOIN ${TABLES[side.table]} ${a} ON ${a}.resource_type = ${aliases[0]}.resource_type AND ${a}.resource_id = ${aliases[0]}.resource_id
      AND ${a}.element = ${aliases[0]}.element AND ${sideMatch(b, side, a)}`;
  });
  return `EXISTS (SELECT 1 FROM ${TABLES[first.table]} ${aliases[0]} ${joins.join(' ')}
    WHERE ${aliases[0]}.resource_type = ${r}.resource_type AND ${aliases[0]}.resource_id = ${r}.id AND ${sideMatch(b, first, aliases[0])}${fence})`;
}

/**
 * A condition whose index rows can stand for the resources meeting it (a positive match on one parameter, or
 * `near`), with its test on such a row aliased t. Conditions on `resources` columns rule it out.
 */
function indexDriver(b: SqlBuilder, conditions: Condition[], t: string): { condition: Condition; table: IndexTable; where: string } | undefined {
  if (conditions.some((c) => c.kind === 'lastUpdated' || c.kind === 'or' || c.kind === 'and')) return undefined;
  for (const c of conditions) {
    if (c.kind === 'near') return { condition: c, table: 'position', where: nearMatch(b, t, c.latitude, c.longitude, c.km) };
    if (c.kind === 'missing' || c.kind === 'values') continue;
    const side = sideCondition(b, c);
    if (side && !side.not) return { condition: c, table: side.table, where: sideMatch(b, side, t) };
  }
  return undefined;
}

/**
 * Reverse chaining (https://hl7.org/fhir/R4/search.html#has): a current resource of `type` meeting `where`
 * references this one through `code`.
 */
function has(b: SqlBuilder, c: Extract<Condition, { kind: 'has' }>, r: string): string {
  const s = b.alias('h');
  const t = b.alias('t');
  const fence = b.fence();
  const where = compileConditions(b, c.where, t);
  return `EXISTS (SELECT 1 FROM search_reference ${s} JOIN resources ${t} ON ${t}.resource_type = ${s}.resource_type AND ${t}.id = ${s}.resource_id
    WHERE ${s}.target_type = ${r}.resource_type AND ${s}.target_id = ${r}.id AND ${s}.resource_type = ${b.p(c.type)}
    AND ${s}.code = ${b.p(c.code)} AND NOT ${t}.deleted${where.length ? ' AND ' + where.join(' AND ') : ''}${fence})`;
}

/**
 * Sharing by Consent (migrations/0011_consent.sql; src/access/consent.ts): the document's subject is a patient with a
 * permit row of consent_grant naming the practitioner, in force at `at`, that covers the document, and no deny row
 * of the same Consent, as deep or deeper, in force and covering it, overrides it
 * (https://hl7.org/fhir/R4/consent.html#provision). Driven per document from its subject: one index probe of
 * consent_grant by (practitioner, patient).
 */
function consentOpens(b: SqlBuilder, c: Extract<Condition, { kind: 'consent' }>, r: string): string {
  const [s, g, d] = [b.alias('s'), b.alias('g'), b.alias('g')];
  const who = b.p(c.practitioner);
  const at = b.p(c.at, 'timestamptz');
  const inForce = (x: string) => `${x}.period_start <= ${at} AND ${x}.period_end > ${at}`;
  return `(${r}.resource_type = 'DocumentReference' AND EXISTS (SELECT 1 FROM search_reference ${s}
    JOIN consent_grant ${g} ON ${g}.practitioner_id = ${who} AND ${g}.patient_id = ${s}.target_id
    WHERE ${s}.resource_type = ${r}.resource_type AND ${s}.resource_id = ${r}.id AND ${s}.code = 'subject' AND ${s}.target_type = 'Patient'
      AND ${g}.permit AND ${inForce(g)} AND ${grantCovers(b, g, r)}
      AND NOT EXISTS (SELECT 1 FROM consent_grant ${d} WHERE ${d}.consent_id = ${g}.consent_id AND ${d}.practitioner_id = ${who}
        AND NOT ${d}.permit AND ${d}.depth >= ${g}.depth AND ${inForce(d)} AND ${grantCovers(b, d, r)})))`;
}

/** The consent_grant row aliased g covers the document aliased r (of its patient): named, dated and categorized as it says. */
function grantCovers(b: SqlBuilder, g: string, r: string): string {
  const [x, l, t] = [b.alias('s'), b.alias('l'), b.alias('s')];
  const mine = (a: string) => `${a}.resource_type = ${r}.resource_type AND ${a}.resource_id = ${r}.id`;
  return `(${g}.documents IS NULL OR ${r}.id = ANY(${g}.documents))
    AND (${g}.data_start IS NULL OR EXISTS (SELECT 1 FROM search_date ${x} WHERE ${mine(x)} AND ${x}.code = 'date'
      AND ${x}.start_at >= ${g}.data_start AND ${x}.end_at <= ${g}.data_end))
    AND (${g}.categories IS NULL OR NOT EXISTS (SELECT 1 FROM jsonb_array_elements(${g}.categories) ${l} WHERE NOT EXISTS
      (SELECT 1 FROM search_token ${t} WHERE ${mine(t)} AND ${t}.code = 'category' AND ${l}.value ? (${t}.system || '|' || ${t}.value))))`;
}
