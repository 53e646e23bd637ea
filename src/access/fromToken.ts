/**
 * Turns a verified token's grant into the AccessContext a request carries. For a practitioner it also
 * looks up, once per request, the PractitionerRoles that are theirs and the Schedules they own (actor is
 * them or one of their roles), which decide their Slot writes, and the Consents that open patients' documents to
 * them now (consent.ts).
 */
import type { Database } from '../storage/database';
import { referencingIds } from '../storage/repository';
import { loadConsentDecision } from './consent';
import type { AccessContext, Caller } from './context';
import { createAccessContext } from './policy';

export interface TokenGrant {
  caller: Caller;
  scopes: readonly string[];
  patient?: string;
}

export async function accessForGrant(db: Database, grant: TokenGrant, fhirBaseUrl: string): Promise<AccessContext> {
  const { caller } = grant;
  if (caller.kind !== 'practitioner' || !caller.fhirUser?.startsWith('Practitioner/')) {
    return createAccessContext({ caller, scopes: grant.scopes, patient: grant.patient, fhirBaseUrl });
  }
  const practitionerId = caller.fhirUser.slice('Practitioner/'.length);
  const roles = await referencingIds(db, 'PractitionerRole', ['practitioner'], [{ type: 'Practitioner', id: practitionerId }]);
  const schedules = new Set(
    await referencingIds(db, 'Schedule', ['actor'], [
      { type: 'Practitioner', id: practitionerId },
      ...roles.map((id) => ({ type: 'PractitionerRole', id })),
    ]),
  );
  return createAccessContext({
    caller,
    scopes: grant.scopes,
    patient: grant.patient,
    fhirBaseUrl,
    practitionerRoles: roles,
    ownsSchedule: (scheduleId) => schedules.has(scheduleId),
    consent: await loadConsentDecision(db, practitionerId, roles, fhirBaseUrl),
  });
}
