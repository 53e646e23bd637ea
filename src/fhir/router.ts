/**
 * Maps a FhirRequest to its interaction (https://hl7.org/fhir/R4/http.html#summary). No web framework here:
 * the HTTP layer and the batch/transaction processor both call `route`.
 */
import type { OperationOutcome, OperationOutcomeIssue } from '@medplum/fhirtypes';
import type { FhirContext, FhirRequest, FhirResponse } from './context';
import { capabilities } from './operations/capabilities';
import { invokeOperation } from './operations';
import { batchOrTransaction } from './interactions/batch';
import { create } from './interactions/create';
import { conditionalDelete, deleteResource } from './interactions/delete';
import { history } from './interactions/history';
import { conditionalPatch, patch } from './interactions/patch';
import { read, vread } from './interactions/read';
import { searchCompartment, searchSystem, searchType } from './interactions/search';
import { conditionalUpdate, update } from './interactions/update';
import { badRequest, methodNotAllowed, notFound } from './outcomes';

/** Control characters (NUL included) and a decoded `/` never belong to a type, id, version or operation name. */
const FORBIDDEN_IN_SEGMENT = /[\u0000-\u001f\u007f/]/;

/**
 * One path segment, percent-decoded (https://www.rfc-editor.org/rfc/rfc3986#section-2.1). A malformed escape
 * (`%`, `%ZZ`, `%E0%A4%A`), an escape of invalid UTF-8, or a segment decoding to a control character or a `/`
 * is the client's mistake: 400, not a 500 and not a 404 for a path that cannot exist.
 */
function decodeSegment(segment: string): string {
  const shown = segment.length > 64 ? `${segment.slice(0, 64)}...` : segment;
  let decoded: string;
  try {
    decoded = decodeURIComponent(segment);
  } catch {
    throw badRequest(`Malformed percent-encoding in the path segment '${shown}'`);
  }
  if (FORBIDDEN_IN_SEGMENT.test(decoded)) throw badRequest(`The path segment '${shown}' decodes to a control character or a '/'`);
  return decoded;
}

/** Each routed request gets its own list of notes (FhirContext.notes), added to an OperationOutcome answer. */
export async function route(ctx: FhirContext, req: FhirRequest): Promise<FhirResponse> {
  const notes: OperationOutcomeIssue[] = [];
  const withNotes: FhirContext = { ...ctx, notes };
  const res = await dispatch(withNotes, req);
  if (notes.length === 0 || res.body?.resourceType !== 'OperationOutcome') return res;
  const body = res.body as OperationOutcome;
  return { ...res, body: { ...body, issue: [...(body.issue ?? []), ...notes] } };
}

async function dispatch(ctx: FhirContext, req: FhirRequest): Promise<FhirResponse> {
  const segments = req.path.split('/').filter((s) => s.length > 0).map(decodeSegment);
  const [first, second, third, fourth] = segments;
  const method = req.method === 'HEAD' ? 'GET' : req.method;
  const none = () => methodNotAllowed(`${req.method} is not allowed on /${req.path}`);
  // Every $operation, at every level, from one table (./operations)
  if (segments.some((seg) => seg.startsWith('$'))) return invokeOperation(ctx, req, segments);

  switch (segments.length) {
    case 0:
      if (method === 'POST') return batchOrTransaction(ctx, req, route);
      if (method === 'GET') return searchSystem(ctx, req);
      throw none();
    case 1:
      if (first === 'metadata') {
        if (method === 'GET') return capabilities(ctx);
        throw none();
      }
      if (first === '_history') {
        if (method === 'GET') return history(ctx, req);
        throw none();
      }
      if (first === '_search') {
        if (method === 'POST') return searchSystem(ctx, req);
        throw none();
      }
      if (method === 'GET') return searchType(ctx, req, first);
      if (method === 'POST') return create(ctx, req, first);
      if (method === 'PUT') return conditionalUpdate(ctx, req, first);
      if (method === 'PATCH') return conditionalPatch(ctx, req, first);
      if (method === 'DELETE') return conditionalDelete(ctx, req, first);
      throw none();
    case 2:
      if (second === '_search') {
        if (method === 'POST') return searchType(ctx, req, first);
        throw none();
      }
      if (second === '_history') {
        if (method === 'GET') return history(ctx, req, first);
        throw none();
      }
      if (method === 'GET') return read(ctx, req, first, second);
      if (method === 'PUT') return update(ctx, req, first, second);
      if (method === 'PATCH') return patch(ctx, req, first, second);
      if (method === 'DELETE') return deleteResource(ctx, req, first, second);
      throw none();
    case 3:
      if (third === '_history' && method === 'GET') return history(ctx, req, first, second);
      if (third !== '_history' && method === 'GET') return searchCompartment(ctx, req, first, second, third);
      throw third === '_history' ? none() : notFound(`Unknown path /${req.path}`);
    case 4:
      if (third === '_history' && method === 'GET') return vread(ctx, req, first, second, fourth);
      if (fourth === '_search' && method === 'POST') return searchCompartment(ctx, req, first, second, third);
      throw third === '_history' ? none() : notFound(`Unknown path /${req.path}`);
    default:
      throw notFound(`Unknown path /${req.path}`);
  }
}
