/**
 * The raw Binary routes (https://hl7.org/fhir/R4/binary.html#rest, CONTRACT section 6), before the FHIR
 * handler: `POST /fhir/Binary` and `PUT /fhir/Binary/[id]` with the bytes as the body and their Content-Type
 * (`X-Security-Context: <reference>` optional), or a Binary resource with `data`; `GET`/`HEAD`
 * `/fhir/Binary/[id]` (and `/_history/[vid]`): raw bytes for `Accept` the content type or `*` + `/*` (with
 * Content-Length, a strong ETag, Range: 206/416), the Binary resource for a FHIR JSON `Accept` or `_format`.
 *
 * The Binary resource answer carries `data` (R4 Binary has no link to its content, and a FHIR client reading
 * a Binary as JSON expects its bytes there): streamed as base64 from the decrypting stream, so a large object
 * never sits whole in memory here either. `_summary` or `_elements` leave it out, as for any element not in
 * the summary. Every interaction goes through the same gate, visibility and write path as any FHIR request
 * (src/access/visible.ts): a Binary follows its securityContext.
 */
import type { Context, Middleware, Next } from 'koa';
import type { Binary } from '@medplum/fhirtypes';
import type { Readable } from 'node:stream';
import { Readable as ReadableStream } from 'node:stream';
import { assertContentAllowed, findVisible, gate } from '../access/visible';
import type { AccessContext } from '../access/context';
import { localReference } from '../access/compartment';
import { IntegrityError, UploadError, type Blobs } from '../blobs';
import type { FhirRequest, FhirResponse, FhirServices } from '../fhir/context';
import { create } from '../fhir/interactions/create';
import { update } from '../fhir/interactions/update';
import { route } from '../fhir/router';
import { badRequest, gone, notAcceptable, notFound, OperationOutcomeError, outcome } from '../fhir/outcomes';
import { assertBodyResource, assertId, newResourceId, parseETag } from '../fhir/resources';
import { readVersion } from '../storage/repository';
import { logger } from '../logger';
import { decodeBase64 } from '../workflows/records/attachments';
import { patientOf, withPending } from '../workflows/records/binaryContent';
import { mediaType, readBody } from './body';
import type { Authenticator } from './fhir';
import { writeFhirResponse } from './respond';

const JSON_TYPES = new Set(['application/fhir+json', 'application/json', 'application/json+fhir']);
const PATH = /^\/fhir\/Binary(?:\/([^/]+)(?:\/_history\/([^/]+))?)?\/?$/;

export function binaryRoutes(services: FhirServices, blobs: Blobs, maxJsonBytes: number, authenticate: Authenticator): Middleware {
  return async (ctx: Context, next: Next) => {
    const m = PATH.exec(ctx.path);
    if (!m) return next();
    const [, id, vid] = m;
    const isRead = ctx.method === 'GET' || ctx.method === 'HEAD';
    const isWrite = (ctx.method === 'POST' && !id) || (ctx.method === 'PUT' && id && !vid);
    if (!(isRead && id) && !isWrite) return next();
    ctx.state.route = 'Binary';
    const access = await authenticate(ctx.get('authorization') || undefined);
    try {
      if (isWrite) return await upload(ctx, { services, blobs, maxJsonBytes }, access, id);
      return await download(ctx, services, blobs, access, decodeURIComponent(id), vid && decodeURIComponent(vid));
    } catch (err) {
      if (err instanceof UploadError) {
        const code = err.status === 413 ? 'too-costly' : err.status === 415 ? 'not-supported' : 'invalid';
        // A refused upload may leave unread bytes: the connection closes after the answer.
        if (err.status === 413) ctx.set('Connection', 'close');
        throw new OperationOutcomeError(err.status, outcome('error', code, err.message));
      }
      if (err instanceof IntegrityError) {
        logger.error({ err: err.message, route: 'Binary' }, 'stored Binary content failed its integrity check');
        throw new OperationOutcomeError(500, outcome('fatal', 'exception', 'The stored content of this Binary failed its integrity check'));
      }
      throw err;
    }
  };
}

