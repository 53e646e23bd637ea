/**
 * The SQL that writes a resource's index rows, as data-modifying CTEs appended to the statement that writes
 * the resource itself, so resource, history and index change in one atomic statement. Rows are passed as
 * column arrays and expanded with unnest (one round trip whatever the number of rows).
 */
import type { Resource } from '@medplum/fhirtypes';
import { indexRows, referenceRows, type IndexRows, type ReferenceRow, type ValueRows } from './indexer';

interface TableSpec {
  table: string;
  /** Columns after (resource_type, resource_id), with the SQL array type of each. */
  columns: [name: string, type: string][];
  values: (rows: IndexRows, refs: ReferenceRow[]) => unknown[][];
}

/** The value tables: each row kind of src/storage/indexer.ts and its columns. */
const VALUE_TABLES: { [K in keyof ValueRows]: { table: string; columns: [string, string][]; values: (rows: ValueRows[K]) => unknown[][] } } = {
  token: {
    table: 'search_token',
    columns: [['code', 'text'], ['system', 'text'], ['value', 'text'], ['text', 'text'], ['type_system', 'text'], ['type_code', 'text']],
    values: (token) => [token.map((r) => r.code), token.map((r) => r.system), token.map((r) => r.value), token.map((r) => r.text), token.map((r) => r.typeSystem), token.map((r) => r.typeCode)],
  },
  string: {
    table: 'search_string',
    columns: [['code', 'text'], ['value', 'text'], ['exact', 'text']],
    values: (string) => [string.map((r) => r.code), string.map((r) => r.value), string.map((r) => r.exact)],
  },
  date: {
    table: 'search_date',
    columns: [['code', 'text'], ['start_at', 'timestamptz'], ['end_at', 'timestamptz']],
    values: (date) => [date.map((r) => r.code), date.map((r) => r.start), date.map((r) => r.end)],
  },
  number: {
    table: 'search_number',
    columns: [['code', 'text'], ['value', 'numeric'], ['low', 'numeric'], ['high', 'numeric']],
    values: (number) => [number.map((r) => r.code), number.map((r) => r.value), number.map((r) => r.low), number.map((r) => r.high)],
  },
  quantity: {
    table: 'search_quantity',
    columns: [['code', 'text'], ['system', 'text'], ['unit_code', 'text'], ['unit', 'text'], ['value', 'numeric'], ['low', 'numeric'], ['high', 'numeric']],
    values: (q) => [q.map((r) => r.code), q.map((r) => r.system), q.map((r) => r.unitCode), q.map((r) => r.unit), q.map((r) => r.value), q.map((r) => r.low), q.map((r) => r.high)],
  },
  reference: {
    table: 'search_reference',
    columns: [['code', 'text'], ['target_type', 'text'], ['target_id', 'text'], ['url', 'text'], ['identifier_system', 'text'], ['identifier_value', 'text']],
    values: (x) => [x.map((r) => r.code), x.map((r) => r.targetType), x.map((r) => r.targetId), x.map((r) => r.url), x.map((r) => r.identifierSystem), x.map((r) => r.identifierValue)],
  },
  uri: {
    table: 'search_uri',
    columns: [['code', 'text'], ['value', 'text']],
    values: (uri) => [uri.map((r) => r.code), uri.map((r) => r.value)],
  },
};

const valueKeys = Object.keys(VALUE_TABLES) as (keyof ValueRows)[];

const TABLES: TableSpec[] = [
  ...valueKeys.map((key): TableSpec => {
    const t = VALUE_TABLES[key];
    return { table: t.table, columns: t.columns, values: (rows) => (t.values as (r: unknown) => unknown[][])(rows[key]) };
  }),
  {
    table: 'search_position',
    columns: [['latitude', 'float8'], ['longitude', 'float8']],
    values: ({ position }) => [position.map((r) => r.latitude), position.map((r) => r.longitude)],
  },
  {
    table: 'resource_references',
    columns: [['target_type', 'text'], ['target_id', 'text']],
    values: (_rows, refs) => [refs.map((r) => r.targetType), refs.map((r) => r.targetId)],
  },
  // component values of composite parameters, with the number of the element they came from
  ...valueKeys.map((key): TableSpec => {
    const t = VALUE_TABLES[key];
    return {
      table: t.table,
      columns: [...t.columns, ['element', 'int4']],
      values: (rows) => {
        const composite = rows.composite[key];
        return [...(t.values as (r: unknown) => unknown[][])(composite), composite.map((r) => r.element)];
      },
    };
  }),
];

