/**
 * update: PUT [type]/[id] (create-on-update with a client id allowed), If-Match, and conditional update
 * PUT [type]?criteria. https://hl7.org/fhir/R4/http.html#update — https://hl7.org/fhir/R4/http.html#cond-update
 */
import { isDeepStrictEqual } from 'node:util';
import type { Resource } from '@medplum/fhirtypes';
import { assertContentAllowed, findVisible, gate } from '../../access/visible';
import type { Queryable } from '../../storage/database';
import { lockCriteria, readCurrent, type StoredVersion } from '../../storage/repository';
import { inTransaction, type FhirContext, type FhirRequest, type FhirResponse } from '../context';
import { badRequest, conflict, forbidden, preconditionFailed } from '../outcomes';
import { assertBodyResource, assertId, assertResourceType, newResourceId, parseETag, writeResponse } from '../resources';
import { matchCriteria, resolveConditionalReferences, storeVersion, validateForWrite } from './write';

export async function update(ctx: FhirContext, req: FhirRequest, type: string, id: string): Promise<FhirResponse> {
  assertResourceType(type);
  assertId(id);
  const resource = assertBodyResource(req.body, type);
  if (resource.id === undefined) throw badRequest('The resource must have an id for update (PUT)', 'id');
  if (resource.id !== id) throw badRequest(`Resource id ${resource.id} does not match the URL id ${id}`, 'id');
  gate(ctx.access, 'update', type);
  validateForWrite(ctx, resource);
  return inTransaction(ctx, async (q) => {
    const current = await findVisible(ctx.access, q, 'update', type, id, { forUpdate: true, fhirBaseUrl: ctx.settings.fhirBaseUrl });
    return writeOver(ctx, q, req, type, id, resource, current, 'PUT');
  });
}

/** PUT [type]?criteria: no match creates, one match updates it, several: 412. Only what the caller may change matches. */
export async function conditionalUpdate(ctx: FhirContext, req: FhirRequest, type: string): Promise<FhirResponse> {
  assertResourceType(type);
  const resource = assertBodyResource(req.body, type);
  gate(ctx.access, 'update', type);
  validateForWrite(ctx, resource);
  const criteria = req.query.toString();
  return inTransaction(ctx, async (q) => {
    await lockCriteria(q, `${type}?${criteria}`);
    const matches = await matchCriteria(ctx, q, 'update', type, criteria);
    if (matches.length > 1) throw preconditionFailed(`Criteria ${criteria} match more than one ${type}`, 'multiple-matches');
    if (matches.length === 1 && resource.id !== undefined && resource.id !== matches[0].id) {
      throw badRequest(`Resource id ${resource.id} does not match the resource found by the criteria`, 'id');
    }
    const id = matches[0]?.id ?? resource.id ?? newResourceId();
    assertId(id);
    const current = await findVisible(ctx.access, q, 'update', type, id, { forUpdate: true, fhirBaseUrl: ctx.settings.fhirBaseUrl });
    return writeOver(ctx, q, req, type, id, resource, current, 'PUT');
  });
}

/** Checks If-Match against the current version (https://hl7.org/fhir/R4/http.html#concurrency). */
export function checkIfMatch(ifMatch: string | undefined, current: StoredVersion | undefined, key: string): void {
  if (ifMatch === undefined) return;
  const wanted = parseETag(ifMatch);
  if (!current || current.deleted) throw preconditionFailed(`If-Match ${ifMatch}: ${key} does not exist`);
  if (String(current.versionId) !== wanted) {
    throw preconditionFailed(`If-Match ${ifMatch} does not match the current version ${current.versionId} of ${key}`);
  }
}

/**
 * Writes a new version over `current` (or version 1 when there is none); 201 when it (re)creates. `current` is
 * what the caller may see (findVisible): undefined for an id never used and for one the caller cannot see.
 * Creating needs `c` as well as `u` (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html).
 */
export async function writeOver(
  ctx: FhirContext,
  q: Queryable,
  req: FhirRequest,
  type: string,
  id: string,
  resource: Resource,
  current: StoredVersion | undefined,
  method: 'PUT' | 'PATCH',
): Promise<FhirResponse> {
  checkIfMatch(req.ifMatch, current, `${type}/${id}`);
  const creates = !current || current.deleted;
  if (!creates) await assertContentAllowed(ctx.access, q, 'update', type, current.resource as Resource, ctx.settings.fhirBaseUrl);
  else if (!ctx.access.can('create', type)) throw forbidden(`Not allowed: create on ${type} (${type}/${id} does not exist, and an update that creates needs create access)`);
  await resolveConditionalReferences(ctx, q, resource, creates ? 'create' : 'update');
  const next = { ...resource, id };
  await assertContentAllowed(ctx.access, q, creates ? 'create' : 'update', type, next, ctx.settings.fhirBaseUrl);
  if (!current && (await readCurrent(q, type, id))) {
    // The one answer an invisible resource changes: its id is taken (src/access/visible.ts).
    throw conflict(`${type}/${id} cannot be created: the id is in use`);
  }
  // An update that changes nothing writes nothing and keeps the version (as HAPI and Medplum do). Not a Binary:
  // its bytes are not in its JSON (src/blobs/), so an upload of new bytes would look the same.
  if (!creates && type !== 'Binary' && current.resource && sameContent(current.resource, next)) {
    return writeResponse(200, current, ctx.settings.fhirBaseUrl, req.prefer, `${type}/${id} is unchanged: version ${current.versionId} kept`);
  }
  const v = await storeVersion(ctx, q, { resourceType: type, id, versionId: current ? current.versionId + 1 : 1, method, resource: next }, current?.resource);
  return writeResponse(creates ? 201 : 200, v, ctx.settings.fhirBaseUrl, req.prefer, `${creates ? 'Created' : 'Updated'} ${type}/${id}`);
}

/** Equal as FHIR content: the same JSON whatever the order of keys, with meta.versionId and meta.lastUpdated left aside. */
export function sameContent(a: Resource, b: Resource): boolean {
  return isDeepStrictEqual(withoutVersion(a), withoutVersion(b));
}

function withoutVersion(r: Resource): unknown {
  const { meta, ...rest } = r as Resource & { meta?: Record<string, unknown> };
  if (!meta) return rest;
  const { versionId: _v, lastUpdated: _l, ...others } = meta;
  return Object.keys(others).length ? { ...rest, meta: others } : rest;
}
