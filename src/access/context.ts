/**
 * The access seam: every request carries an AccessContext (who is calling, with which granted scopes) from
 * the HTTP layer down to storage. `createAccessContext` (policy.ts) builds one from a token's grant;
 * `systemContext` is the server itself, unrestricted.
 */
import type { Resource } from '@medplum/fhirtypes';
import { forbidden, notFound } from '../fhir/outcomes';
import type { Condition } from '../storage/search';

export type Interaction =
  | 'read'
  | 'vread'
  | 'search'
  /** History at an unstated level: allowed by an r or an s scope. Prefer the two exact ones below. */
  | 'history'
  /** GET [type]/[id]/_history: needs r (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html). */
  | 'history-instance'
  /** GET [type]/_history and GET /_history (type '*'): needs s. */
  | 'history-type'
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
   * and paging stay right). [] = no restriction; [{ kind: 'none' }] = nothing. `interaction` (default
   * 'search') picks the scope letter: pass 'read' for rows fetched as reads, e.g. `_include` targets.
   */
  searchConditions(resourceType: string, interaction?: Interaction): Condition[];
}

export function systemContext(): AccessContext {
  return {
    caller: { kind: 'system' },
    scopes: ['system/*.*'],
    can: () => true,
    searchConditions: () => [],
  };
}

/** Interactions that name an existing resource: refusing them with 403 would tell that it exists. */
const NAMES_EXISTING: ReadonlySet<Interaction> = new Set(['read', 'vread', 'history', 'history-instance', 'patch', 'delete']);

/**
 * How to refuse (CONTRACT section 4: "403, or 404 where telling would reveal that a resource exists"):
 * 'not-found' when the interaction names an existing resource the caller cannot even read, although they
 * may do this interaction on the type (another patient's Observation by id); 'forbidden' when the type or
 * interaction is not granted at all (nothing about the instance is told), when the caller can see the
 * resource anyway (a practitioner deleting someone else's Slot), or when the resource is the request body.
 */
export function denialFor(ctx: AccessContext, interaction: Interaction, resourceType: string, resource?: Resource): 'forbidden' | 'not-found' {
  const hidden = resource && NAMES_EXISTING.has(interaction) && ctx.can(interaction, resourceType) && !ctx.can('read', resourceType, resource);
  return hidden ? 'not-found' : 'forbidden';
}

/** Throws the OperationOutcomeError of `denialFor` (403 or 404) unless the caller may do this. */
export function assertAllowed(ctx: AccessContext, interaction: Interaction, resourceType: string, resource?: Resource): void {
  if (ctx.can(interaction, resourceType, resource)) return;
  if (denialFor(ctx, interaction, resourceType, resource) === 'not-found') {
    throw notFound(`${resourceType}/${resource?.id ?? ''} not found`);
  }
  throw forbidden(`Not allowed: ${interaction} on ${resourceType}`);
}
