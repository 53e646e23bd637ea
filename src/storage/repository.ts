/**
 * Resource rows: current versions, history, and their index rows. Plain data access with parameterized
 * SQL only; FHIR semantics (versions, conditions, outcomes) live in src/fhir. Every function takes the
 * Queryable to run on, so a caller composes several of them into one transaction.
 */
import { createHash } from 'node:crypto';
import type { Resource } from '@medplum/fhirtypes';
import type { Queryable } from './database';
import { indexCtes, insertIndexCtes } from './indexWrite';
import type { Condition } from './search';
import { compileConditions, SqlBuilder } from './searchSql';

export interface StoredVersion {
  resourceType: string;
  id: string;
  versionId: number;
  lastUpdated: string;
  deleted: boolean;
  /** Absent for a tombstone. */
  resource?: Resource;
  /** HTTP method that produced the version (history only). */
  method?: string;
}

export interface Row {
  resource_type: string;
  id: string;
  version_id: string | number;
  last_updated: Date | string;
  deleted: boolean;
  content: Resource | string | null;
  method?: string;
  seq?: string | number;
}

export function toVersion(row: Row): StoredVersion {
  const content = typeof row.content === 'string' ? (JSON.parse(row.content) as Resource) : row.content;
  return {
    resourceType: row.resource_type,
    id: row.id,
    versionId: Number(row.version_id),
    lastUpdated: new Date(row.last_updated).toISOString(),
    deleted: row.deleted,
    resource: content ?? undefined,
    method: row.method,
  };
}

export const COLUMNS = 'resource_type, id, version_id, last_updated, deleted, content';

/**
 * A prepared-statement name derived from the SQL text: the write statement's shape depends on which index
 * tables get rows, and each shape is planned once per connection.
 */
function statementName(prefix: string, sql: string): string {
  return `${prefix}_${createHash('sha1').update(sql).digest('hex').slice(0, 16)}`;
}

export async function readCurrent(
  q: Queryable,
  resourceType: string,
  id: string,
  opts: { forUpdate?: boolean } = {},
): Promise<StoredVersion | undefined> {
  const sql = `SELECT ${COLUMNS} FROM resources WHERE resource_type = $1 AND id = $2${opts.forUpdate ? ' FOR UPDATE' : ''}`;
  const r = await q.query<Row>(sql, [resourceType, id], opts.forUpdate ? 'read_current_for_update' : 'read_current');
  return r.rows[0] ? toVersion(r.rows[0]) : undefined;
}

/**
 * The current, live row of (type, id) if it meets `conditions` (an access rule's SQL, src/access/visible.ts):
 * a row outside them is not told apart from a missing one. `forUpdate` locks the row it returns.
 */
export async function readCurrentWhere(
  q: Queryable,
  resourceType: string,
  id: string,
  conditions: Condition[],
  opts: { forUpdate?: boolean } = {},
): Promise<StoredVersion | undefined> {
  const b = new SqlBuilder();
  const where = [`r.resource_type = ${b.p(resourceType)}`, `r.id = ${b.p(id)}`, 'NOT r.deleted', ...compileConditions(b, conditions, 'r')];
  const sql = `SELECT ${COLUMNS} FROM resources r WHERE ${where.join(' AND ')}${opts.forUpdate ? ' FOR UPDATE OF r' : ''}`;
  // One caller's conditions have one shape (their compartment): planned once per connection.
  const r = await q.query<Row>(sql, b.params, statementName('read_where', sql));
  return r.rows[0] ? toVersion(r.rows[0]) : undefined;
}

/** The newest version of (type, id) that has content (what a tombstone deleted), if any. */
export async function lastLiveVersion(q: Queryable, resourceType: string, id: string): Promise<StoredVersion | undefined> {
  const r = await q.query<Row>(
    `SELECT ${COLUMNS} FROM resource_history WHERE resource_type = $1 AND id = $2 AND NOT deleted ORDER BY version_id DESC LIMIT 1`,
    [resourceType, id],
  );
  return r.rows[0] ? toVersion(r.rows[0]) : undefined;
}