function fhirRequest(ctx: Context, method: FhirRequest['method'], path: string, body?: Binary): FhirRequest {
  return {
    method,
    path,
    query: new URLSearchParams(ctx.querystring),
    body,
    contentType: body ? 'application/fhir+json' : undefined,
    ifMatch: ctx.get('if-match') || undefined,
    ifNoneExist: ctx.get('if-none-exist') || undefined,
    ifNoneMatch: ctx.get('if-none-match') || undefined,
    ifModifiedSince: ctx.get('if-modified-since') || undefined,
    prefer: ctx.get('prefer') || undefined,
  };
}

async function upload(ctx: Context, deps: { services: FhirServices; blobs: Blobs; maxJsonBytes: number }, access: AccessContext, rawId: string | undefined): Promise<void> {
  const { services, blobs } = deps;
  const id = rawId === undefined ? undefined : decodeURIComponent(rawId);
  if (id !== undefined) assertId(id);
  const interaction = id ? 'update' : 'create';
  gate(access, interaction, 'Binary');
  const fhirBaseUrl = services.settings.fhirBaseUrl;
  const type = mediaType(ctx.get('content-type'));
  let resource: Binary;
  let body: Readable | undefined;
  if (type && JSON_TYPES.has(type)) {
    const parsed = await readBody(ctx, deps.maxJsonBytes);
    resource = assertBodyResource(parsed.body, 'Binary') as Binary;
    if (resource.data !== undefined) {
      body = ReadableStream.from([decodeBase64(resource.data, 'Binary.data')]);
      delete resource.data;
    }
    const contentType = mediaType(resource.contentType);
    if (body) blobs.acceptedType(contentType);
    if (contentType) resource.contentType = contentType;
  } else {
    const accepted = blobs.acceptedType(type);
    const encoding = ctx.get('content-encoding').trim().toLowerCase();
    if (encoding !== '' && encoding !== 'identity') throw new UploadError(415, `Content-Encoding ${encoding} is not supported: send the bytes as they are`);
    const declared = Number(ctx.get('content-length') || NaN);
    if (declared > blobs.maxUploadBytes) throw new UploadError(413, `The upload is larger than ${blobs.maxUploadBytes} bytes (MAX_UPLOAD_MB)`);
    resource = { resourceType: 'Binary', contentType: accepted };
    const context = ctx.get('x-security-context').trim();
    if (context) resource.securityContext = { reference: context };
    body = ctx.req;
  }
  if (id) resource.id = id;
  // A patient's own upload with no context is theirs (otherwise it would be in no compartment, and not theirs to read).
  if (!resource.securityContext && access.caller.kind === 'patient' && access.caller.fhirUser?.startsWith('Patient/')) {
    resource.securityContext = { reference: access.caller.fhirUser };
  }
  const context = resource.securityContext?.reference;
  if (context !== undefined && !localReference(context, fhirBaseUrl)) {
    throw badRequest(`The security context ${context.slice(0, 100)} is not a reference to a resource on this server (Type/id)`, 'Binary.securityContext');
  }
  // Decided before any byte of the body is read: a caller who may not write this Binary uploads nothing.
  await assertContentAllowed(access, services.db, interaction, 'Binary', resource, fhirBaseUrl);
  const binaryId = id ?? newResourceId();
  const req = fhirRequest(ctx, id ? 'PUT' : 'POST', id ? `Binary/${id}` : 'Binary', resource);
  if (!body) {
    const res = id ? await update({ ...services, access }, req, 'Binary', id) : await create({ ...services, access }, req, 'Binary', binaryId);
    return writeFhirResponse(ctx, res);
  }
  const patient = await patientOf(services.db, context, fhirBaseUrl);
  const pending = await blobs.upload(binaryId, patient, resource.contentType as string, body);
  const fctx = withPending({ ...services, access }, new Map([[binaryId, pending]]));
  let res: FhirResponse;
  try {
    res = id ? await update(fctx, req, 'Binary', id) : await create(fctx, req, 'Binary', binaryId);
  } catch (err) {
    await blobs.discard(pending, true);
    throw err;
  }
  // A conditional create that found its match links nothing.
  await blobs.discard(pending);
  writeFhirResponse(ctx, res);
}

