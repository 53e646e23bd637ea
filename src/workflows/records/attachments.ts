/**
 * A DocumentReference with inline `content[].attachment.data` (CONTRACT section 6): the bytes become a Binary of
 * their own, stored encrypted (src/blobs/), and the stored DocumentReference keeps `url` (`Binary/<id>`), `size`
 * and `hash` (SHA-1 of the bytes, base64, computed by the server; https://hl7.org/fhir/R4/datatypes.html#Attachment).
 *
 * Two steps, so that no upload runs inside a database transaction (STYLE): `prepareAttachments`, before the
 * write, encrypts and stores each inline attachment under a new Binary id and puts that id in the attachment's
 * `url`; the DocumentReference hook, inside the write's transaction, fills in `size` and `hash` and writes each
 * Binary (securityContext the DocumentReference) with its content linked. A write that fails or is refused
 * rolls both back, and the request discards the uploaded objects (an object whose write never committed, e.g.
 * after a crash, has no row holding its data key: it cannot be read, and `Blobs.sweepOrphans` removes it).
 *
 * A batch or transaction Bundle's DocumentReference entries are prepared the same way, before the Bundle runs (a
 * Synthea record carries one clinical note per encounter this way). Inline data a request did not prepare (added
 * by a patch) is refused with 422: its upload would run inside the write's transaction.
 */
import type { Attachment, Binary, DocumentReference, Resource } from '@medplum/fhirtypes';
import { systemContext } from '../../access/context';
import { localReference } from '../../access/compartment';
import type { Blobs, PendingContent } from '../../blobs';
import type { FhirContext, FhirRequest, WriteEvent } from '../../fhir/context';
import { storeVersion, matchCriteria } from '../../fhir/interactions/write';
import { badRequest, unprocessable } from '../../fhir/outcomes';
import { newResourceId } from '../../fhir/resources';
import type { Queryable } from '../../storage/database';
import { Readable } from 'node:stream';
import type { TypeHook } from '..';
import { patientOfResource, pendingOf, withPending } from './binaryContent';

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export function decodeBase64(value: string, where: string): Buffer {
  const compact = value.replace(/\s+/g, '');
  if (compact.length % 4 !== 0 || !BASE64.test(compact)) throw badRequest(`${where} is not base64`, where);
  return Buffer.from(compact, 'base64');
}

const attachments = (doc: DocumentReference): Attachment[] => (doc.content ?? []).map((c) => c.attachment).filter((a): a is Attachment => !!a);

/**
 * Before a POST or PUT of a DocumentReference, or a batch or transaction Bundle with such entries: uploads their
 * inline attachments. Returns the context that carries them to the hooks, and `release`, which discards every
 * upload no committed version linked.
 */
export async function prepareAttachments(
  blobs: Blobs,
  ctx: FhirContext,
  req: FhirRequest,
): Promise<{ ctx: FhirContext; release(failed: boolean): Promise<void> } | undefined> {
  const docs = documentsOf(req).filter((doc) => attachments(doc).some((a) => a.data !== undefined));
  if (docs.length === 0) return undefined;
  const pending = new Map<string, PendingContent>();
  const release = async (failed: boolean) => {
    for (const p of pending.values()) await blobs.discard(p, failed);
  };
  try {
    for (const doc of docs) {
      // No Binary scope is needed: the bytes are the document's own content, and the Binary follows the document.
      const patient = await subjectPatient(ctx, doc);
      for (const [i, attachment] of attachments(doc).entries()) {
        if (attachment.data === undefined) continue;
        const where = `DocumentReference.content[${i}].attachment.data`;
        const bytes = decodeBase64(attachment.data, where);
        const contentType = attachment.contentType?.split(';')[0].trim().toLowerCase();
        if (!contentType) throw unprocessable('An attachment with data needs its contentType', 'DocumentReference.content.attachment.contentType');
        const binaryId = newResourceId();
        const upload = await blobs.upload(binaryId, patient ?? '', contentType, Readable.from([bytes]));
        pending.set(binaryId, patient === undefined ? { ...upload, patientUnknown: true } : upload);
        delete attachment.data;
        attachment.url = `Binary/${binaryId}`;
      }
    }
  } catch (err) {
    await release(true);
    throw err;
  }
  return { ctx: withPending(ctx, pending), release };
}

