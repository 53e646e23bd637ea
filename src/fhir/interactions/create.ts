/**
 * create: POST [type], conditional create with If-None-Exist.
 * https://hl7.org/fhir/R4/http.html#create — https://hl7.org/fhir/R4/http.html#ccreate
 */
import { randomUUID } from 'node:crypto';
import { assertAllowed } from '../../access/context';
import { lockCriteria } from '../../storage/repository';
import { inTransaction, type FhirContext, type FhirRequest, type FhirResponse } from '../context';
import { preconditionFailed } from '../outcomes';
import { assertBodyResource, assertResourceType, writeResponse } from '../resources';
import { matchCriteria, resolveConditionalReferences, storeVersion, validateForWrite } from './write';

/** `assignedId`: the id a transaction Bundle reserved for this entry (so urn:uuid references resolve to it). */
export async function create(ctx: FhirContext, req: FhirRequest, type: string, assignedId?: string): Promise<FhirResponse> {
  assertResourceType(type);
  const resource = assertBodyResource(req.body, type);
  assertAllowed(ctx.access, 'create', type, resource);
  validateForWrite(ctx, resource);
  return inTransaction(ctx, async (q) => {
    if (req.ifNoneExist) {
      // Two concurrent conditional creates with the same criteria must not both create (serialized here).
      await lockCriteria(q, `${type}?${req.ifNoneExist}`);
      const matches = await matchCriteria(ctx, q, type, req.ifNoneExist);
      if (matches.length > 1) {
        throw preconditionFailed(`If-None-Exist criteria ${req.ifNoneExist} match more than one ${type}`, 'multiple-matches');
      }
      if (matches.length === 1) {
        assertAllowed(ctx.access, 'read', type, matches[0].resource);
        return writeResponse(200, matches[0], ctx.settings.fhirBaseUrl, req.prefer, 'Resource already exists');
      }
    }
    await resolveConditionalReferences(ctx, q, resource);
    // A client-supplied id on POST is ignored: the server assigns ids (https://hl7.org/fhir/R4/http.html#create).
    const v = await storeVersion(ctx, q, { resourceType: type, id: assignedId ?? randomUUID(), versionId: 1, method: 'POST', resource });
    return writeResponse(201, v, ctx.settings.fhirBaseUrl, req.prefer, `Created ${type}/${v.id}`);
  });
}