/** FHIR JSON asked for by `_format` or `Accept` (https://hl7.org/fhir/R4/binary.html#rest): the Binary resource. */
function wantsResource(ctx: Context): boolean {
  const format = typeof ctx.query._format === 'string' ? ctx.query._format.toLowerCase() : undefined;
  if (format !== undefined) {
    if (/xml/.test(format)) throw notAcceptable(`_format ${format} is not supported: this server serves application/fhir+json`);
    return true;
  }
  const accept = ctx.get('accept').toLowerCase();
  if (/application\/(fhir\+json|json\+fhir|json)/.test(accept)) return true;
  if (/application\/fhir\+xml|application\/xml\+fhir/.test(accept)) throw notAcceptable('This server serves application/fhir+json only');
  return false;
}

async function download(ctx: Context, services: FhirServices, blobs: Blobs, access: AccessContext, id: string, vid: string | undefined): Promise<void> {
  if (wantsResource(ctx)) {
    const path = vid ? `Binary/${id}/_history/${vid}` : `Binary/${id}`;
    const res = await route({ ...services, access }, fhirRequest(ctx, 'GET', path));
    const binary = res.body as Binary | undefined;
    const subset = ctx.query._summary !== undefined && ctx.query._summary !== 'false' && ctx.query._summary !== 'data';
    if (res.status !== 200 || binary?.resourceType !== 'Binary' || subset || ctx.query._elements !== undefined || ctx.method === 'HEAD') {
      return writeFhirResponse(ctx, res);
    }
    const row = await blobs.content(services.db, id, Number(binary.meta?.versionId));
    if (!row) return writeFhirResponse(ctx, res);
    const plaintext = await blobs.open(row);
    writeFhirResponse(ctx, { ...res, body: undefined });
    ctx.status = 200;
    ctx.type = 'application/fhir+json; charset=utf-8';
    const prefix = `${JSON.stringify(binary).slice(0, -1)},"data":"`;
    ctx.length = Buffer.byteLength(prefix) + 4 * Math.ceil(row.size / 3) + 2;
    return sendStream(ctx, ReadableStream.from(base64Json(prefix, plaintext)));
  }
  assertId(id);
  const interaction = vid ? 'vread' : 'read';
  gate(access, interaction, 'Binary');
  const fhirBaseUrl = services.settings.fhirBaseUrl;
  let v = await findVisible(access, services.db, interaction, 'Binary', id, { fhirBaseUrl });
  if (v && vid) v = /^\d{1,18}$/.test(vid) ? await readVersion(services.db, 'Binary', id, Number(vid)) : undefined;
  if (!v) throw notFound(vid ? `Version ${vid.slice(0, 40)} of Binary/${id} not found` : `Binary/${id} not found`);
  if (v.deleted) throw gone(`Binary/${id} was deleted`);
  const binary = v.resource as Binary;
  const etag = `"${v.versionId}"`;
  ctx.set('ETag', etag);
  ctx.set('Last-Modified', new Date(v.lastUpdated).toUTCString());
  ctx.set('Accept-Ranges', 'bytes');
  // The bytes are never to be read as anything but their declared type (no sniffing into HTML).
  ctx.set('X-Content-Type-Options', 'nosniff');
  ctx.set('Content-Security-Policy', "default-src 'none'; sandbox");
  const inm = ctx.get('if-none-match');
  if (inm && inm.split(',').some((t) => t.trim() === '*' || parseETag(t) === String(v.versionId))) {
    ctx.status = 304;
    ctx.body = null;
    return;
  }
  ctx.type = binary.contentType ?? 'application/octet-stream';
  const row = await blobs.content(services.db, id, v.versionId);
  // A Binary stored before attachments were encrypted still has its bytes in its JSON (until it is uploaded again).
  const legacy = !row && binary.data !== undefined ? Buffer.from(binary.data, 'base64') : undefined;
  const size = row?.size ?? legacy?.length ?? 0;
  const range = requestedRange(ctx, size, etag, new Date(v.lastUpdated));
  if (range === 'unsatisfiable') {
    ctx.set('Content-Range', `bytes */${size}`);
    throw new OperationOutcomeError(416, outcome('error', 'invalid', `The range ${ctx.get('range').slice(0, 60)} is outside the ${size} bytes of Binary/${id}`), {
      'Content-Range': `bytes */${size}`,
    });
  }
  if (!row && !legacy) {
    ctx.status = 200;
    ctx.body = ctx.method === 'HEAD' ? null : '';
    ctx.length = 0;
    return;
  }
  if (range) {
    ctx.status = 206;
    ctx.set('Content-Range', `bytes ${range.start}-${range.end}/${size}`);
  } else ctx.status = 200;
  const length = range ? range.end - range.start + 1 : size;
  if (ctx.method === 'HEAD') {
    ctx.body = null;
    ctx.length = length;
    return;
  }
  const plaintext = row ? await blobs.open(row, range) : ReadableStream.from([(legacy as Buffer).subarray(range?.start ?? 0, (range?.end ?? size - 1) + 1)]);
  ctx.length = length;
  sendStream(ctx, plaintext);
}

