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
 * Inside a Bundle inline data is refused (422): the entries' uploads would run inside the Bundle's transaction.
 */
import type { Attachment, Binary, DocumentReference } from '@medplum/fhirtypes';
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
 * Before a POST or PUT of one DocumentReference: uploads its inline attachments. Returns the context that
 * carries them to the hooks, and `release`, which discards every upload no committed version linked.
 */
export async function prepareAttachments(
  blobs: Blobs,
  ctx: FhirContext,
  req: FhirRequest,
): Promise<{ ctx: FhirContext; release(failed: boolean): Promise<void> } | undefined> {
  const segments = req.path.split('/').filter((s) => s !== '');
  if (segments[0] !== 'DocumentReference' || segments.length > 2 || !['POST', 'PUT'].includes(req.method)) return undefined;
  const doc = req.body as DocumentReference | undefined;
  if (doc?.resourceType !== 'DocumentReference') return undefined;
  const inline = attachments(doc).filter((a) => a.data !== undefined);
  if (inline.length === 0) return undefined;
  // No Binary scope is needed: the bytes are the document's own content, and the Binary follows the document.
  const patient = await subjectPatient(ctx, doc);
  const pending = new Map<string, PendingContent>();
  const release = async (failed: boolean) => {
    for (const p of pending.values()) await blobs.discard(p, failed);
  };
  try {
    for (const [i, attachment] of inline.entries()) {
      const where = `DocumentReference.content[${i}].attachment.data`;
      const bytes = decodeBase64(attachment.data as string, where);
      const contentType = attachment.contentType?.split(';')[0].trim().toLowerCase();
      if (!contentType) throw unprocessable('An attachment with data needs its contentType', 'DocumentReference.content.attachment.contentType');
      const binaryId = newResourceId();
      pending.set(binaryId, await blobs.upload(binaryId, patient, contentType, Readable.from([bytes])));
      delete attachment.data;
      attachment.url = `Binary/${binaryId}`;
    }
  } catch (err) {
    await release(true);
    throw err;
  }
  return { ctx: withPending(ctx, pending), release };
}

/** The patient the document is about, as the write will store it (a conditional subject resolved the same way). */
async function subjectPatient(ctx: FhirContext, doc: DocumentReference): Promise<string> {
  const ref = doc.subject?.reference;
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