/** The DocumentReferences a request writes: its body, or its Bundle's POST and PUT entries. */
function documentsOf(req: FhirRequest): DocumentReference[] {
  const body = req.body as Resource | undefined;
  const segments = req.path.split('/').filter((s) => s !== '');
  if (body?.resourceType === 'DocumentReference' && segments[0] === 'DocumentReference' && segments.length <= 2 && ['POST', 'PUT'].includes(req.method)) {
    return [body];
  }
  if (body?.resourceType === 'Bundle' && segments.length === 0 && req.method === 'POST' && (body.type === 'batch' || body.type === 'transaction')) {
    return (Array.isArray(body.entry) ? body.entry : [])
      .filter((e) => e?.resource?.resourceType === 'DocumentReference' && (e.request?.method === 'POST' || e.request?.method === 'PUT'))
      .map((e) => e.resource as DocumentReference);
  }
  return [];
}

/**
 * The patient the document is about, as the write will store it (a conditional subject resolved the same way);
 * undefined when it cannot be known before the write: a Bundle entry's `urn:uuid:` subject, which the transaction
 * resolves to a resource it creates. Such content is bound to its Binary id alone.
 */
async function subjectPatient(ctx: FhirContext, doc: DocumentReference): Promise<string | undefined> {
  const ref = doc.subject?.reference;
  if (ref?.startsWith('urn:')) return undefined;
  const conditional = ref && /^Patient\?(.+)$/.exec(ref);
  if (conditional) {
    const matches = await matchCriteria(ctx, ctx.db, ctx.access.can('search', 'Patient') ? 'search' : 'everywhere', 'Patient', conditional[1]);
    return matches.length === 1 ? matches[0].id : '';
  }
  return patientOfResource(doc, ctx.settings.fhirBaseUrl);
}

export function documentReferenceHook(): TypeHook {
  return {
    async beforeWrite(ctx: FhirContext, _q: Queryable, event: WriteEvent): Promise<void> {
      const next = event.next as DocumentReference | undefined;
      if (!next) return;
      const pending = pendingOf(ctx);
      for (const a of attachments(next)) {
        if (a.data !== undefined) {
          throw unprocessable('Inline attachment data is accepted on POST or PUT of one DocumentReference, not inside a Bundle or a patch', 'DocumentReference.content.attachment.data');
        }
        const p = binaryOf(ctx, a, pending);
        if (p) {
          a.size = p.size;
          a.hash = p.sha1;
        }
      }
    },
    async afterWrite(ctx: FhirContext, q: Queryable, event: WriteEvent): Promise<void> {
      const next = event.next as DocumentReference | undefined;
      const pending = pendingOf(ctx);
      if (!next || !pending) return;
      // The Binary is the document's part: written by the workflow, whoever may write the document.
      const writer: FhirContext = { ...ctx, access: systemContext(), byWorkflow: true };
      for (const a of attachments(next)) {
        const p = binaryOf(ctx, a, pending);
        if (!p || p.recorded) continue;
        const binary: Binary = { resourceType: 'Binary', contentType: a.contentType as string, securityContext: { reference: `DocumentReference/${event.id}` } };
        await storeVersion(writer, q, { resourceType: 'Binary', id: p.binaryId, versionId: 1, method: 'POST', resource: binary });
      }
    },
  };
}

function binaryOf(ctx: FhirContext, a: Attachment, pending: Map<string, PendingContent> | undefined): PendingContent | undefined {
  const target = localReference(a.url, ctx.settings.fhirBaseUrl);
  return target?.type === 'Binary' ? pending?.get(target.id) : undefined;
}
