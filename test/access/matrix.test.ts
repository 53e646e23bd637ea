/**
 * The authorization matrix at the decision level (issue 4, CONTRACT section 4): role × interaction ×
 * resource kind -> allowed, 403, 404, or (for search and _include) silently left out of the results.
 * Search and include columns are checked twice: one resource through `can()`, and the same resource
 * against the SQL conditions of `searchConditions()` — the two must agree.
 * https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html
 */
import type { Resource } from '@medplum/fhirtypes';
import { denialFor, type AccessContext, type Interaction } from '../../src/access/context';
import { createAccessContext, type Grant } from '../../src/access/policy';
import { BASE, rowMatches } from './evaluate';

const ROLES: Record<string, Grant> = {
  anonymous: { caller: { kind: 'anonymous' }, scopes: [] },
  patientA: { caller: { kind: 'patient', fhirUser: 'Patient/A' }, scopes: ['openid', 'fhirUser', 'patient/*.*'], patient: 'A' },
  patientB: { caller: { kind: 'patient', fhirUser: 'Patient/B' }, scopes: ['patient/*.cruds'], patient: 'B' },
  practitioner: {
    caller: { kind: 'practitioner', fhirUser: 'Practitioner/P' },
    scopes: ['openid', 'fhirUser', 'user/*.cruds'],
    ownsSchedule: (id) => id === 'sched-P',
  },
  lab: { caller: { kind: 'client', clientId: 'lab' }, scopes: ['system/DocumentReference.c', 'system/Binary.c'] },
  ehr: { caller: { kind: 'client', clientId: 'ehr' }, scopes: ['system/*.read'] },
  admin: { caller: { kind: 'client', clientId: 'admin' }, scopes: ['system/*.*'] },
};

const RESOURCES: Record<string, Resource> = {
  obsA: { resourceType: 'Observation', id: 'obs-a', status: 'final', code: { text: 'glucose' }, subject: { reference: 'Patient/A' } },
  obsB: { resourceType: 'Observation', id: 'obs-b', status: 'final', code: { text: 'glucose' }, subject: { reference: 'Patient/B' } },
  docA: {
    resourceType: 'DocumentReference',
    id: 'doc-a',
    status: 'current',
    subject: { reference: 'Patient/A' },
    content: [{ attachment: { url: 'Binary/bin-a', contentType: 'application/pdf' } }],
  },
  patientA: { resourceType: 'Patient', id: 'A' },
  apptAP: {
    resourceType: 'Appointment',
    id: 'appt-ap',
    status: 'booked',
    participant: [
      { actor: { reference: 'Patient/A' }, status: 'accepted' },
      { actor: { reference: 'Practitioner/P' }, status: 'accepted' },
    ],
  },
  apptBQ: {
    resourceType: 'Appointment',
    id: 'appt-bq',
    status: 'booked',
    participant: [
      { actor: { reference: 'Patient/B' }, status: 'accepted' },
      { actor: { reference: 'Practitioner/Q' }, status: 'accepted' },
    ],
  },
  practitionerP: { resourceType: 'Practitioner', id: 'P' },
  slotP: { resourceType: 'Slot', id: 'slot-p', schedule: { reference: 'Schedule/sched-P' }, status: 'free', start: '2030-01-01T10:00:00Z', end: '2030-01-01T10:50:00Z' },
  slotQ: { resourceType: 'Slot', id: 'slot-q', schedule: { reference: 'Schedule/sched-Q' }, status: 'free', start: '2030-01-01T10:00:00Z', end: '2030-01-01T10:50:00Z' },
};

/**
 * Columns: read, search, create, update, delete, history (instance), transaction (a POST entry: decided as
 * the create it is), include (= read of the included resource).
 * Y allowed · N 403 · H 404 (the resource's existence stays hidden) · E absent from the results (no error).
 */
const COLUMNS = ['read', 'search', 'create', 'update', 'delete', 'history', 'transaction', 'include'] as const;