/** Every index table (for deletes and reindexing). */
export const INDEX_TABLES = [...new Set(TABLES.map((t) => t.table))];

export interface IndexSql {
  /** CTEs to append after `WITH cur AS (...)`; they act only on the resources `cur` returned. */
  ctes: string;
  params: unknown[];
  /** Identifies the shape of `ctes` (which tables get rows), for caching the statement built around it. */
  shape: string;
}

/** CTE text per shape: the same few shapes recur for every resource of a type. */
const cteCache = new Map<string, string>();

/** Each table's column arrays for the rows of the given resources, and which tables got any row. */
function tableValues(resources: Resource[], fhirBaseUrl: string, withOwner: boolean): { params: unknown[]; filled: number[] } {
  const perResource = resources.map((resource) => ({ resource, rows: indexRows(resource, fhirBaseUrl), refs: referenceRows(resource, fhirBaseUrl) }));
  const params: unknown[] = [];
  const filled: number[] = [];
  TABLES.forEach((t, i) => {
    const owners: string[][] = [[], []];
    const columns: unknown[][] = t.columns.map(() => []);
    for (const { resource, rows, refs } of perResource) {
      const values = t.values(rows, refs);
      values.forEach((column, k) => columns[k].push(...column));
      for (let k = 0; k < values[0].length; k++) {
        owners[0].push(resource.resourceType);
        owners[1].push(resource.id as string);
      }
    }
    if (columns[0].length === 0) return;
    filled.push(i);
    params.push(...(withOwner ? owners : []), ...columns);
  });
  return { params, filled };
}

/**
 * CTEs that bring the index rows of one resource to those of `resource` (a new version, or a reindex; none for a
 * delete): see replaceCtes. `$1`/`$2` must be the resource type and id; parameters are numbered from `firstParam`.
 * `previous`, the content of the version being replaced, limits the tables looked at to those either version has
 * rows in (without it, every table). Rows that index definitions since removed left behind in other tables stay
 * until `$reindex`, which passes no `previous`.
 */
export function indexCtes(resource: Resource | undefined, fhirBaseUrl: string, firstParam: number, previous?: Resource, names: ReplaceNames = DEFAULT_NAMES): IndexSql {
  const { params, filled } = resource ? tableValues([resource], fhirBaseUrl, false) : { params: [], filled: [] };
  const tables = previous ? new Set([...filled, ...tableValues([previous], fhirBaseUrl, false).filled].map((i) => TABLES[i].table)) : undefined;
  return indexSql('replace', firstParam, filled, params, tables, names);
}

/**
 * How the replace CTEs name what they act on, for a statement that writes several resources: the CTE that
 * returns the written row (`cur`), the parameters holding its type and id (`$1`, `$2`), and a prefix for their own
 * CTE names.
 */
export interface ReplaceNames {
  cur: string;
  type: string;
  id: string;
  prefix: string;
}

const DEFAULT_NAMES: ReplaceNames = { cur: 'cur', type: '$1', id: '$2', prefix: '' };

/**
 * CTEs that insert the index rows of new resources (first versions, possibly several in one statement):
 * each row carries its resource's type and id, and is written only if `cur` (which must return
 * `resource_type, id`) inserted that resource. Parameters are numbered from `firstParam`.
 */
export function insertIndexCtes(resources: Resource[], fhirBaseUrl: string, firstParam: number): IndexSql {
  const { params, filled } = tableValues(resources, fhirBaseUrl, true);
  return indexSql('insert', firstParam, filled, params);
}

function indexSql(mode: 'replace' | 'insert', firstParam: number, filled: number[], params: unknown[], tables?: Set<string>, names: ReplaceNames = DEFAULT_NAMES): IndexSql {
  const named = names === DEFAULT_NAMES ? '' : `:${names.cur},${names.type},${names.id},${names.prefix}`;
  const shape = `${mode}:${firstParam}:${filled.join(',')}${tables ? `:${[...tables].sort().join(',')}` : ''}${named}`;
  let ctes = cteCache.get(shape);
  if (ctes === undefined) {
    ctes = mode === 'insert' ? insertCtes(firstParam, filled) : replaceCtes(firstParam, filled, tables, names);
    cteCache.set(shape, ctes);
  }
  return { ctes, params, shape };
}

