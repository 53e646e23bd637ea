/**
 * The one decision, for (caller, interaction, resource type, resource): yes or no, from the granted SMART
 * scopes (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html) and the caller's role
 * (CONTRACT section 4). Every scope is a rule: its letters must cover the interaction, its v2 constraints
 * must hold, and the instance must be within its reach (reach.ts). Any rule allowing is enough.
 * The same rules give searches their SQL conditions, so counts and paging stay right.
 */
import type { Resource } from '@medplum/fhirtypes';
import type { Condition } from '../storage/search';
import { constraintConditions, constraintsApply, matchesConstraints } from './constraints';
import { noConsent, type ConsentDecision } from './consent';
import type { AccessContext, Caller, Interaction } from './context';
import { isDirectoryType } from './directory';
import { practitionerReach } from './practitioner';
import { allInstances, bothReaches, patientCompartment, type Reach } from './reach';
import { parseScopes, type Permission, type ResourceScope } from './scopes';
import { combineAlternatives } from './conditions';

/** What a request was granted: the caller, the token's scopes and launch context, and role facts. */
export interface Grant {
  caller: Caller;
  scopes: readonly string[];
  /** Id ("123") of the patient in context (the token's `patient`); a patient caller's own id by default. */
  patient?: string;
  /** Ids of the practitioner caller's PractitionerRoles, when resolved (Schedules and Appointments naming them count as theirs). */
  practitionerRoles?: readonly string[];
  /** Whether Schedule/<id> belongs to the practitioner caller (decides their Slot writes); none by default. */
  ownsSchedule?: (scheduleId: string) => boolean;
  /** The records-sharing decision point for practitioners (consent.ts); closed by default. */
  consent?: ConsentDecision;
  /** `$BASE_URL/fhir`: absolute references under it count as local ones. */
  fhirBaseUrl?: string;
}

/**
 * Scope letters per interaction (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html#scopes-for-requesting-fhir-resources):
 * r = read, vread, instance history; s = search, type and system history; c = create; u = update, patch;
 * d = delete. Operations ($validate) need r on their type: they read, or act like a read of, that type.
 * 'history' without a level is satisfied by either r or s; 'history-instance'/'history-type' are exact.
 */
export const LETTERS: Record<Interaction, readonly Permission[]> = {
  read: ['r'],
  vread: ['r'],
  'history-instance': ['r'],
  history: ['r', 's'],
  'history-type': ['s'],
  search: ['s'],
  create: ['c'],
  update: ['u'],
  patch: ['u'],
  delete: ['d'],
  operation: ['r'],
};

/** AuditEvents are the audit trail: nobody updates or deletes them (CONTRACT section 6). */
const IMMUTABLE = new Set(['AuditEvent']);

interface Rule {
  scope: ResourceScope;
  reach: Reach;
}

export function createAccessContext(grant: Grant): AccessContext {
  const rules = rulesOf(grant);
  const scopes = [...grant.scopes];
  return {
    caller: grant.caller,
    scopes,
    can(interaction, resourceType, resource) {
      const letters = LETTERS[interaction] ?? [];
      if (IMMUTABLE.has(resourceType) && (letters.includes('u') || letters.includes('d'))) return false;
      return rules.some((rule) => letters.some((letter) => ruleAllows(rule, interaction, letter, resourceType, resource, grant)));
    },
    searchConditions(resourceType, interaction = 'search') {
      const alternatives: Condition[][] = [];
      for (const letter of LETTERS[interaction] ?? []) {
        for (const rule of rules) {
          if (!covers(rule.scope, resourceType) || !rule.scope.permissions.has(letter)) continue;
          const narrowed = constraintConditions(resourceType, rule.scope.constraints);
          if (!narrowed) continue;
          const rows = isDirectoryType(resourceType) ? [[]] : rule.reach.rows(resourceType);
          for (const row of rows) alternatives.push([...row, ...narrowed]);
        }
      }
      return combineAlternatives(alternatives);
    },
  };
}

const covers = (scope: ResourceScope, resourceType: string) => scope.resourceType === '*' || scope.resourceType === resourceType;

function ruleAllows(
  rule: Rule,
  interaction: Interaction,
  letter: Permission,
  resourceType: string,
  resource: Resource | undefined,
  grant: Grant,
): boolean {
  const { scope, reach } = rule;
  if (!scope.permissions.has(letter)) return false;
  // Type '*': a system-level interaction (history of everything); each entry is then checked on its own.
  if (resourceType === '*') return true;
  if (!covers(scope, resourceType)) return false;
  if (resource && resource.resourceType !== resourceType) return false;
  if (resource ? !matchesConstraints(resource, scope.constraints, grant.fhirBaseUrl) : !constraintsApply(resourceType, scope.constraints)) {
    return false;
  }
  if (isDirectoryType(resourceType) && (letter === 'r' || letter === 's')) return true;
  return reach.allows(interaction, letter, resourceType, resource);
}

/** Each granted resource scope with the instances it reaches for this caller; scopes that reach nothing are dropped. */
function rulesOf(grant: Grant): Rule[] {
  const rules: Rule[] = [];
  for (const scope of parseScopes(grant.scopes)) {
    if (scope.kind !== 'resource') continue;
    const reach = reachOf(scope, grant);
    if (reach) rules.push({ scope, reach });
  }
  return rules;
}

function idOf(fhirUser: string | undefined, type: string): string | undefined {
  const m = fhirUser?.match(/^([A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})$/);
  return m && m[1] === type ? m[2] : undefined;
}

/**
 * - `system/`: clients (and the server itself) only; a user's token never carries system-wide access.
 * - `patient/`: a patient caller's own compartment (a patient context naming someone else is refused); a
 *   practitioner's, with a patient in context, is their role's reach inside that patient's compartment.
 * - `user/`: a patient user as `patient/`; a practitioner by their role (practitioner.ts).
 */
function reachOf(scope: ResourceScope, grant: Grant): Reach | undefined {
  const { caller } = grant;
  const ownPatient = caller.kind === 'patient' ? idOf(caller.fhirUser, 'Patient') : undefined;
  const practitioner = () => {
    const practitionerId = caller.kind === 'practitioner' ? idOf(caller.fhirUser, 'Practitioner') : undefined;
    if (!practitionerId) return undefined;
    return practitionerReach({
      practitionerId,
      practitionerRoles: grant.practitionerRoles ?? [],
      ownsSchedule: grant.ownsSchedule ?? (() => false),
      consent: grant.consent ?? noConsent,
      fhirBaseUrl: grant.fhirBaseUrl,
    });
  };
  switch (scope.context) {
    case 'system':
      return caller.kind === 'client' || caller.kind === 'system' ? allInstances : undefined;
    case 'patient': {
      if (caller.kind === 'patient') {
        if (!ownPatient || (grant.patient !== undefined && grant.patient !== ownPatient)) return undefined;
        return patientCompartment(ownPatient, grant.fhirBaseUrl);
      }
      const role = practitioner();
      return role && grant.patient ? bothReaches(role, patientCompartment(grant.patient, grant.fhirBaseUrl)) : undefined;
    }
    case 'user':
      if (caller.kind === 'patient') return ownPatient ? patientCompartment(ownPatient, grant.fhirBaseUrl) : undefined;
      return practitioner();
  }
}
