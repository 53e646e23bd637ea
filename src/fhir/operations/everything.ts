/**
 * GET Patient/[id]/$everything (https://hl7.org/fhir/R4/patient-operation-everything.html): a patient's whole
 * record, the data export LGPD art. 18 gives them (issue 13). A `searchset` Bundle of the Patient and every
 * resource of their compartment (https://hl7.org/fhir/R4/compartmentdefinition-patient.html: Consents,
 * DocumentReferences with their `Binary/<id>` attachment links as stored, Appointments, AuditEvents naming them,
 * ...) as `match` entries, and what those reference that a reader needs to make sense of them (Practitioner,
 * PractitionerRole, Organization, Location, Medication), one level, and the Binaries its DocumentReferences link (as
 * JSON, without the bytes), as `include` entries of the page that references them.
 *
 * The compartment is one search over all its types, driven by the reference index (see `recordWhere`), paged by id
 * with keyset cursors like every search; each page's includes are one query per type on the page, and one for the
 * Binaries.
 *
 * In: `_since` (instant: only resources last updated at or after it), `_type` (comma-separated types, repeatable:
 * only these, includes too), `_count` (default 100, at most 1000), `_total` (as searches: none | estimate |
 * accurate; unasked, given when the record fits one page), and `_cursor` from the `next` link. `start` and `end`
 * (clinical dates) are not supported; any other parameter is a 400 (ignored with a warning entry under
 * `Prefer: handling=lenient`), as for searches.
 * Who may: the patient themself and a client reading everywhere (an admin), or whoever else access lets read the
 * Patient, each getting the types their scopes let them search. A practitioner gets 403: a record shared by
 * Consent is the documents it opens, read one by one, not an export of the patient's data.
 */
import type { Binary, BundleEntry, BundleLink, DocumentReference } from '@medplum/fhirtypes';
import { localReference } from '../../access/compartment';
import { findVisible, gate } from '../../access/visible';
import type { Queryable } from '../../storage/database';
import type { StoredVersion } from '../../storage/repository';
import { countResources, estimateResources, includeResources, searchResources, type Condition, type Cursor } from '../../storage/search';
import { bundle, pageLink, searchEntry } from '../bundle';
import { reader, type FhirContext, type FhirRequest, type FhirResponse } from '../context';
import { badRequest, forbidden, gone, issuesOutcome, notFound } from '../outcomes';
import { isKnownResourceType } from '../definitions';
import { compartmentCondition, compartmentMemberTypes, compartmentScope } from '../search/compartment';
import { decodeCursor, encodeCursor, sortSignature } from '../search/cursor';
import { MAX_COUNT } from '../search/parse';
import { referenceParameters } from '../search/params';
import type { FhirOperation } from '.';

export const DEFAULT_EVERYTHING_COUNT = 100;
/** What a reader needs to make sense of the record: who, where, which organization, which medication. */
export const REFERENCED_TYPES: readonly string[] = ['Practitioner', 'PractitionerRole', 'Organization', 'Location', 'Medication'];
/** Included resources per page, at most (as _include's). */
const MAX_INCLUDES = 1000;
/** Cursors of this operation are not a search's, and a search's are not this one's. */
const SIGNATURE = sortSignature('$everything');
const KNOWN = new Set(['_since', '_type', '_count', '_total', '_cursor', '_format', '_pretty']);

/** https://hl7.org/fhir/R4/datatypes.html#instant */
const INSTANT = /^([0-9]{4})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]{1,9})?(Z|[+-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00))$/;

export const everythingOperation: FhirOperation = {
  name: 'everything',
  definition: 'http://hl7.org/fhir/OperationDefinition/Patient-everything',
  levels: ['instance'],
  resourceTypes: ['Patient'],
  methods: ['GET'],
  parameters: [
    { name: '_since', use: 'in', min: 0, max: '1', type: 'instant', documentation: 'Only resources last updated at or after this instant' },
    { name: '_type', use: 'in', min: 0, max: '*', type: 'code', documentation: 'Comma-separated resource types to return (matches and includes)' },
    { name: '_count', use: 'in', min: 0, max: '1', type: 'integer', documentation: `Resources per page (default ${DEFAULT_EVERYTHING_COUNT}, at most ${MAX_COUNT})` },
    { name: 'return', use: 'out', min: 1, max: '1', type: 'Bundle', documentation: "A searchset page of the patient's record, with a next link while more remain" },
  ],
  documentation:
    "The patient's whole record (the Patient and their compartment, with the practitioners, organizations, locations and medications it references), " +
    'paged, for the patient themself or an administrator.',
  run: (ctx, req, { id }) => everything(ctx, req, id as string),
};

