/**
 * Search queries over the index tables: the storage-level query language the FHIR search layer compiles
 * to, and its SQL. Parameterized SQL only.
 */
import type { Queryable } from './database';
import { toVersion, type Row, type StoredVersion } from './repository';

/** One search condition of the storage-level query language the FHIR search layer compiles to. */
export type Condition =
  | { kind: 'id'; ids: string[]; not?: boolean }
  | { kind: 'token'; code: string; any: { system?: string | null; value?: string }[]; not?: boolean }
  | { kind: 'lastUpdated'; op: '>=' | '<' | '>' | '<='; value: string }
  /** The resource references one of the targets through one of the search parameters `codes`. */
  | { kind: 'reference'; codes: string[]; targets: { type: string; id: string }[]; not?: boolean }
  /** At least one of the conditions holds (access rules combine compartments this way). */
  | { kind: 'or'; any: Condition[] }
  /** Matches nothing (an access rule that grants no rows). */
  | { kind: 'none' };

export interface SearchQuery {
  resourceType: string;
  conditions: Condition[];
  count: number;
  /** Keyset cursor: only ids after this one (ordered by id). */
  afterId?: string;
}

function compileConditions(conditions: Condition[], params: unknown[]): string[] {
  return conditions.map((c) => compileCondition(c, params));
}

function compileCondition(c: Condition, params: unknown[]): string {
  const p = (v: unknown) => `$${params.push(v)}`;
  switch (c.kind) {
    case 'none':
      return 'false';
    case 'or':
      return c.any.length ? `(${c.any.map((x) => compileCondition(x, params)).join(' OR ')})` : 'false';
    case 'reference':
      return `${c.not ? 'NOT ' : ''}EXISTS (SELECT 1 FROM search_reference sr
        JOIN unnest(${p(c.targets.map((t) => t.type))}::text[], ${p(c.targets.map((t) => t.id))}::text[]) AS tg(t, i)
          ON sr.target_type = tg.t AND sr.target_id = tg.i
        WHERE sr.resource_type = r.resource_type AND sr.resource_id = r.id AND sr.code = ANY(${p(c.codes)}::text[]))`;
    case 'id':
      return `${c.not ? 'NOT ' : ''}(r.id = ANY(${p(c.ids)}::text[]))`;
    case 'lastUpdated':
      return `r.last_updated ${c.op} ${p(c.value)}`;
    case 'token': {
      const alternatives = c.any.map((t) => {
        const parts: string[] = [];
        if (t.system === null) parts.push('t.system IS NULL');
        else if (t.system !== undefined) parts.push(`t.system = ${p(t.system)}`);
        if (t.value !== undefined) parts.push(`t.value = ${p(t.value)}`);
        return parts.length ? `(${parts.join(' AND ')})` : 'true';
      });
      return `${c.not ? 'NOT ' : ''}EXISTS (SELECT 1 FROM search_token t WHERE t.resource_type = r.resource_type
         AND t.resource_id = r.id AND t.code = ${p(c.code)} AND (${alternatives.join(' OR ')}))`;
    }
  }
}

export async function searchResources(q: Queryable, s: SearchQuery): Promise<{ versions: StoredVersion[]; more: boolean }> {
  const params: unknown[] = [s.resourceType];
  const where = ['r.resource_type = $1', 'NOT r.deleted', ...compileConditions(s.conditions, params)];
  if (s.afterId !== undefined) where.push(`r.id > $${params.push(s.afterId)}`);
  params.push(s.count + 1);
  const r = await q.query<Row>(
    `SELECT r.resource_type, r.id, r.version_id, r.last_updated, r.deleted, r.content FROM resources r
     WHERE ${where.join(' AND ')} ORDER BY r.id LIMIT $${params.length}`,
    params,
  );
  return { versions: r.rows.slice(0, s.count).map(toVersion), more: r.rows.length > s.count };
}

export async function countResources(q: Queryable, s: Omit<SearchQuery, 'count' | 'afterId'>): Promise<number> {
  const params: unknown[] = [s.resourceType];
  const where = ['r.resource_type = $1', 'NOT r.deleted', ...compileConditions(s.conditions, params)];
  const r = await q.query<{ n: string | number }>(`SELECT count(*) AS n FROM resources r WHERE ${where.join(' AND ')}`, params);
  return Number(r.rows[0].n);
}

