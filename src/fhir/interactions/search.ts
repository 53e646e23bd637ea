/**
 * search at type, system and compartment level, answered with a searchset Bundle.
 * https://hl7.org/fhir/R4/http.html#search — https://hl7.org/fhir/R4/search.html
 *   GET/POST [type]?params            searchType
 *   GET/POST [base]?_type=A,B&params  searchSystem
 *   GET [compartment]/[id]/[type]     searchCompartment (https://hl7.org/fhir/R4/http.html#vsearch)
 */
import type { BundleEntry, BundleLink } from '@medplum/fhirtypes';
import { assertAllowed } from '../../access/context';
import { QueryTimeoutError } from '../../storage/database';
import type { StoredVersion } from '../../storage/repository';
import { countResources, estimateResources, searchResources, StatementTooLargeError, type Condition, type Cursor } from '../../storage/search';
import { bundle, pageLink, searchEntry } from '../bundle';
import { reader, type FhirContext, type FhirRequest, type FhirResponse } from '../context';
import { resourceTypes } from '../definitions';
import { issuesOutcome, notFound, OperationOutcomeError, outcome } from '../outcomes';
import { assertId, assertResourceType } from '../resources';
import { compartmentMemberTypes, compartmentScope, isCompartment } from '../search/compartment';
import { encodeCursor } from '../search/cursor';
import { resolveIncludes } from '../search/include';
import { parseSearchTypes, type ParsedSearch } from '../search/parse';
import { applySubsetting, parseSubsetting } from '../summary';

interface Scope {
  /** Path of the search below the FHIR base, for paging links. */
  path: string;
  types: string[];
  /** Every type is searched: no type filter needed. */
  allTypes?: boolean;
  /** Conditions on top of the parameters (compartment membership). */
  scope?: Condition[];
}

export async function searchType(ctx: FhirContext, req: FhirRequest, type: string): Promise<FhirResponse> {
  assertResourceType(type);
  assertAllowed(ctx.access, 'search', type);
  return runSearch(ctx, req, { path: type, types: [type] });
}

/** System search: `_type` names the types; without it, every type the caller may search. */
export async function searchSystem(ctx: FhirContext, req: FhirRequest): Promise<FhirResponse> {
  const named = req.query.getAll('_type').flatMap((v) => v.split(',')).map((t) => t.trim()).filter(Boolean);
  for (const type of named) {
    assertResourceType(type);
    assertAllowed(ctx.access, 'search', type);
  }
  const all = [...resourceTypes()];
  const types = named.length > 0 ? [...new Set(named)] : all.filter((t) => ctx.access.can('search', t));
  return runSearch(ctx, req, { path: '', types, allTypes: named.length === 0 && types.length === all.length });
}

/** `GET Patient/123/Appointment` (or `Patient/123/*`): the search, restricted to the compartment. */
export async function searchCompartment(ctx: FhirContext, req: FhirRequest, compartment: string, id: string, type: string): Promise<FhirResponse> {
  assertResourceType(compartment);
  assertId(id);
  if (!isCompartment(compartment)) throw notFound(`There is no ${compartment} compartment`);
  const members = compartmentMemberTypes(compartment);
  let types: string[];
  if (type === '*') {
    types = members.filter((t) => ctx.access.can('search', t));
  } else {
    assertResourceType(type);
    assertAllowed(ctx.access, 'search', type);
    types = [type];
  }
  return runSearch(ctx, req, { path: `${compartment}/${id}/${type}`, types, scope: [compartmentScope(compartment, id, types)] });
}

const tooCostly = (diagnostics: string) => new OperationOutcomeError(400, outcome('error', 'too-costly', diagnostics));

async function runSearch(ctx: FhirContext, req: FhirRequest, s: Scope): Promise<FhirResponse> {
  try {
    return await answerSearch(ctx, req, s);
  } catch (err) {
    // the client asked for more than the database does in the time allowed (or takes in one statement):
    // its request to change, not a fault
    if (err instanceof QueryTimeoutError) {
      const after = err.timeoutMs ? ` (${err.timeoutMs} ms)` : '';
      throw tooCostly(`The search took longer than DB_STATEMENT_TIMEOUT_MS${after} and was cancelled: narrow it with fewer or more selective parameters`);
    }
    if (err instanceof StatementTooLargeError) throw tooCostly('The search is too large for one database statement: narrow it with fewer values or parameters');
    throw err;
  }
}