interface Asked {
  since?: string;
  types?: Set<string>;
  count: number;
  total?: 'none' | 'estimate' | 'accurate';
  cursor?: Cursor;
  ignored: string[];
}

function inputs(req: FhirRequest): Asked {
  const lenient = /handling=lenient/.test(req.prefer ?? '');
  const asked: Asked = { count: DEFAULT_EVERYTHING_COUNT, ignored: [] };
  const once = (name: string) => {
    const values = req.query.getAll(name);
    if (values.length > 1) throw badRequest(`$everything: '${name}' is given more than once`, name);
    return values[0];
  };
  for (const name of new Set(req.query.keys())) {
    if (KNOWN.has(name)) continue;
    const diagnostics = name === 'start' || name === 'end' ? `$everything: '${name}' is not supported` : `$everything: unknown parameter '${name.slice(0, 40)}'`;
    if (!lenient) throw badRequest(diagnostics, name);
    asked.ignored.push(diagnostics);
  }
  const since = once('_since');
  if (since !== undefined) {
    if (!INSTANT.test(since) || Number.isNaN(Date.parse(since))) throw badRequest(`$everything: '_since' must be a FHIR instant (with seconds and a time zone): ${since.slice(0, 40)}`, '_since');
    asked.since = since;
  }
  const named = req.query.getAll('_type').flatMap((v) => v.split(',')).map((t) => t.trim());
  if (named.length > 0) {
    for (const t of named) {
      if (t === '') throw badRequest("$everything: '_type' has an empty type", '_type');
      if (!isKnownResourceType(t)) throw badRequest(`$everything: unknown resource type in '_type': ${t.slice(0, 40)}`, '_type');
      if (t !== 'Patient' && t !== 'Binary' && !REFERENCED_TYPES.includes(t) && !compartmentMemberTypes('Patient').includes(t)) {
        throw badRequest(`$everything: ${t} is never part of a patient's record`, '_type');
      }
    }
    asked.types = new Set(named);
  }
  const count = once('_count');
  if (count !== undefined) {
    if (!/^\d{1,9}$/.test(count)) throw badRequest(`$everything: invalid _count: ${count.slice(0, 20)}`, '_count');
    asked.count = Math.min(Number(count), MAX_COUNT);
  }
  const total = once('_total');
  if (total !== undefined) {
    if (total !== 'none' && total !== 'estimate' && total !== 'accurate') throw badRequest(`$everything: invalid _total: ${total.slice(0, 20)}`, '_total');
    asked.total = total;
  }
  const cursor = once('_cursor');
  if (cursor !== undefined) {
    asked.cursor = decodeCursor(cursor, SIGNATURE, []);
    if (asked.cursor.backward) throw badRequest('Invalid page cursor (_cursor): $everything pages forward only', '_cursor');
  }
  return asked;
}

