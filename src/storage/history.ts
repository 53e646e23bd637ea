/**
 * History queries (https://hl7.org/fhir/R4/http.html#history): versions newest first, keyset-paged on the
 * global write sequence, chosen under the caller's access conditions so that pages are full and counts match
 * what the caller may see. A page position is named by the last version the caller was shown (type, id,
 * version), never by the server-wide sequence number, so a cursor tells nothing beyond the caller's own view.
 */
import type { Queryable } from './database';
import { toVersion, type Row, type StoredVersion } from './repository';
import type { Condition } from './search';
import { compileConditions, SqlBuilder } from './searchSql';

export interface HistoryQuery {
  resourceType?: string;
  id?: string;
  /** Only versions written at or after this instant. */
  since?: string;
  /** Only versions current at this instant (the latest version of each resource at or before it). */
  at?: string;
  /**
   * Conditions the resource's current row must meet (access rules): the caller sees the history of the
   * resources they may see now. [] = every resource (no join).
   */
  where: Condition[];
}

/** A version the caller was shown: the next page holds the versions written before it. */
export interface HistoryPosition {
  resourceType: string;
  id: string;
  versionId: number;
}

export interface HistoryPage {
  versions: StoredVersion[];
  /** Where the next (older) page starts, when there is one. */
  next?: HistoryPosition;
}

const COLUMNS = 'h.resource_type, h.id, h.version_id, h.last_updated, h.deleted, h.content, h.method, h.seq';

/** FROM and WHERE of the versions a query selects (without paging), on alias `h`. */
function selection(b: SqlBuilder, h: HistoryQuery): { from: string; where: string[] } {
  const where: string[] = [];
  if (h.resourceType) where.push(`h.resource_type = ${b.p(h.resourceType)}`);
  if (h.id) where.push(`h.id = ${b.p(h.id)}`);
  if (h.since) where.push(`h.last_updated >= ${b.p(h.since, 'timestamptz')}`);
  let from = 'resource_history h';
  if (h.at) {
    // versions current at `at`: per resource, the newest version written at or before it
    const typeFilter = h.resourceType ? `AND resource_type = ${b.p(h.resourceType)}` : '';
    from = `(SELECT DISTINCT ON (resource_type, id) * FROM resource_history
             WHERE last_updated <= ${b.p(h.at, 'timestamptz')} ${typeFilter}
             ORDER BY resource_type, id, version_id DESC) AS h`;
  }
  if (h.where.length > 0) {
    from += ' JOIN resources r ON r.resource_type = h.resource_type AND r.id = h.id';
    where.push('NOT r.deleted', ...compileConditions(b, h.where, 'r'));
  }
  return { from, where };
}

const whereSql = (where: string[]) => (where.length ? `WHERE ${where.join(' AND ')}` : '');

const POSITION_TYPE = /^[A-Z][A-Za-z]{0,63}$/;
const POSITION_ID = /^[A-Za-z0-9\-.]{1,64}$/;

/**
 * The sequence number of a position, if the version exists and is one the query selects (so a cursor naming a
 * version outside the caller's view is refused like a malformed one).
 */
async function positionSeq(q: Queryable, h: HistoryQuery, at: HistoryPosition): Promise<number | undefined> {
  // a position comes back from the client: one that no stored version could have is refused without a query
  // (PostgreSQL would fail the statement on a NUL in text, or on an integer out of range)
  if (!POSITION_TYPE.test(at.resourceType) || !POSITION_ID.test(at.id) || !Number.isSafeInteger(at.versionId) || at.versionId < 1) return undefined;
  const b = new SqlBuilder();
  const { from, where } = selection(b, h);
  where.push(`h.resource_type = ${b.p(at.resourceType)}`, `h.id = ${b.p(at.id)}`, `h.version_id = ${b.p(at.versionId)}`);
  const r = await q.query<{ seq: string | number }>(`SELECT h.seq FROM ${from} ${whereSql(where)}`, b.params);
  return r.rows[0] ? Number(r.rows[0].seq) : undefined;
}

/** One page, newest first; undefined when `after` names no version of this history. */
export async function historyPage(
  q: Queryable,
  h: HistoryQuery,
  count: number,
  after?: HistoryPosition,
): Promise<HistoryPage | undefined> {
  let beforeSeq: number | undefined;
  if (after) {
    beforeSeq = await positionSeq(q, h, after);
    if (beforeSeq === undefined) return undefined;
  }
  const b = new SqlBuilder();
  const { from, where } = selection(b, h);
  if (beforeSeq !== undefined) where.push(`h.seq < ${b.p(beforeSeq)}`);
  const sql = `SELECT ${COLUMNS} FROM ${from} ${whereSql(where)} ORDER BY h.seq DESC LIMIT ${b.p(count + 1)}`;
  const r = await q.query<Row>(sql, b.params);
  const rows = r.rows.slice(0, count);
  const last = rows[rows.length - 1];
  return {
    versions: rows.map(toVersion),
    next: r.rows.length > count && last ? { resourceType: last.resource_type, id: last.id, versionId: Number(last.version_id) } : undefined,
  };
}

export async function countHistory(q: Queryable, h: HistoryQuery): Promise<number> {
  const b = new SqlBuilder();
  const { from, where } = selection(b, h);
  const r = await q.query<{ n: string | number }>(`SELECT count(*) AS n FROM ${from} ${whereSql(where)}`, b.params);
  return Number(r.rows[0].n);
}
