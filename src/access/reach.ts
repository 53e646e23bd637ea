/**
 * What instances one granted scope reaches, by the scope's context and the caller
 * (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html#scopes-for-requesting-fhir-resources):
 * `system/` every instance, `patient/` one patient's compartment, `user/` what the user's role allows.
 * The scope's letters and constraints are checked by the policy; a reach only answers "which instances".
 */
import type { Resource } from '@medplum/fhirtypes';
import type { Condition } from '../storage/search';
import { compartmentParams, compartmentPatients } from './compartment';
import type { Interaction } from './context';
import { isDirectoryType } from './directory';
import type { Permission } from './scopes';

export interface Reach {
  /** Whether the interaction may touch this resource; without one, whether any instance of the type could be. */
  allows(interaction: Interaction, letter: Permission, resourceType: string, resource?: Resource): boolean;
  /** The rows of the type it reaches, as alternatives of AND-lists of conditions: [] = no row, [[]] = every row. */
  rows(resourceType: string): Condition[][];
}

const WRITES: ReadonlySet<Permission> = new Set(['c', 'u', 'd']);
export const isWrite = (letter: Permission): boolean => WRITES.has(letter);

/** `system/` scopes of a client: every instance of the granted types. */
export const allInstances: Reach = {
  allows: () => true,
  rows: () => [[]],
};

/**
 * One patient's compartment, their own Patient resource, and Binaries whose securityContext is that Patient.
 * Writes must keep the resource inside this compartment and out of every other patient's (a patient must
 * not file an Observation into someone else's record by naming themselves its performer), and never touch
 * the directory or the audit trail (AuditEvents are written by the server, CONTRACT section 6).
 */
export function patientCompartment(patientId: string, fhirBaseUrl?: string): Reach {
  const reachable = (type: string) => type === 'Patient' || type === 'Binary' || compartmentParams(type).length > 0;
  return {
    allows(_interaction, letter, type, resource) {
      if (isWrite(letter) && (isDirectoryType(type) || type === 'AuditEvent')) return false;
      // The Patient resource belongs to the account (created at sign-up): updated by its patient, never created or deleted.
      if (type === 'Patient' && (letter === 'c' || letter === 'd')) return false;
      if (!reachable(type)) return false;
      if (!resource) return true;
      const patients = compartmentPatients(resource, fhirBaseUrl);
      if (!patients.has(patientId)) return false;
      return !isWrite(letter) || patients.size === 1;
    },
    rows(type) {
      if (type === 'Patient') return [[{ kind: 'id', ids: [patientId] }]];
      const codes = compartmentParams(type);
      // Binary.securityContext is not a search parameter in R4: Binaries are reached by id only.
      if (codes.length === 0) return [];
      return [[{ kind: 'reference', codes: [...codes], targets: [{ type: 'Patient', id: patientId }] }]];
    },
  };
}

/** Both reaches at once (a practitioner's `patient/` scopes: their role's reach, inside the patient in context). */
export function bothReaches(a: Reach, b: Reach): Reach {
  return {
    allows: (interaction, letter, type, resource) =>
      a.allows(interaction, letter, type, resource) && b.allows(interaction, letter, type, resource),
    rows(type) {
      const out: Condition[][] = [];
      for (const x of a.rows(type)) for (const y of b.rows(type)) out.push([...x, ...y]);
      return out;
    },
  };
}