async function everything(ctx: FhirContext, req: FhirRequest, id: string): Promise<FhirResponse> {
  if (ctx.access.caller.kind === 'practitioner') throw forbidden("$everything exports a patient's record for the patient or an administrator; a practitioner reads what the patient shares");
  gate(ctx.access, 'read', 'Patient');
  const asked = inputs(req);
  const q = reader(ctx);
  const fhirBase = ctx.settings.fhirBaseUrl;
  const patient = await findVisible(ctx.access, q, 'read', 'Patient', id, { fhirBaseUrl: fhirBase });
  if (!patient) throw notFound(`Patient/${id} not found`);
  if (patient.deleted) throw gone(`Patient/${id} was deleted`);

  // The Patient heads the first page; the search reads the rest of the record.
  const withPatient = (!asked.types || asked.types.has('Patient')) && (!asked.since || Date.parse(patient.lastUpdated) >= Date.parse(asked.since));
  const head = withPatient && !asked.cursor ? [patient] : [];
  const where = recordWhere(ctx, id, asked);
  const path = `Patient/${id}/$everything`;
  const query = new URLSearchParams(req.query);
  if (query.has('_count')) query.set('_count', String(asked.count));
  const links: BundleLink[] = [pageLink('self', fhirBase, path, query, {})];
  const warnings: BundleEntry[] =
    asked.ignored.length === 0 ? [] : [{ resource: issuesOutcome(asked.ignored.map((d) => ({ severity: 'warning', code: 'not-supported', diagnostics: d }))), search: { mode: 'outcome' } }];
  const totalOf = async (how: 'none' | 'estimate' | 'accurate' | undefined): Promise<number | undefined> => {
    if (how === undefined || how === 'none') return undefined;
    const members = !where ? 0 : how === 'estimate' ? await estimateResources(q, where) : await countResources(q, where);
    return members + (withPatient ? 1 : 0);
  };
  if (asked.count === 0) return { status: 200, body: bundle('searchset', warnings, links, await totalOf(asked.total ?? 'accurate')) };

  const page = where ? await searchResources(q, { ...where, count: asked.count - head.length, cursor: asked.cursor }) : { versions: [], keys: [], more: false };
  const matches = [...head, ...page.versions.filter((v) => ctx.access.can('read', v.resourceType, v.resource))];
  const included = [...(await referenced(ctx, q, matches, asked)), ...(await attachments(ctx, q, id, matches, asked))];
  let total: number | undefined;
  if (asked.total === 'accurate' || asked.total === 'estimate') total = await totalOf(asked.total);
  else if (asked.total === undefined && !asked.cursor && !page.more) total = matches.length;

  if (page.more) {
    // after the page's last row; a first page holding only the Patient continues from the record's first row
    const after = page.versions.length > 0 ? page.versions[page.versions.length - 1].id : '';
    links.push(pageLink('next', fhirBase, path, query, { _cursor: encodeCursor({ values: [], id: after }, SIGNATURE) }));
  }
  if (asked.cursor) links.push(pageLink('first', fhirBase, path, query, { _cursor: undefined }));
  const entries: BundleEntry[] = [
    ...matches.map((v) => searchEntry(fhirBase, v.resource!, 'match')),
    ...included.map((v) => searchEntry(fhirBase, v.resource!, 'include')),
    ...warnings,
  ];
  return { status: 200, body: bundle('searchset', entries, links, total) };
}

type RecordWhere = { resourceTypes: string[]; conditions: Condition[] };

/**
 * The record's rows other than the Patient, as one search: the compartment's types asked for and searchable by the
 * caller, within the caller's access conditions (those that only restate the compartment dropped: a patient's own
 * scopes reach exactly it), updated since `_since`. Undefined: no type is left.
 *
 * Membership is stated twice. First as one reference condition, "some reference to Patient/<id> through any of the
 * compartment's parameters": a top-level EXISTS, which PostgreSQL turns into a semi-join driven by the reference
 * index on (target_type, target_id), so a page costs the size of this patient's record, not of the database. Then
 * exactly, per group of types placed in the compartment by the same parameters (`compartmentScope`), tested on
 * those candidate rows only: a parameter that places one type in the compartment does not place another.
 */