// prettier-ignore
const MATRIX: Record<string, Record<string, string>> = {
  //                 read search create update delete history txn include
  anonymous:    { obsA: 'NNNNNNNE', obsB: 'NNNNNNNE', docA: 'NNNNNNNE', patientA: 'NNNNNNNE', apptAP: 'NNNNNNNE', practitionerP: 'NNNNNNNE', slotP: 'NNNNNNNE' },
  patientA:     { obsA: 'YYYYYYYY', obsB: 'HENNHHNE', docA: 'YYYYYYYY', patientA: 'YYNYNYNY', apptAP: 'YYYYYYYY', apptBQ: 'HENNHHNE', practitionerP: 'YYNNNYNY', slotP: 'YYNNNYNY' },
  patientB:     { obsA: 'HENNHHNE', obsB: 'YYYYYYYY', docA: 'HENNHHNE', patientA: 'HENNNHNE', apptAP: 'HENNHHNE', apptBQ: 'YYYYYYYY', practitionerP: 'YYNNNYNY', slotP: 'YYNNNYNY' },
  // Patients' records reach practitioners only through Consent (closed until that decision point is supplied).
  practitioner: { obsA: 'NNNNNNNE', obsB: 'NNNNNNNE', docA: 'NNNNNNNE', patientA: 'NNNNNNNE', apptAP: 'YYNYNYNY', apptBQ: 'HENNNHNE', practitionerP: 'YYNNNYNY', slotP: 'YYYYYYYY', slotQ: 'YYNNNYNY' },
  lab:          { obsA: 'NNNNNNNE', obsB: 'NNNNNNNE', docA: 'NNYNNNYE', patientA: 'NNNNNNNE', apptAP: 'NNNNNNNE', practitionerP: 'NNNNNNNE', slotP: 'NNNNNNNE' },
  ehr:          { obsA: 'YYNNNYNY', obsB: 'YYNNNYNY', docA: 'YYNNNYNY', patientA: 'YYNNNYNY', apptAP: 'YYNNNYNY', practitionerP: 'YYNNNYNY', slotP: 'YYNNNYNY' },
  admin:        { obsA: 'YYYYYYYY', obsB: 'YYYYYYYY', docA: 'YYYYYYYY', patientA: 'YYYYYYYY', apptAP: 'YYYYYYYY', practitionerP: 'YYYYYYYY', slotP: 'YYYYYYYY' },
};

function refusal(ctx: AccessContext, interaction: Interaction, type: string, resource: Resource): string {
  return denialFor(ctx, interaction, type, resource) === 'not-found' ? 'H' : 'N';
}

/** As a search would: the type-level gate, then whether the row is in the results — by can() and by SQL. */
function inResults(ctx: AccessContext, interaction: Interaction, type: string, resource: Resource, gated: boolean): string {
  if (gated && !ctx.can(interaction, type)) return 'N';
  const byCan = ctx.can(interaction, type, resource);
  const bySql = rowMatches(resource, ctx.searchConditions(type, interaction));
  expect({ [type]: bySql }).toEqual({ [type]: byCan });
  return byCan ? 'Y' : 'E';
}

function decide(ctx: AccessContext, column: (typeof COLUMNS)[number], resource: Resource): string {
  const type = resource.resourceType;
  const single = (interaction: Interaction) => (ctx.can(interaction, type, resource) ? 'Y' : refusal(ctx, interaction, type, resource));
  switch (column) {
    case 'read':
      return single('read');
    case 'search':
      return inResults(ctx, 'search', type, resource, true);
    case 'create':
    case 'transaction':
      return single('create');
    case 'update':
      return single('update');
    case 'delete':
      return single('delete');
    case 'history':
      return single('history-instance');
    case 'include':
      return inResults(ctx, 'read', type, resource, false);
  }
}

const cases = Object.entries(MATRIX).flatMap(([role, row]) => Object.entries(row).map(([kind, expected]) => [role, kind, expected]));

test.each(cases)('%s × %s', (role, kind, expected) => {
  const ctx = createAccessContext({ ...ROLES[role], fhirBaseUrl: BASE });
  const got = COLUMNS.map((column) => decide(ctx, column, RESOURCES[kind])).join('');
  expect(`${COLUMNS.join(' ')}: ${got}`).toBe(`${COLUMNS.join(' ')}: ${expected}`);
});
