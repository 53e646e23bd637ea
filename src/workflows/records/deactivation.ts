/**
 * What deactivating a patient's account does to their record (LGPD; issue 13), inside the caller's transaction,
 * as the server (system access) and through the ordinary writes, so every rule applies: the active Consents
 * become inactive (their grants go with them: src/workflows/records/consent.ts), the future live Appointments are
 * cancelled with a reason (their Slots freed and the other participants told: src/workflows/scheduling/booking.ts),
 * and `Patient.active` becomes false. Nothing is deleted: Brazilian law keeps medical records for 20 years
 * (Lei 13.787/2018). Reactivation sets `Patient.active` back; Consents and Appointments stay as they are.
 */
import type { Appointment, Consent, Patient, Resource } from '@medplum/fhirtypes';
import { systemContext } from '../../access/context';
import type { FhirContext, FhirServices } from '../../fhir/context';
import { storeVersion } from '../../fhir/interactions/write';
import type { Queryable } from '../../storage/database';
import { readCurrent, referencingIds, type StoredVersion } from '../../storage/repository';

export const DEACTIVATION_REASON = 'Conta do paciente desativada';

export interface DeactivationSummary {
  consentsRevoked: number;
  appointmentsCancelled: number;
}

async function rewrite(ctx: FhirContext, q: Queryable, current: StoredVersion, next: Resource): Promise<void> {
  await storeVersion(ctx, q, { resourceType: current.resourceType, id: current.id, versionId: current.versionId + 1, method: 'PUT', resource: next }, current.resource);
}

async function lockedCurrent(q: Queryable, type: string, ids: string[]): Promise<StoredVersion[]> {
  const out: StoredVersion[] = [];
  for (const id of [...new Set(ids)].sort()) {
    const v = await readCurrent(q, type, id, { forUpdate: true });
    if (v && !v.deleted && v.resource) out.push(v);
  }
  return out;
}

export async function deactivateRecord(services: FhirServices, q: Queryable, patientId: string): Promise<DeactivationSummary> {
  const ctx: FhirContext = { ...services, access: systemContext() };
  const target = [{ type: 'Patient', id: patientId }];
  let consentsRevoked = 0;
  for (const c of await lockedCurrent(q, 'Consent', await referencingIds(q, 'Consent', ['patient'], target))) {
    if ((c.resource as Consent).status !== 'active') continue;
    await rewrite(ctx, q, c, { ...(c.resource as Consent), status: 'inactive' });
    consentsRevoked++;
  }
  let appointmentsCancelled = 0;
  const now = Date.now();
  for (const a of await lockedCurrent(q, 'Appointment', await referencingIds(q, 'Appointment', ['patient', 'actor'], target))) {
    const appointment = a.resource as Appointment;
    if (!['pending', 'booked'].includes(appointment.status) || !(appointment.start && Date.parse(appointment.start) > now)) continue;
    await rewrite(ctx, q, a, { ...appointment, status: 'cancelled', cancelationReason: { text: DEACTIVATION_REASON } });
    appointmentsCancelled++;
  }
  await setActive(ctx, q, patientId, false);
  return { consentsRevoked, appointmentsCancelled };
}

export async function reactivateRecord(services: FhirServices, q: Queryable, patientId: string): Promise<void> {
  await setActive({ ...services, access: systemContext() }, q, patientId, true);
}

async function setActive(ctx: FhirContext, q: Queryable, patientId: string, active: boolean): Promise<void> {
  const patient = await readCurrent(q, 'Patient', patientId, { forUpdate: true });
  if (!patient || patient.deleted || !patient.resource) return;
  if ((patient.resource as Patient).active === active) return;
  await rewrite(ctx, q, patient, { ...(patient.resource as Patient), active });
}
