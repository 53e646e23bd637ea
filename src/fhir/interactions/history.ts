/**
 * history at instance, type and system level: _since, _at, _count, keyset paging links.
 * https://hl7.org/fhir/R4/http.html#history
 */
import { assertAllowed } from '../../access/context';
import { countHistory, history as queryHistory, readCurrent } from '../../storage/repository';
import { bundle, historyEntry, pageLink } from '../bundle';
import { reader, type FhirContext, type FhirRequest, type FhirResponse } from '../context';
import { badRequest, notFound } from '../outcomes';
import { assertId, assertResourceType } from '../resources';
import { DEFAULT_COUNT, MAX_COUNT } from '../search/parse';

const KNOWN = new Set(['_since', '_at', '_count', '_cursor', '_format', '_pretty', '_total']);

export async function history(ctx: FhirContext, req: FhirRequest, type?: string, id?: string): Promise<FhirResponse> {
  if (type) assertResourceType(type);
  if (id) assertId(id);
  for (const name of req.query.keys()) if (!KNOWN.has(name)) throw badRequest(`Unknown history parameter ${name}`, name);
  const since = instant(req.query.get('_since'), '_since');
  const at = instant(req.query.get('_at'), '_at');
  const count = Math.min(intParam(req.query.get('_count'), DEFAULT_COUNT, '_count'), MAX_COUNT);
  const cursor = req.query.get('_cursor');
  const beforeSeq = cursor === null ? undefined : intParam(cursor, 0, '_cursor');
  const q = reader(ctx);
  if (type && id) {
    // Instance history needs read access to the resource itself; another patient's answers 404, not an empty page.
    const current = await readCurrent(q, type, id);
    if (!current) throw notFound(`${type}/${id} not found`);
    assertAllowed(ctx.access, 'history-instance', type, current.resource);
  } else {
    assertAllowed(ctx.access, 'history-type', type ?? '*');
  }

  const page = await queryHistory(q, { resourceType: type, id, since, at, count, beforeSeq });
  // A tombstone has no content to decide on: only callers who see the whole type see it.
  const versions = page.versions.filter((v) =>
    v.resource
      ? ctx.access.can(type && id ? 'history-instance' : 'read', v.resourceType, v.resource)
      : ctx.access.searchConditions(v.resourceType).length === 0,
  );
  const path = [type, id, '_history'].filter(Boolean).join('/');
  const links = [pageLink('self', ctx.settings.fhirBaseUrl, path, req.query, {})];
  if (page.nextSeq !== undefined) {
    links.push(pageLink('next', ctx.settings.fhirBaseUrl, path, req.query, { _cursor: String(page.nextSeq) }));
  }
  // The total is exact for free on a single page; otherwise it costs a count, done only when asked for.
  let total: number | undefined;
  if (cursor === null && page.nextSeq === undefined) total = versions.length;
  else if (req.query.get('_total') === 'accurate') total = await countHistory(q, { resourceType: type, id, since, at });
  const entries = versions.map((v) => historyEntry(ctx.settings.fhirBaseUrl, v));
  return { status: 200, body: bundle('history', entries, links, total) };
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
