/**
 * What a practitioner's `user/` scopes reach (CONTRACT sections 4-6):
 * - the directory (read and search: granted by the policy to every caller);
 * - their own Schedules (create, update, delete): `Schedule.actor` names their Practitioner or one of their
 *   PractitionerRoles (https://hl7.org/fhir/R4/schedule.html);
 * - Slots of their own Schedules (create, update, delete): decided by the `ownsSchedule` hook, because the
 *   Slot only names its Schedule and this decision is a pure function;
 * - Appointments they take part in (read, search, update, patch): a `participant.actor` is them;
 * - patients' records: only through the consent decision point (consent.ts), closed until it is supplied.
 */
import type { Appointment, Reference, Resource, Schedule, Slot } from '@medplum/fhirtypes';
import type { Condition } from '../storage/search';
import { localReference } from './compartment';
import type { ConsentDecision } from './consent';
import { isWrite, type Reach } from './reach';

export interface PractitionerFacts {
  /** Id of the caller's Practitioner ("9" for fhirUser "Practitioner/9"). */
  practitionerId: string;
  /** Ids of the PractitionerRoles of that Practitioner, when the caller resolved them ([] otherwise). */
  practitionerRoles: readonly string[];
  /** Whether the Schedule with this id is one of the practitioner's (its actor is them). */
  ownsSchedule: (scheduleId: string) => boolean;
  consent: ConsentDecision;
  fhirBaseUrl?: string;
}

export function practitionerReach(facts: PractitionerFacts): Reach {
  const me = (ref: Reference | undefined) => {
    const target = localReference(ref?.reference, facts.fhirBaseUrl);
    if (!target) return false;
    if (target.type === 'Practitioner') return target.id === facts.practitionerId;
    return target.type === 'PractitionerRole' && facts.practitionerRoles.includes(target.id);
  };
  const targets = [
    { type: 'Practitioner', id: facts.practitionerId },
    ...facts.practitionerRoles.map((id) => ({ type: 'PractitionerRole', id })),
  ];
  return {
    allows(interaction, letter, type, resource) {
      switch (type) {
        case 'Schedule':
          if (!isWrite(letter)) return false;
          return !resource || ((resource as Schedule).actor ?? []).some(me);
        case 'Slot': {
          if (!isWrite(letter)) return false;
          if (!resource) return true;
          const schedule = localReference((resource as Slot).schedule?.reference, facts.fhirBaseUrl);
          return schedule?.type === 'Schedule' && facts.ownsSchedule(schedule.id);
        }
        case 'Appointment':
          if (letter !== 'r' && letter !== 's' && letter !== 'u') return false;
          return !resource || ((resource as Appointment).participant ?? []).some((p) => me(p.actor));
        default:
          return facts.consent.allows(interaction, type, resource as Resource | undefined);
      }
    },
    rows(type) {
      if (type === 'Appointment') return [[{ kind: 'reference', codes: ['actor'], targets }]];
      if (type === 'Schedule' || type === 'Slot') return []; // read through the directory, not the role
      const consented: Condition | undefined = facts.consent.searchCondition(type);
      return consented ? [[consented]] : [];
    },
  };
}