/** Ids among `ids` of current, live resources of the type meeting `conditions`. */
export async function idsWhere(q: Queryable, resourceType: string, ids: string[], conditions: Condition[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const b = new SqlBuilder();
  const where = [`r.resource_type = ${b.p(resourceType)}`, `r.id = ANY(${b.p(ids, 'text[]')})`, 'NOT r.deleted', ...compileConditions(b, conditions, 'r')];
  const r = await q.query<{ id: string }>(`SELECT r.id FROM resources r WHERE ${where.join(' AND ')}`, b.params);
  return new Set(r.rows.map((row) => row.id));
}

/** "Type/id" of the live resources among `targets`, whatever their types, in one statement. */
export async function existingTargets(q: Queryable, targets: { type: string; id: string }[]): Promise<Set<string>> {
  if (targets.length === 0) return new Set();
  const r = await q.query<{ resource_type: string; id: string }>(
    `SELECT r.resource_type, r.id FROM resources r JOIN unnest($1::text[], $2::text[]) AS t(resource_type, id)
        ON r.resource_type = t.resource_type AND r.id = t.id
      WHERE NOT r.deleted`,
    [targets.map((t) => t.type), targets.map((t) => t.id)],
    'existing_targets',
  );
  return new Set(r.rows.map((row) => `${row.resource_type}/${row.id}`));
}

/**
 * In one statement: the current row of (type, id); the current, live resource its element
 * `follow[0]` (a Reference, e.g. a Slot's `schedule`) names, and those that resource's element `follow[1]` (a
 * Reference or an array of them, e.g. the Schedule's `actor`) names; and whether `exist` is a current, live
 * resource. A workflow that needs a resource, what it belongs to and the other target of the write it guards reads
 * them in one round trip. A reference is taken as its last two path segments (`.../Type/id`): the caller checks
 * that a reference is local before trusting what it names. Only scalar parameters and primary-key lookups:
 * PostgreSQL keeps one generic plan for the statement.
 */
export async function readWithReferenced(
  q: Queryable,
  resourceType: string,
  id: string,
  follow: [string, string],
  exist?: { type: string; id: string },
): Promise<{ current?: StoredVersion; followed: StoredVersion[]; existing: Set<string> }> {
  const r = await q.query<Row & { part: string }>(
    `WITH main AS (SELECT ${COLUMNS} FROM resources WHERE resource_type = $1 AND id = $2),
     first AS (SELECT r.resource_type, r.id, r.version_id, r.last_updated, r.deleted, r.content
                 FROM main m, LATERAL (SELECT m.content -> $3 ->> 'reference' AS ref) AS f
                 JOIN resources r ON r.resource_type = split_part(f.ref, '/', -2) AND r.id = split_part(f.ref, '/', -1)
                WHERE NOT r.deleted)
     SELECT 'main' AS part, ${COLUMNS} FROM main
     UNION ALL
     SELECT 'followed', ${COLUMNS} FROM first
     UNION ALL
     SELECT 'followed', r.resource_type, r.id, r.version_id, r.last_updated, r.deleted, r.content
       FROM first f,
            jsonb_array_elements(CASE jsonb_typeof(f.content -> $4) WHEN 'array' THEN f.content -> $4 WHEN 'object' THEN jsonb_build_array(f.content -> $4) ELSE '[]'::jsonb END) AS e,
            -- LIMIT 1 keeps the lookup a subquery: one primary-key probe per element (joined, it was a hash join over the table)
            LATERAL (SELECT ${COLUMNS} FROM resources WHERE resource_type = split_part(e ->> 'reference', '/', -2) AND id = split_part(e ->> 'reference', '/', -1) AND NOT deleted LIMIT 1) AS r
     UNION ALL
     SELECT 'exists', resource_type, id, version_id, last_updated, deleted, NULL FROM resources
      WHERE resource_type = $5 AND id = $6 AND NOT deleted`,
    [resourceType, id, follow[0], follow[1], exist?.type ?? null, exist?.id ?? null],
    'read_with_referenced',
  );
  const main = r.rows.find((row) => row.part === 'main');
  return {
    current: main ? toVersion(main) : undefined,
    followed: r.rows.filter((row) => row.part === 'followed').map(toVersion),
    existing: new Set(r.rows.filter((row) => row.part === 'exists').map((row) => `${row.resource_type}/${row.id}`)),
  };
}

export async function readVersion(
  q: Queryable,
  resourceType: string,
  id: string,
  versionId: number,
): Promise<StoredVersion | undefined> {
  const r = await q.query<Row>(
    `SELECT ${COLUMNS}, method FROM resource_history WHERE resource_type = $1 AND id = $2 AND version_id = $3`,
    [resourceType, id, versionId],
  );
  return r.rows[0] ? toVersion(r.rows[0]) : undefined;
}

export interface NewVersion {
  resourceType: string;
  id: string;
  versionId: number;
  lastUpdated: string;
  method: 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Absent for a delete. */
  resource?: Resource;
}

/**
 * Writes a version in one SQL statement (atomic on its own, so a plain create needs no explicit
 * transaction): the current row, its history row and its index rows. Version 1 inserts; a later version
 * updates only if the current row is still the version before it (optimistic concurrency). `previous`: the
 * content of that version, when the caller has it (fewer index tables to look at: see indexCtes).
 * Returns false when nothing was written: a concurrent writer created the id or moved the version first.
 */
export async function writeVersion(q: Queryable, v: NewVersion, fhirBaseUrl: string, previous?: Resource): Promise<boolean> {
  if (v.versionId === 1) return (await insertVersions(q, [v], fhirBaseUrl))[0];
  const index = indexCtes(v.resource, fhirBaseUrl, 8, previous);
  const statement = cachedStatement(`update/${index.shape}`, () => `WITH cur AS (
       UPDATE resources SET version_id = $3, last_updated = $4, deleted = $5, content = $6::jsonb
       WHERE resource_type = $1 AND id = $2 AND version_id = $3::bigint - 1 RETURNING id, content)
     , hist AS (INSERT INTO resource_history (${COLUMNS}, method) SELECT $1, $2, $3, $4, $5, cur.content, $7 FROM cur)
     ${index.ctes}
     SELECT count(*)::int AS n FROM cur`);
  const r = await q.query<{ n: number }>(
    statement.sql,
    [v.resourceType, v.id, v.versionId, v.lastUpdated, v.resource === undefined, v.resource ?? null, v.method, ...index.params],
    statement.name,
  );
  return Number(r.rows[0]?.n) === 1;
}

/**
 * Inserts first versions (each with a resource) in one SQL statement: current rows, history rows and index
 * rows, for one resource or for several written together (src/storage/insertBatcher.ts). An id that already
 * exists is skipped, with its history and index rows. Returns, per version, whether it was written.
 */
export async function insertVersions(q: Queryable, versions: NewVersion[], fhirBaseUrl: string): Promise<boolean[]> {
  const resources = versions.map((v) => {
    if (v.versionId !== 1 || !v.resource) throw new Error(`insertVersions writes first versions of resources, not ${v.resourceType}/${v.id}/_history/${v.versionId}`);
    return v.resource;
  });
  const index = insertIndexCtes(resources, fhirBaseUrl, 6);
  // the history row takes the content back from `cur`: the JSON is parsed once
  const statement = cachedStatement(`insert/${index.shape}`, () => `WITH input AS (
       SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[]) AS i(resource_type, id, last_updated, content, method))
     , cur AS (
       INSERT INTO resources (${COLUMNS}) SELECT resource_type, id, 1, last_updated, false, content::jsonb FROM input
       ON CONFLICT (resource_type, id) DO NOTHING RETURNING resource_type, id, last_updated, content)
     , hist AS (
       INSERT INTO resource_history (${COLUMNS}, method)
       SELECT cur.resource_type, cur.id, 1, cur.last_updated, false, cur.content, input.method FROM cur JOIN input USING (resource_type, id))
     ${index.ctes}
     SELECT resource_type, id FROM cur`);
  const r = await q.query<{ resource_type: string; id: string }>(
    statement.sql,
    [
      versions.map((v) => v.resourceType),
      versions.map((v) => v.id),
      versions.map((v) => v.lastUpdated),
      resources.map((resource) => JSON.stringify(resource)),
      versions.map((v) => v.method),
      ...index.params,
    ],
    statement.name,
  );
  const written = new Set(r.rows.map((row) => `${row.resource_type}/${row.id}`));
  return versions.map((v) => written.has(`${v.resourceType}/${v.id}`));
}

/** Write statements per shape (insert or update, which index tables get rows), built and named once. */
const statements = new Map<string, { sql: string; name: string }>();

export function cachedStatement(key: string, build: () => string): { sql: string; name: string } {
  let statement = statements.get(key);
  if (!statement) {
    const sql = build();
    statement = { sql, name: statementName('write', sql) };
    statements.set(key, statement);
  }
  return statement;
}

/** Rewrites the index rows of current resources (after SearchParameters changed). Returns how many. */
export async function reindex(q: Queryable, resources: Resource[], fhirBaseUrl: string): Promise<number> {
  let n = 0;
  for (const resource of resources) {
    const index = indexCtes(resource, fhirBaseUrl, 3);
    const r = await q.query<{ n: number }>(
      `WITH cur AS (SELECT id FROM resources WHERE resource_type = $1 AND id = $2 AND NOT deleted)
       ${index.ctes}
       SELECT count(*)::int AS n FROM cur`,
      [resource.resourceType, resource.id, ...index.params],
    );
    n += Number(r.rows[0]?.n);
  }
  return n;
}

/** One page of current resources in id order (keyset), for reindexing. */
export async function currentPage(q: Queryable, resourceType: string, afterId: string, limit: number): Promise<Resource[]> {
  const r = await q.query<Row>(
    `SELECT ${COLUMNS} FROM resources WHERE resource_type = $1 AND id > $2 AND NOT deleted ORDER BY id LIMIT $3`,
    [resourceType, afterId, limit],
  );
  return r.rows.map((row) => ({ ...(toVersion(row).resource as Resource), id: row.id }));
}

/** Current resources (other than the target itself) that reference the target, up to limit ("Type/id"). */
export async function referrers(q: Queryable, resourceType: string, id: string, limit = 5): Promise<string[]> {
  const r = await q.query<{ resource_type: string; resource_id: string }>(
    `SELECT DISTINCT resource_type, resource_id FROM resource_references
     WHERE target_type = $1 AND target_id = $2 AND NOT (resource_type = $1 AND resource_id = $2)
     LIMIT $3`,
    [resourceType, id, limit],
  );
  return r.rows.map((row) => `${row.resource_type}/${row.resource_id}`);
}

/** Serializes conditional writes on the same criteria across servers (transaction-scoped advisory lock). */
export async function lockCriteria(q: Queryable, key: string): Promise<void> {
  await q.query('SELECT pg_advisory_xact_lock(hashtext($1))', [key]);
}

/** Ids of current resources of a type that reference one of the targets through one of the parameters. */
export async function referencingIds(
  q: Queryable,
  resourceType: string,
  codes: string[],
  targets: { type: string; id: string }[],
): Promise<string[]> {
  if (targets.length === 0) return [];
  const r = await q.query<{ resource_id: string }>(
    `SELECT DISTINCT sr.resource_id FROM search_reference sr
     JOIN unnest($3::text[], $4::text[]) AS tg(t, i) ON sr.target_type = tg.t AND sr.target_id = tg.i
     WHERE sr.resource_type = $1 AND sr.code = ANY($2::text[])`,
    [resourceType, codes, targets.map((t) => t.type), targets.map((t) => t.id)],
    'referencing_ids',
  );
  return r.rows.map((row) => row.resource_id);
}
