/**
 * search: GET [type]?params and POST [type]/_search, answered with a searchset Bundle.
 * https://hl7.org/fhir/R4/http.html#search — https://hl7.org/fhir/R4/search.html
 */
import { assertAllowed } from '../../access/context';
import { countResources, searchResources } from '../../storage/search';
import { bundle, pageLink, searchEntry } from '../bundle';
import { reader, type FhirContext, type FhirRequest, type FhirResponse } from '../context';
import { outcome } from '../outcomes';
import { assertResourceType } from '../resources';
import { parseSearch } from '../search/parse';
import { applySubsetting, parseSubsetting } from '../summary';

export async function searchType(ctx: FhirContext, req: FhirRequest, type: string): Promise<FhirResponse> {
  assertResourceType(type);
  assertAllowed(ctx.access, 'search', type);
  const lenient = /handling=lenient/.test(req.prefer ?? '');
  const parsed = parseSearch(type, req.query, lenient);
  parsed.conditions.push(...ctx.access.searchConditions(type));
  const subsetting = parseSubsetting(req.query);
  const q = reader(ctx);
  const fhirBase = ctx.settings.fhirBaseUrl;
  const selfLink = pageLink('self', fhirBase, type, req.query, {});

  if (subsetting.summary === 'count') {
    const total = await countResources(q, { resourceType: type, conditions: parsed.conditions });
    return { status: 200, body: bundle('searchset', [], [selfLink], total) };
  }
  const { versions, more } = await searchResources(q, {
    resourceType: type,
    conditions: parsed.conditions,
    count: parsed.count,
    afterId: parsed.cursor,
  });
  const entries = versions
    .filter((v) => ctx.access.can('read', type, v.resource))
    .map((v) => searchEntry(fhirBase, applySubsetting(v.resource!, subsetting), 'match'));
  const links = [selfLink];
  if (more && versions.length > 0) {
    links.push(pageLink('next', fhirBase, type, req.query, { _cursor: versions[versions.length - 1].id }));
  }
  if (parsed.cursor !== undefined) links.push(pageLink('first', fhirBase, type, req.query, { _cursor: undefined }));
  let total: number | undefined;
  if (parsed.total === 'accurate' || parsed.total === 'estimate') {
    total = await countResources(q, { resourceType: type, conditions: parsed.conditions });
  } else if (parsed.cursor === undefined && !more) {
    total = entries.length;
  }
  if (parsed.ignored.length > 0) {
    entries.push({
      resource: outcome('warning', 'not-supported', `Ignored search parameters: ${parsed.ignored.join(', ')}`),
      search: { mode: 'outcome' },
    });
  }
  return { status: 200, body: bundle('searchset', entries, links, total) };
}
