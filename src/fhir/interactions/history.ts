/**
 * history at instance, type and system level: _since, _at, _count, keyset paging links.
 * https://hl7.org/fhir/R4/http.html#history
 *
 * A caller sees the history of the resources they may see now (src/access/visible.ts): the page is chosen
 * in SQL under their access conditions, so pages are full, `_total` counts what they see, and the `_cursor`
 * names the last version they were shown, never a server-wide position.
 */
import type { AccessContext } from '../../access/context';
import { findVisible, gate, lookupConditions } from '../../access/visible';
import { countHistory, historyPage, type HistoryPosition, type HistoryQuery } from '../../storage/history';
import type { Condition } from '../../storage/search';
import { bundle, historyEntry, pageLink } from '../bundle';
import { reader, type FhirContext, type FhirRequest, type FhirResponse } from '../context';
import { resourceTypes } from '../definitions';
import { badRequest, notFound } from '../outcomes';
import { assertId, assertResourceType, ID_PATTERN } from '../resources';
import { DEFAULT_COUNT, MAX_COUNT } from '../search/parse';

const KNOWN = new Set(['_since', '_at', '_count', '_cursor', '_format', '_pretty', '_total']);

export async function history(ctx: FhirContext, req: FhirRequest, type?: string, id?: string): Promise<FhirResponse> {
  if (type) assertResourceType(type);
  if (id) assertId(id);
  gate(ctx.access, type && id ? 'history-instance' : 'history-type', type ?? '*');
  for (const name of req.query.keys()) if (!KNOWN.has(name)) throw badRequest(`Unknown history parameter ${name}`, name);
  const since = instant(req.query.get('_since'), '_since');
  const at = instant(req.query.get('_at'), '_at');
  const count = Math.min(intParam(req.query.get('_count'), DEFAULT_COUNT, '_count'), MAX_COUNT);
  const cursorText = req.query.get('_cursor');
  const cursor = cursorText === null ? undefined : decodePosition(cursorText);
  const q = reader(ctx);
  let where: Condition[];
  if (type && id) {
    // Instance history needs read access to the resource itself; another patient's answers 404, as a missing one.
    const current = await findVisible(ctx.access, q, 'history-instance', type, id, { fhirBaseUrl: ctx.settings.fhirBaseUrl });
    if (!current) throw notFound(`${type}/${id} not found`);
    where = [];
  } else {
    where = type ? lookupConditions(ctx.access, 'history-type', type) : systemConditions(ctx.access);
  }
  const h: HistoryQuery = { resourceType: type, id, since, at, where };
  const page = await historyPage(q, h, count, cursor);
  if (!page) throw invalidCursor();

  const path = [type, id, '_history'].filter(Boolean).join('/');
  // Links show the page size actually used (a _count above the maximum is lowered to it).
  const used = req.query.has('_count') ? { _count: String(count) } : {};
  const links = [pageLink('self', ctx.settings.fhirBaseUrl, path, req.query, used)];
  if (page.next) links.push(pageLink('next', ctx.settings.fhirBaseUrl, path, req.query, { ...used, _cursor: encodePosition(page.next) }));
  // The total is exact for free on a single page; otherwise it costs a count, done only when asked for.
  let total: number | undefined;
  if (!cursor && !page.next) total = page.versions.length;
  else if (req.query.get('_total') === 'accurate') total = await countHistory(q, h);
  const entries = page.versions.map((v) => historyEntry(ctx.settings.fhirBaseUrl, v));
  return { status: 200, body: bundle('history', entries, links, total) };
}

/**
 * System history (GET [base]/_history): each type the caller may see the history of, under that type's
 * conditions; types sharing the same conditions are one alternative.
 */
function systemConditions(access: AccessContext): Condition[] {
  const groups = new Map<string, { types: string[]; conditions: Condition[] }>();
  let everything = true;
  for (const t of resourceTypes()) {
    const conditions = access.can('history-type', t) ? lookupConditions(access, 'history-type', t) : [{ kind: 'none' } as Condition];
    if (conditions.length > 0) everything = false;
    if (conditions.length === 1 && conditions[0].kind === 'none') continue;
    const key = JSON.stringify(conditions);
    const group = groups.get(key) ?? groups.set(key, { types: [], conditions }).get(key)!;
    group.types.push(t);
  }
  if (everything) return [];
  if (groups.size === 0) return [{ kind: 'none' }];
  const any: Condition[] = [...groups.values()].map((g) => ({ kind: 'and', all: [{ kind: 'type', types: g.types }, ...g.conditions] }));
  return [{ kind: 'or', any }];
}

const invalidCursor = () => badRequest('Invalid _cursor (paging links are only valid for the history that made them)', '_cursor');

function encodePosition(p: HistoryPosition): string {
  return Buffer.from(JSON.stringify([p.resourceType, p.id, p.versionId])).toString('base64url');
}

function decodePosition(text: string): HistoryPosition {
  try {
    const [resourceType, id, versionId] = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as unknown[];
    if (typeof resourceType === 'string' && typeof id === 'string' && ID_PATTERN.test(id) && Number.isSafeInteger(versionId) && (versionId as number) > 0) {
      return { resourceType, id, versionId: versionId as number };
    }
  } catch {
    // fall through to the 400 below
  }
  throw invalidCursor();
}

function instant(value: string | null, name: string): string | undefined {
  if (value === null) return undefined;
  const t = Date.parse(value);
  if (!/^\d{4}(-\d{2}(-\d{2}(T[\d:.]+(Z|[+-]\d{2}:\d{2})?)?)?)?$/.test(value) || Number.isNaN(t)) {
    throw badRequest(`Invalid ${name}: ${value}`, name);
  }
  return new Date(t).toISOString();
}

function intParam(value: string | null, fallback: number, name: string): number {
  if (value === null) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw badRequest(`Invalid ${name}: ${value}`, name);
  return n;
}