function recordWhere(ctx: FhirContext, id: string, asked: Asked): RecordWhere | undefined {
  const key = (c: Condition) => JSON.stringify(c);
  const perType = new Map<string, Condition[]>();
  for (const type of compartmentMemberTypes('Patient')) {
    if (type === 'Patient' || (asked.types && !asked.types.has(type)) || !ctx.access.can('search', type)) continue;
    const access = ctx.access.searchConditions(type, 'search');
    if (access.some((c) => c.kind === 'none')) continue;
    const implied = key(compartmentCondition('Patient', id, type) ?? { kind: 'none' });
    perType.set(type, access.filter((c) => key(c) !== implied));
  }
  if (perType.size === 0) return undefined;
  const types = [...perType.keys()];
  const codes = [...new Set(types.flatMap((t) => (compartmentCondition('Patient', id, t) as Extract<Condition, { kind: 'reference' }>).codes))];
  const exact = compartmentScope('Patient', id, types);
  const conditions: Condition[] = [
    { kind: 'reference', codes, targets: [{ type: 'Patient', id }] },
    exact,
  ];
  if ([...perType.values()].some((c) => c.length > 0)) {
    conditions.push({ kind: 'or', any: [...perType].map(([type, all]) => ({ kind: 'and', all: [{ kind: 'type', types: [type] }, ...all] })) });
  }
  if (asked.since) conditions.push({ kind: 'lastUpdated', op: '>=', value: asked.since });
  return { resourceTypes: types, conditions };
}

/**
 * The practitioners, organizations, locations and medications the page's resources reference (one level), that the
 * caller may read, the page's own resources left out: one query per type on the page.
 */
async function referenced(ctx: FhirContext, q: Queryable, matches: StoredVersion[], asked: Asked): Promise<StoredVersion[]> {
  const targets = REFERENCED_TYPES.filter((t) => (!asked.types || asked.types.has(t)) && ctx.access.can('read', t));
  if (targets.length === 0 || matches.length === 0) return [];
  const accessWhere = targets.map((t): Condition => ({ kind: 'and', all: [{ kind: 'type', types: [t] }, ...ctx.access.searchConditions(t, 'read')] }));
  const where: Condition[] = [{ kind: 'or', any: accessWhere }];
  const bySource = new Map<string, string[]>();
  for (const v of matches) bySource.set(v.resourceType, [...(bySource.get(v.resourceType) ?? []), v.id]);
  const key = (v: { resourceType: string; id: string }) => `${v.resourceType}/${v.id}`;
  const seen = new Set(matches.map(key));
  const out: StoredVersion[] = [];
  for (const [sourceType, sourceIds] of bySource) {
    const codes = referenceParameters(sourceType).map(([code]) => code);
    if (codes.length === 0) continue;
    for (const v of await includeResources(q, { reverse: false, sourceType, sourceIds, codes, where, limit: MAX_INCLUDES })) {
      if (seen.has(key(v)) || !ctx.access.can('read', v.resourceType, v.resource)) continue;
      seen.add(key(v));
      out.push(v);
      if (out.length >= MAX_INCLUDES) return out;
    }
  }
  return out;
}

/**
 * The Binaries the page's DocumentReferences link (`content.attachment.url` "Binary/<id>") whose securityContext is
 * that document or the Patient, as JSON without `data` (the bytes are what the link downloads): one query a page.
 * A Binary no document links is not found this way (R4 has no search parameter on Binary.securityContext).
 */
async function attachments(ctx: FhirContext, q: Queryable, patientId: string, matches: StoredVersion[], asked: Asked): Promise<StoredVersion[]> {
  if ((asked.types && !asked.types.has('Binary')) || !ctx.access.can('read', 'Binary')) return [];
  const owners = new Map<string, Set<string>>();
  for (const v of matches) {
    if (v.resourceType !== 'DocumentReference') continue;
    for (const c of (v.resource as DocumentReference).content ?? []) {
      const m = /^Binary\/([A-Za-z0-9\-.]{1,64})$/.exec(c.attachment?.url ?? '');
      if (m) owners.set(m[1], (owners.get(m[1]) ?? new Set()).add(`DocumentReference/${v.id}`));
    }
  }
  if (owners.size === 0) return [];
  const ids = [...owners.keys()];
  const page = await searchResources(q, { resourceType: 'Binary', conditions: [{ kind: 'id', ids }], count: ids.length });
  return page.versions.flatMap((v) => {
    const binary = v.resource as Binary;
    const context = localReference(binary.securityContext?.reference, ctx.settings.fhirBaseUrl);
    const name = context && `${context.type}/${context.id}`;
    if (!name || !(name === `Patient/${patientId}` || owners.get(v.id)?.has(name))) return [];
    const { data: _bytes, ...withoutData } = binary;
    return [{ ...v, resource: withoutData }];
  });
}
