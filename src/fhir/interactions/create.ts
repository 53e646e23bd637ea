/**
 * create: POST [type], conditional create with If-None-Exist.
 * https://hl7.org/fhir/R4/http.html#create — https://hl7.org/fhir/R4/http.html#ccreate
 */
import { assertContentAllowed, gate } from '../../access/visible';
import { lockCriteria } from '../../storage/repository';
import type { Queryable } from '../../storage/database';
import { inTransaction, reader, type FhirContext, type FhirRequest, type FhirResponse } from '../context';
import { preconditionFailed } from '../outcomes';
import { assertBodyResource, assertResourceType, newResourceId, writeResponse } from '../resources';
import { matchCriteria, resolveConditionalReferences, storeVersion, validateForWrite } from './write';

/** `assignedId`: the id a transaction Bundle reserved for this entry (so urn:uuid references resolve to it). */
export async function create(ctx: FhirContext, req: FhirRequest, type: string, assignedId?: string): Promise<FhirResponse> {
  assertResourceType(type);
  const resource = assertBodyResource(req.body, type);
  gate(ctx.access, 'create', type);
  validateForWrite(ctx, resource);
  const insert = async (q: Queryable): Promise<FhirResponse> => {
    await resolveConditionalReferences(ctx, q, resource, 'create');
    // Decided on the resolved body: a conditional reference cannot carry the resource out of the caller's reach.
    await assertContentAllowed(ctx.access, q, 'create', type, resource, ctx.settings.fhirBaseUrl);
    // A client-supplied id on POST is ignored: the server assigns ids (https://hl7.org/fhir/R4/http.html#create).
    const v = await storeVersion(ctx, q, { resourceType: type, id: assignedId ?? newResourceId(), versionId: 1, method: 'POST', resource });
    return writeResponse(201, v, ctx.settings.fhirBaseUrl, req.prefer, `Created ${type}/${v.id}`);
  };
  // A plain create is one atomic statement; a conditional create needs a transaction (for its lock), and so does
  // a create whose workflow writes more than the resource in several statements (a booking writes all of its
  // rows in one: src/storage/bookingWrite.ts).
  if (!req.ifNoneExist) {
    const workflow = ctx.workflows?.handles(type) && (ctx.workflows.createNeedsTransaction?.(resource) ?? true);
    return workflow ? inTransaction(ctx, insert) : insert(reader(ctx));
  }
  const criteria = req.ifNoneExist;
  return inTransaction(ctx, async (q) => {
    // Two concurrent conditional creates with the same criteria must not both create (serialized here).
    await lockCriteria(q, `${type}?${criteria}`);
    // Only what the caller may search matches (or, without search, their own reach by identifier): src/access/visible.ts.
    const matches = await matchCriteria(ctx, q, 'create', type, criteria);
    if (matches.length > 1) {
      throw preconditionFailed(`If-None-Exist criteria ${criteria} match more than one ${type}`, 'multiple-matches');
    }
    if (matches.length === 1) {
      const match = matches[0];
      // A lab re-pushing a document may create but not read: it learns that its identifier is known, not the content.
      const prefer = ctx.access.can('read', type, match.resource) ? req.prefer : 'return=minimal';
      return writeResponse(200, match, ctx.settings.fhirBaseUrl, prefer, 'Resource already exists');
    }
    return insert(q);
  });
}
