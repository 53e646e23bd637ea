/**
 * Turns a verified token's grant into the AccessContext a request carries. For a practitioner it also
 * looks up, once per request and in one statement, the PractitionerRoles that are theirs and the Schedules they own
 * (actor is them or one of their roles), which decide their Slot writes, and the Consents that open patients'
 * documents to them now (consent.ts).
 */
import type { Database } from '../storage/database';
import { consentDecisionOf, grantsInForceSql, REQUEST_CLOCK_SQL, type GrantRow } from './consent';
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
  const facts = await practitionerFacts(db, practitionerId);
  return createAccessContext({
    caller,
    scopes: grant.scopes,
    patient: grant.patient,
    fhirBaseUrl,
    practitionerRoles: facts.roles,
    ownsSchedule: (scheduleId) => facts.schedules.has(scheduleId),
    consent: consentDecisionOf(facts.at, facts.grants, practitionerId, facts.roles, fhirBaseUrl),
  });
}

/**
 * In one statement: the practitioner's PractitionerRoles, the Schedules whose actor is them or one of those roles,
 * the database's clock, and the consent grants in force then (consent.ts).
 */
async function practitionerFacts(db: Database, practitionerId: string) {
  const r = await db.query<{ roles: string[]; schedules: string[]; at: string | Date; grants: GrantRow[] | string }>(
    `WITH roles AS (SELECT DISTINCT resource_id AS id FROM search_reference
        WHERE resource_type = 'PractitionerRole' AND code = 'practitioner' AND target_type = 'Practitioner' AND target_id = $1),
     clock AS (SELECT ${REQUEST_CLOCK_SQL} AS at)
     SELECT ARRAY(SELECT id FROM roles) AS roles,
       ARRAY(SELECT DISTINCT s.resource_id FROM search_reference s WHERE s.resource_type = 'Schedule' AND s.code = 'actor'
         AND ((s.target_type = 'Practitioner' AND s.target_id = $1) OR (s.target_type = 'PractitionerRole' AND s.target_id IN (SELECT id FROM roles)))) AS schedules,
       clock.at, ${grantsInForceSql('clock.at')} AS grants
     FROM clock`,
    [practitionerId],
    'practitioner_facts',
  );
  const row = r.rows[0];
  return { roles: row.roles, schedules: new Set(row.schedules), at: row.at, grants: row.grants };
}
