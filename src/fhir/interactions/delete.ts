/**
 * delete: DELETE [type]/[id] (kept as a tombstone version) and conditional delete DELETE [type]?criteria.
 * https://hl7.org/fhir/R4/http.html#delete — https://hl7.org/fhir/R4/http.html#3.1.0.7.1
 */
import { assertContentAllowed, findVisible, gate } from '../../access/visible';
import type { Resource } from '@medplum/fhirtypes';
import type { Queryable } from '../../storage/database';
import { lockCriteria } from '../../storage/repository';
import { inTransaction, type FhirContext, type FhirRequest, type FhirResponse } from '../context';
import { allOk, notFound, preconditionFailed } from '../outcomes';
import { assertId, assertResourceType, etagOf } from '../resources';
import { checkIfMatch } from './update';
import { matchCriteria, storeVersion } from './write';

export async function deleteResource(ctx: FhirContext, req: FhirRequest, type: string, id: string): Promise<FhirResponse> {
  assertResourceType(type);
  assertId(id);
  gate(ctx.access, 'delete', type);
  return inTransaction(ctx, (q) => deleteById(ctx, q, req, type, id));
}

/** One match is deleted; none is a success with nothing done; several: 412 (single-delete mode, as HAPI's default). */
export async function conditionalDelete(ctx: FhirContext, req: FhirRequest, type: string): Promise<FhirResponse> {
  assertResourceType(type);
  gate(ctx.access, 'delete', type);
  const criteria = req.query.toString();
  return inTransaction(ctx, async (q) => {
    await lockCriteria(q, `${type}?${criteria}`);
    const matches = await matchCriteria(ctx, q, 'delete', type, criteria);
    if (matches.length > 1) throw preconditionFailed(`Criteria ${criteria} match more than one ${type}`, 'multiple-matches');
    if (matches.length === 0) return { status: 200, body: allOk(`No ${type} matches ${criteria}: nothing deleted`) };
    return deleteById(ctx, q, req, type, matches[0].id);
  });
}

async function deleteById(ctx: FhirContext, q: Queryable, req: FhirRequest, type: string, id: string): Promise<FhirResponse> {
  const current = await findVisible(ctx.access, q, 'delete', type, id, { forUpdate: true, fhirBaseUrl: ctx.settings.fhirBaseUrl });
  if (!current) throw notFound(`${type}/${id} not found`);
  if (!current.deleted) await assertContentAllowed(ctx.access, q, 'delete', type, current.resource as Resource, ctx.settings.fhirBaseUrl);
  checkIfMatch(req.ifMatch, current, `${type}/${id}`);
  // Deleting what is already deleted changes nothing (delete is idempotent).
  if (current.deleted) return { status: 200, etag: etagOf(current.versionId), body: allOk(`${type}/${id} is already deleted`) };
  const v = await storeVersion(ctx, q, { resourceType: type, id, versionId: current.versionId + 1, method: 'DELETE' }, current.resource as Resource);
  return { status: 200, etag: etagOf(v.versionId), body: allOk(`Deleted ${type}/${id}`) };
}
