/**
 * update: PUT [type]/[id] (create-on-update with a client id allowed), If-Match, and conditional update
 * PUT [type]?criteria. https://hl7.org/fhir/R4/http.html#update — https://hl7.org/fhir/R4/http.html#cond-update
 */
import type { Resource } from '@medplum/fhirtypes';
import { assertAllowed } from '../../access/context';
import type { Queryable } from '../../storage/database';
import { lockCriteria, readCurrent, type StoredVersion } from '../../storage/repository';
import { inTransaction, type FhirContext, type FhirRequest, type FhirResponse } from '../context';
import { badRequest, preconditionFailed } from '../outcomes';
import { assertBodyResource, assertId, assertResourceType, newResourceId, parseETag, writeResponse } from '../resources';
import { matchCriteria, resolveConditionalReferences, storeVersion, validateForWrite } from './write';

export async function update(ctx: FhirContext, req: FhirRequest, type: string, id: string): Promise<FhirResponse> {
  assertResourceType(type);
  assertId(id);
  const resource = assertBodyResource(req.body, type);
  if (resource.id === undefined) throw badRequest('The resource must have an id for update (PUT)', 'id');
  if (resource.id !== id) throw badRequest(`Resource id ${resource.id} does not match the URL id ${id}`, 'id');
  assertAllowed(ctx.access, 'update', type, resource);
  validateForWrite(ctx, resource);
  return inTransaction(ctx, async (q) => {
    const current = await readCurrent(q, type, id, { forUpdate: true });
    return writeOver(ctx, q, req, type, id, resource, current, 'PUT');
  });
}

/** PUT [type]?criteria: no match creates, one match updates it, several: 412. */
export async function conditionalUpdate(ctx: FhirContext, req: FhirRequest, type: string): Promise<FhirResponse> {
  assertResourceType(type);
  const resource = assertBodyResource(req.body, type);
  assertAllowed(ctx.access, 'update', type, resource);
  validateForWrite(ctx, resource);
  const criteria = req.query.toString();
  return inTransaction(ctx, async (q) => {
    await lockCriteria(q, `${type}?${criteria}`);
    const matches = await matchCriteria(ctx, q, type, criteria);
    if (matches.length > 1) throw preconditionFailed(`Criteria ${criteria} match more than one ${type}`, 'multiple-matches');
    if (matches.length === 1) {
      const id = matches[0].id;
      if (resource.id !== undefined && resource.id !== id) {
        throw badRequest(`Resource id ${resource.id} does not match the resource found by the criteria`, 'id');
      }
      const current = await readCurrent(q, type, id, { forUpdate: true });
      return writeOver(ctx, q, req, type, id, resource, current, 'PUT');
    }
    const id = resource.id ?? newResourceId();
    assertId(id);
    const current = await readCurrent(q, type, id, { forUpdate: true });
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

/** Writes a new version over `current` (or version 1 when there is none); 201 when it (re)creates. */
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
  if (current && !current.deleted) assertAllowed(ctx.access, 'update', type, current.resource);
  await resolveConditionalReferences(ctx, q, resource);
  const v = await storeVersion(ctx, q, {
    resourceType: type,
    id,
    versionId: current ? current.versionId + 1 : 1,
    method,
    resource: { ...resource, id },
  });
  const created = !current || current.deleted;
  return writeResponse(created ? 201 : 200, v, ctx.settings.fhirBaseUrl, req.prefer, `${created ? 'Created' : 'Updated'} ${type}/${id}`);
}
