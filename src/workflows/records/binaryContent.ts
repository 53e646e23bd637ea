/**
 * The Binary workflow (issue 13): a Binary's bytes are never in its stored JSON. They arrive as an encrypted
 * upload made before the write's transaction (src/http/binary.ts, or a DocumentReference's inline data,
 * attachments.ts), which the request's context carries to this hook as pending content keyed by Binary id; the
 * hook links it to the version being written, in the same transaction. A patch keeps the content of the version
 * before it. `data` reaching a write any other way (inside a Bundle, a JSON Patch adding it) is refused: the
 * bytes would be stored in plaintext.
 *
 * The content is bound to the patient it belongs to (its encryption context): a write that would move a
 * Binary with content to another patient is refused; a new upload is the way to do that.
 */
import type { Binary, Resource } from '@medplum/fhirtypes';
import type { Blobs, PendingContent } from '../../blobs';
import { compartmentPatients, localReference } from '../../access/compartment';
import type { FhirContext, WriteEvent } from '../../fhir/context';
import { conflict, unprocessable } from '../../fhir/outcomes';
import type { Queryable } from '../../storage/database';
import { readCurrent } from '../../storage/repository';
import type { TypeHook } from '..';

const PENDING = Symbol('pending Binary content');

type WithPending = FhirContext & { [PENDING]?: Map<string, PendingContent> };

/** A context whose writes of the Binaries named in `pending` link that content (spreads of it keep the map). */
export function withPending(ctx: FhirContext, pending: Map<string, PendingContent>): FhirContext {
  return Object.assign({ ...ctx }, { [PENDING]: pending });
}

export function pendingOf(ctx: FhirContext): Map<string, PendingContent> | undefined {
  return (ctx as WithPending)[PENDING];
}

/**
 * The patient a Binary's content belongs to: its securityContext's Patient, or the one patient in whose
 * compartment the resource it names is (a DocumentReference's subject); '' when none.
 */
export async function patientOf(q: Queryable, reference: string | undefined, fhirBaseUrl: string): Promise<string> {
  const target = localReference(reference, fhirBaseUrl);
  if (!target) return '';
  if (target.type === 'Patient') return target.id;
  const holder = await readCurrent(q, target.type, target.id);
  if (!holder?.resource) return '';
  return patientOfResource(holder.resource, fhirBaseUrl);
}

export function patientOfResource(resource: Resource, fhirBaseUrl: string): string {
  const patients = [...compartmentPatients(resource, fhirBaseUrl)];
  return patients.length === 1 ? patients[0] : '';
}

export function binaryHook(blobs: Blobs): TypeHook {
  return {
    async beforeWrite(ctx: FhirContext, q: Queryable, event: WriteEvent): Promise<void> {
      const next = event.next as Binary | undefined;
      if (!next) return;
      const pending = pendingOf(ctx)?.get(event.id);
      if (next.data !== undefined && !pending) {
        throw unprocessable(
          'Binary.data is stored encrypted, so it is sent only as POST /fhir/Binary or PUT /fhir/Binary/[id] (raw bytes or a Binary resource), not inside a Bundle or a patch',
          'Binary.data',
        );
      }
      delete next.data;
      const patient = await patientOf(q, next.securityContext?.reference, ctx.settings.fhirBaseUrl);
      if (pending) {
        if (!pending.patientUnknown && pending.patient !== patient) throw conflict(`The securityContext of Binary/${event.id} changed during the upload; retry`);
        return;
      }
      if (event.method !== 'PATCH') return;
      const before = await blobs.previousContent(q, event.id, 2_147_483_647);
      if (before && before.patient !== patient) {
        throw unprocessable(`The content of Binary/${event.id} belongs to another patient: upload it again instead of changing securityContext`, 'Binary.securityContext');
      }
    },
    async afterWrite(ctx: FhirContext, q: Queryable, event: WriteEvent): Promise<void> {
      if (!event.next) return;
      const versionId = Number(event.next.meta?.versionId);
      const pending = pendingOf(ctx)?.get(event.id);
      if (pending) await blobs.record(q, pending, versionId);
      else if (event.method === 'PATCH') await blobs.carryOver(q, event.id, versionId);
    },
  };
}
