/**
 * read and vread, with If-None-Match / If-Modified-Since (304) and _summary/_elements.
 * https://hl7.org/fhir/R4/http.html#read — https://hl7.org/fhir/R4/http.html#vread
 */
import { findVisible, gate } from '../../access/visible';
import { readVersion, type StoredVersion } from '../../storage/repository';
import { reader, type FhirContext, type FhirRequest, type FhirResponse } from '../context';
import { badRequest, gone, notFound } from '../outcomes';
import { assertId, assertResourceType, parseETag, versionHeaders } from '../resources';
import { applySubsetting, parseSubsetting } from '../summary';
import { builtinOperationDefinition } from '../operations/definitions';

export async function read(ctx: FhirContext, req: FhirRequest, type: string, id: string): Promise<FhirResponse> {
  assertResourceType(type);
  assertId(id);
  gate(ctx.access, 'read', type);
  const builtin = type === 'OperationDefinition' ? builtinOperationDefinition(id) : undefined;
  if (builtin) return respond(req, builtin, `${type}/${id}`);
  const v = await findVisible(ctx.access, reader(ctx), 'read', type, id, { fhirBaseUrl: ctx.settings.fhirBaseUrl });
  if (!v) throw notFound(`${type}/${id} not found`);
  return respond(req, v, `${type}/${id}`);
}

export async function vread(ctx: FhirContext, req: FhirRequest, type: string, id: string, versionId: string): Promise<FhirResponse> {
  assertResourceType(type);
  assertId(id);
  gate(ctx.access, 'vread', type);
  const missing = () => notFound(`Version ${versionId.slice(0, 40)} of ${type}/${id} not found`);
  if (!/^\d{1,18}$/.test(versionId)) throw missing();
  // The versions of a resource are the caller's when the resource is (history.ts: the history of what they see now).
  const q = reader(ctx);
  const current = await findVisible(ctx.access, q, 'vread', type, id, { fhirBaseUrl: ctx.settings.fhirBaseUrl });
  const v = current && (await readVersion(q, type, id, Number(versionId)));
  if (!v) throw missing();
  return respond(req, v, `${type}/${id}/_history/${versionId}`);
}

/** Answers a version the caller may read (findVisible decided): 410 for a tombstone, 304, or the content. */
function respond(req: FhirRequest, v: StoredVersion, label: string): FhirResponse {
  if (v.deleted) {
    // A deleted resource answers 410 with its version headers, so a client can see what was deleted when.
    const err = gone(`${label} was deleted`);
    const { etag, lastModified } = versionHeaders(v);
    Object.assign(err.headers, { ETag: etag, 'Last-Modified': lastModified });
    throw err;
  }
  const headers = versionHeaders(v);
  if (req.ifNoneMatch && req.ifNoneMatch.split(',').some((t) => parseETag(t) === String(v.versionId) || t.trim() === '*')) {
    return { status: 304, ...headers };
  }
  if (req.ifModifiedSince) {
    const since = Date.parse(req.ifModifiedSince);
    if (Number.isNaN(since)) throw badRequest('Invalid If-Modified-Since');
    // HTTP dates have whole-second precision
    if (Math.floor(Date.parse(v.lastUpdated) / 1000) <= Math.floor(since / 1000)) return { status: 304, ...headers };
  }
  const subsetting = parseSubsetting(req.query);
  const body = v.resource && (subsetting.summary || subsetting.elements) ? applySubsetting(v.resource, subsetting) : v.resource;
  return { status: 200, body, ...headers };
}