async function answerSearch(ctx: FhirContext, req: FhirRequest, s: Scope): Promise<FhirResponse> {
  const lenient = /handling=lenient/.test(req.prefer ?? '');
  const fhirBase = ctx.settings.fhirBaseUrl;
  const parsed = parseSearchTypes(s.types, req.query, {
    lenient,
    fhirBaseUrl: fhirBase,
    access: (t) => ctx.access.searchConditions(t),
    scope: s.scope,
    limits: ctx.settings.limits,
  });
  const subsetting = parseSubsetting(req.query);
  const q = reader(ctx);
  const where = {
    ...(s.allTypes ? {} : s.types.length === 1 ? { resourceType: s.types[0] } : { resourceTypes: s.types }),
    conditions: parsed.conditions,
  };
  // Links show the page size actually used (a _count above the maximum is lowered to it).
  const query = new URLSearchParams(req.query);
  if (query.has('_count')) query.set('_count', String(parsed.count));
  const selfLink = pageLink('self', fhirBase, s.path, query, {});
  // https://hl7.org/fhir/R4/search.html#errors: what lenient handling ignored, as one OperationOutcome entry
  const warnings: BundleEntry[] =
    parsed.ignored.length === 0
      ? []
      : [
          {
            resource: issuesOutcome(parsed.ignored.map((w) => ({ severity: 'warning', code: 'not-supported', diagnostics: `Ignored search parameter ${w}` }))),
            search: { mode: 'outcome' },
          },
        ];

  if (subsetting.summary === 'count' || parsed.count === 0) {
    const total = parsed.total === 'estimate' ? await estimateResources(q, where) : await countResources(q, where);
    return { status: 200, body: bundle('searchset', warnings, [selfLink], total) };
  }
  const page = await searchResources(q, { ...where, count: parsed.count, sort: parsed.sort, cursor: parsed.cursor });
  const matches = page.versions.filter((v) => ctx.access.can('read', v.resourceType, v.resource));
  const included = parsed.include.length > 0 ? await resolveIncludes(ctx, q, matches, parsed.include) : [];

  let total: number | undefined;
  if (parsed.total === 'accurate') total = await countResources(q, where);
  else if (parsed.total === 'estimate') total = await estimateResources(q, where);
  else if (parsed.total === undefined && !parsed.cursor && !page.more) total = matches.length;

  const entries: BundleEntry[] = [
    ...matches.map((v) => searchEntry(fhirBase, applySubsetting(v.resource!, subsetting), 'match')),
    ...included.map((v) => searchEntry(fhirBase, v.resource!, 'include')),
    ...warnings,
  ];
  return { status: 200, body: bundle('searchset', entries, [selfLink, ...pageLinks(fhirBase, s.path, query, parsed, page)], total) };
}

/**
 * next/previous/first links with keyset cursors (https://hl7.org/fhir/R4/http.html#paging): `next` starts
 * after this page's last row, `previous` ends before its first row.
 */
function pageLinks(
  fhirBase: string,
  path: string,
  query: URLSearchParams,
  parsed: ParsedSearch,
  page: { versions: StoredVersion[]; keys: (string | null)[][]; more: boolean },
): BundleLink[] {
  const links: BundleLink[] = [];
  const at = (i: number, backward: boolean): string => {
    const c: Cursor = { values: page.keys[i], id: page.versions[i].id, backward };
    return encodeCursor(c, parsed.sortSignature);
  };
  const n = page.versions.length;
  const backward = !!parsed.cursor?.backward;
  const hasNext = backward ? !!parsed.cursor : page.more;
  const hasPrevious = backward ? page.more : !!parsed.cursor;
  if (n > 0 && hasNext) links.push(pageLink('next', fhirBase, path, query, { _cursor: at(n - 1, false) }));
  if (n > 0 && hasPrevious) links.push(pageLink('previous', fhirBase, path, query, { _cursor: at(0, true) }));
  if (parsed.cursor) links.push(pageLink('first', fhirBase, path, query, { _cursor: undefined }));
  return links;
}