/**
 * A stream as the body. Koa leaves a response whose stream fails after the headers went hanging; here the
 * connection is destroyed, so the client sees the answer cut short (never bytes that failed authentication).
 */
function sendStream(ctx: Context, stream: Readable): void {
  stream.once('error', (err) => {
    logger.error({ err: err.message, route: 'Binary' }, 'Binary download failed mid-stream');
    ctx.res.destroy(err);
  });
  ctx.body = stream;
}

/** `"data":"<base64>"}` after the resource's other elements: base64 in whole 3-byte groups until the end. */
async function* base64Json(prefix: string, plaintext: Readable): AsyncGenerator<Buffer> {
  yield Buffer.from(prefix);
  let carry = Buffer.alloc(0);
  for await (const chunk of plaintext as AsyncIterable<Buffer>) {
    const all = carry.length ? Buffer.concat([carry, chunk]) : chunk;
    const whole = all.length - (all.length % 3);
    if (whole > 0) yield Buffer.from(all.subarray(0, whole).toString('base64'));
    carry = Buffer.from(all.subarray(whole));
  }
  yield Buffer.from(`${carry.toString('base64')}"}`);
}

/**
 * One byte range of `Range: bytes=...` (RFC 9110 14.2): undefined for the whole content (no Range, several
 * ranges, another unit, or an If-Range that no longer matches), 'unsatisfiable' for a range past the end.
 */
function requestedRange(ctx: Context, size: number, etag: string, modified: Date): { start: number; end: number } | 'unsatisfiable' | undefined {
  const header = ctx.get('range').trim();
  if (!header || (ctx.method !== 'GET' && ctx.method !== 'HEAD')) return undefined;
  const ifRange = ctx.get('if-range').trim();
  if (ifRange && ifRange !== etag && !(Date.parse(ifRange) >= Math.floor(modified.getTime() / 1000) * 1000 && !ifRange.startsWith('"') && !ifRange.startsWith('W/'))) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header);
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'unsatisfiable';
    start = Math.max(size - suffix, 0);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
    if (m[2] !== '' && Number(m[2]) < start) return undefined;
  }
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}
