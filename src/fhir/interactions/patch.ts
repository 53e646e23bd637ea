/**
 * patch: PATCH [type]/[id] and conditional PATCH [type]?criteria, with a JSON Patch document
 * (application/json-patch+json) or a FHIRPath Patch Parameters resource (application/fhir+json).
 * https://hl7.org/fhir/R4/http.html#patch — https://hl7.org/fhir/R4/fhirpatch.html
 */
import type { Parameters, Resource } from '@medplum/fhirtypes';
import { assertContentAllowed, findVisible, gate } from '../../access/visible';
import type { Queryable } from '../../storage/database';
import { lockCriteria } from '../../storage/repository';
import { inTransaction, type FhirContext, type FhirRequest, type FhirResponse } from '../context';
import { badRequest, gone, notFound, preconditionFailed, unsupportedMediaType } from '../outcomes';
import { applyFhirPathPatch, applyJsonPatch } from '../patch';
import { assertId, assertResourceType } from '../resources';
import { checkIfMatch, writeOver } from './update';
import { matchCriteria, validateForWrite } from './write';

export async function patch(ctx: FhirContext, req: FhirRequest, type: string, id: string): Promise<FhirResponse> {
  assertResourceType(type);
  assertId(id);
  gate(ctx.access, 'patch', type);
  return inTransaction(ctx, (q) => patchById(ctx, q, req, type, id));
}

export async function conditionalPatch(ctx: FhirContext, req: FhirRequest, type: string): Promise<FhirResponse> {
  assertResourceType(type);
  gate(ctx.access, 'patch', type);
  const criteria = req.query.toString();
  return inTransaction(ctx, async (q) => {
    await lockCriteria(q, `${type}?${criteria}`);
    const matches = await matchCriteria(ctx, q, 'patch', type, criteria);
    if (matches.length === 0) throw notFound(`No ${type} matches ${criteria}`);
    if (matches.length > 1) throw preconditionFailed(`Criteria ${criteria} match more than one ${type}`, 'multiple-matches');
    return patchById(ctx, q, req, type, matches[0].id);
  });
}

/** Access first, then the version check, then the patch: a `test` op never runs on what the caller may not change. */
async function patchById(ctx: FhirContext, q: Queryable, req: FhirRequest, type: string, id: string): Promise<FhirResponse> {
  const current = await findVisible(ctx.access, q, 'patch', type, id, { forUpdate: true, fhirBaseUrl: ctx.settings.fhirBaseUrl });
  if (!current) throw notFound(`${type}/${id} not found`);
  if (current.deleted) throw gone(`${type}/${id} was deleted`);
  await assertContentAllowed(ctx.access, q, 'patch', type, current.resource as Resource, ctx.settings.fhirBaseUrl);
  checkIfMatch(req.ifMatch, current, `${type}/${id}`);
  const patched = applyPatch(current.resource as Resource, req);
  if (patched.resourceType !== type || patched.id !== id) throw badRequest('A patch may not change resourceType or id');
  await assertContentAllowed(ctx.access, q, 'patch', type, patched, ctx.settings.fhirBaseUrl);
  validateForWrite(ctx, patched);
  return writeOver(ctx, q, { ...req, ifMatch: undefined }, type, id, patched, current, 'PATCH');
}

function applyPatch(resource: Resource, req: FhirRequest): Resource {
  const kind = req.contentType ?? '';
  if (kind === 'application/json-patch+json') return applyJsonPatch(resource, req.body);
  if (kind === 'application/fhir+json' || kind === 'application/json') {
    const body = req.body as { resourceType?: string } | undefined;
    if (Array.isArray(body)) return applyJsonPatch(resource, body);
    if (body?.resourceType !== 'Parameters') throw badRequest('A FHIRPath Patch must be a Parameters resource');
    return applyFhirPathPatch(resource, body as Parameters);
  }
  throw unsupportedMediaType(`PATCH needs application/json-patch+json or application/fhir+json, not ${kind || 'none'}`);
}
