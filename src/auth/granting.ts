/**
 * Which scopes a token gets (CONTRACT section 4): granted = requested, intersected with what the client was
 * registered for, intersected with what the caller's role allows. The intersection itself (SMART v1 and v2
 * grammar, v2 search constraints) is the access module's `intersectScopes`.
 * https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html
 */
import { intersectScopes } from '../access/scopes';
import type { Role } from './store/users';

/**
 * A role's ceiling. Patients: their own compartment (patient/), their identity, refresh, and the standalone
 * patient context (they are the patient). Practitioners: user/ scopes (the access module decides what a
 * practitioner may do with them). Clients on client_credentials: system/ scopes they were registered for.
 */
const ROLE_CEILING: Record<Role | 'client', string> = {
  patient: 'patient/*.cruds launch/patient openid fhirUser profile offline_access online_access',
  practitioner: 'user/*.cruds openid fhirUser profile offline_access online_access',
  client: 'system/*.cruds',
};

export function grantScopes(requested: string, clientScope: string, role: Role | 'client'): string[] {
  return intersectScopes(intersectScopes(requested, clientScope), ROLE_CEILING[role]);
}

/** True when the scopes hold `system/*.*` (v1) or `system/*.cruds` (v2): the administrator's. */
export function hasSystemWildcard(scopes: readonly string[]): boolean {
  return intersectScopes('system/*.cruds', scopes).includes('system/*.cruds');
}