/** `unnest(...)` of one table spec's column arrays, numbered from `next`, with the columns' names. */
function unnestSource(columns: [string, string][], next: number): string {
  const args = columns.map(([, type], k) => `$${next + k}::${type}[]`);
  return `unnest(${args.join(', ')}) AS u(${columns.map(([name]) => name).join(', ')})`;
}

function insertCtes(firstParam: number, filled: number[]): string {
  const parts: string[] = [];
  let next = firstParam;
  TABLES.forEach((t, i) => {
    if (!filled.includes(i)) return;
    // each row brings its resource's type and id as two more arrays
    const columns: [string, string][] = [['resource_type', 'text'], ['resource_id', 'text'], ...t.columns];
    const source = unnestSource(columns, next);
    next += columns.length;
    const own = t.columns.map(([name]) => name);
    parts.push(`ins_${i} AS (INSERT INTO ${t.table} (resource_type, resource_id, ${own.join(', ')})
        SELECT u.resource_type, u.resource_id, ${own.map((n) => `u.${n}`).join(', ')} FROM ${source} JOIN cur ON cur.resource_type = u.resource_type AND cur.id = u.resource_id)`);
  });
  return parts.length ? ', ' + parts.join('\n, ') : '';
}

/**
 * A new version's index rows, written as a difference: rows of the old version that the new one lacks are
 * deleted, rows it adds are inserted, rows both have stay (an update that changes one value writes one row, and
 * one that changes no indexed value writes none). The difference is taken against the rows stored, not recomputed
 * from the old content, so it is right whatever indexed the old version. EXCEPT compares whole rows with NULLs
 * equal, by hashing. Data-modifying CTEs share one snapshot: each sees the rows as they were before the statement.
 */
function replaceCtes(firstParam: number, filled: number[], tables: Set<string> | undefined, names: ReplaceNames): string {
  const { cur, type, id, prefix } = names;
  // Parameter numbers of each filled spec's arrays.
  const first = new Map<number, number>();
  let next = firstParam;
  TABLES.forEach((t, i) => {
    if (!filled.includes(i)) return;
    first.set(i, next);
    next += t.columns.length;
  });
  const parts: string[] = [];
  for (const table of INDEX_TABLES) {
    if (tables && !tables.has(table)) continue;
    const specs = TABLES.map((t, i) => ({ t, i })).filter(({ t }) => t.table === table);
    // A value table holds ordinary rows (element NULL) and composite components (element set): compare with it.
    const hasElement = specs.some(({ t }) => t.columns.some(([name]) => name === 'element'));
    const key = [...specs.find(({ t }) => !t.columns.some(([name]) => name === 'element'))!.t.columns.map(([name]) => name), ...(hasElement ? ['element'] : [])];
    const newRows = specs
      .filter(({ i }) => first.has(i))
      .map(({ t, i }) => {
        const own = t.columns.map(([name]) => name);
        const element = hasElement && !own.includes('element') ? ', NULL::int4' : '';
        return `SELECT ${own.map((n) => `u.${n}`).join(', ')}${element} FROM ${unnestSource(t.columns, first.get(i)!)}`;
      });
    const stored = `SELECT ${key.join(', ')} FROM ${table} WHERE resource_type = ${type} AND resource_id = ${id}`;
    const label = table.replace(/^search_/, '');
    const gone = newRows.length ? `${stored} EXCEPT (${newRows.join(' UNION ALL ')})` : stored;
    parts.push(`${prefix}del_${label} AS (DELETE FROM ${table} t USING (${gone}) AS g
        WHERE t.resource_type = ${type} AND t.resource_id = ${id} AND ${key.map((c) => `t.${c} IS NOT DISTINCT FROM g.${c}`).join(' AND ')}
          AND EXISTS (SELECT 1 FROM ${cur}))`);
    if (newRows.length) {
      parts.push(`${prefix}ins_${label} AS (INSERT INTO ${table} (resource_type, resource_id, ${key.join(', ')})
        SELECT ${type}, ${id}, a.* FROM ((${newRows.join(' UNION ALL ')}) EXCEPT ${stored}) AS a WHERE EXISTS (SELECT 1 FROM ${cur}))`);
    }
  }
  return parts.length ? ', ' + parts.join('\n, ') : '';
}
