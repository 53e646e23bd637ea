/**
 * The access seam: every request carries an AccessContext (who is calling, with which granted scopes) from
 * the HTTP layer down to storage. The authorization issue plugs its rules in here; until then every
 * request runs as the unrestricted system caller.
 */
import type { Resource } from '@medplum/fhirtypes';
import { forbidden } from '../fhir/outcomes';
import type { Condition } from '../storage/search';

export type Interaction =
  | 'read'
  | 'vread'
  | 'search'
  | 'history'
  | 'create'
  | 'update'
  | 'patch'
  | 'delete'
  | 'operation';

export interface Caller {
  kind: 'system' | 'patient' | 'practitioner' | 'client' | 'anonymous';
  /** e.g. "Patient/123" for a patient, "Practitioner/9" for a practitioner. */
  fhirUser?: string;
  clientId?: string;
}

export interface AccessContext {
  caller: Caller;
  scopes: readonly string[];
  /** Decides whether the caller may perform the interaction on the type (and resource, when known). */
  can(interaction: Interaction, resourceType: string, resource?: Resource): boolean;
  /**
   * Conditions every row a search or history of this type returns must meet, applied in SQL (so counts
   * and paging stay right). [] = no restriction; [{ kind: 'none' }] = nothing.
   */
  searchConditions(resourceType: string): Condition[];
}

export function systemContext(): AccessContext {
  return {
    caller: { kind: 'system' },
    scopes: ['system/*.*'],
    can: () => true,
    searchConditions: () => [],
  };
}

export function assertAllowed(ctx: AccessContext, interaction: Interaction, resourceType: string, resource?: Resource): void {
  if (!ctx.can(interaction, resourceType, resource)) {
    throw forbidden(`Not allowed: ${interaction} on ${resourceType}`);
  }
}
