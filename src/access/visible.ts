/**
 * What a caller may see: the one ordering rule every interaction goes through (issue 11).
 *
 * 1. Before any storage read about a target, `gate` decides whether the caller may do the interaction on the
 *    type at all. Without that, the answer is a 403 that does not depend on what is stored.
 * 2. Every lookup on the caller's behalf carries the caller's access conditions in its SQL: reads by id
 *    (`findVisible`), conditional criteria (`criteriaConditions`), conditional references, referential
 *    integrity (`visibleTargets`, `nameVisible`) and history pages. What the caller cannot see does not exist
 *    for them: the answer for it is the answer for an id that was never used (status, headers, text).
 * 3. Version checks (If-Match), patch application, validation of stored content and deletion state come only
 *    after the lookup found the resource visible.
 *
 * A new interaction that names a resource must do the same: gate, then find through this module, then act.
 * The one place an invisible resource still changes an answer is a write that would take its identity: a
 * create-on-update (PUT) to an id that an invisible resource holds is refused with 409, because two resources
 * cannot share an id. It tells that the id is in use, nothing of what holds it; server ids are UUID v7 with 74
 * random bits, so an id of someone else's resource is not something a caller can guess.
 */
import type { Binary, Resource } from '@medplum/fhirtypes';
import type { Queryable } from '../storage/database';
import { existingTargets, idsWhere, lastLiveVersion, readCurrent, readCurrentWhere, type StoredVersion } from '../storage/repository';
import type { Condition } from '../storage/search';
import { localReference } from './compartment';
import { assertAllowed, type AccessContext, type Interaction } from './context';
import { forbidden } from '../fhir/outcomes';

/** The type-level gate (rule 1): 403 unless some granted scope could allow the interaction on the type. */
export function gate(access: AccessContext, interaction: Interaction, resourceType: string): void {
  if (!access.can(interaction, resourceType)) throw forbidden(`Not allowed: ${interaction} on ${resourceType}`);
}

/** The caller's access conditions for looking up rows of the type for this interaction: [] = every row. */
export function lookupConditions(access: AccessContext, interaction: Interaction, resourceType: string): Condition[] {
  return access.searchConditions(resourceType, interaction);
}

const sees = (conditions: Condition[]) => !(conditions.length === 1 && conditions[0].kind === 'none');

/**
 * The current version of (type, id) if the caller may do the interaction on it, else undefined, exactly as for
 * an id never used. A tombstone is the caller's when the version it deleted was: only then do they learn that
 * the resource was deleted (410). A Binary whose `securityContext` names a resource has that resource's access
 * (https://hl7.org/fhir/R4/binary.html#security).
 */
export async function findVisible(
  access: AccessContext,
  q: Queryable,
  interaction: Interaction,
  resourceType: string,
  id: string,
  opts: { forUpdate?: boolean; fhirBaseUrl?: string } = {},
): Promise<StoredVersion | undefined> {
  const conditions = lookupConditions(access, interaction, resourceType);
  if (conditions.length === 0) return readCurrent(q, resourceType, id, opts);
  if (resourceType === 'Binary') return findBinary(access, q, interaction, id, opts);
  if (!sees(conditions)) return undefined;
  const live = await readCurrentWhere(q, resourceType, id, conditions, opts);
  if (live) return live;
  const current = await readCurrent(q, resourceType, id);
  if (!current?.deleted) return undefined;
  const before = await lastLiveVersion(q, resourceType, id);
  return before?.resource && access.can(interaction, resourceType, before.resource) ? current : undefined;
}

async function findBinary(
  access: AccessContext,
  q: Queryable,
  interaction: Interaction,
  id: string,
  opts: { forUpdate?: boolean; fhirBaseUrl?: string },
): Promise<StoredVersion | undefined> {
  const current = await readCurrent(q, 'Binary', id, opts);
  if (!current) return undefined;
  const content = (current.deleted ? (await lastLiveVersion(q, 'Binary', id))?.resource : current.resource) as Binary | undefined;
  if (!content) return undefined;
  const context = localReference(content.securityContext?.reference, opts.fhirBaseUrl);
  if (context && context.type !== 'Binary' && context.type !== 'Patient') {
    if (!access.can(interaction, context.type)) return undefined;
    const holder = await findVisible(access, q, interaction, context.type, context.id, { fhirBaseUrl: opts.fhirBaseUrl });
    return holder && !holder.deleted ? current : undefined;
  }
  // No context, or a Patient: the Binary is in that patient's compartment (compartment.ts).
  return access.can(interaction, 'Binary', content) ? current : undefined;
}

/**
 * Whether the caller may do a write interaction with this content (the stored version before a change, or the
 * version about to be written). As for reads (findBinary), a Binary whose `securityContext` names a resource other
 * than a Patient has that resource's access: the caller may write it when they may update the resource it
 * belongs to (writing the bytes of a document is changing the document). Everything else: `assertAllowed`.
 */
export async function assertContentAllowed(
  access: AccessContext,
  q: Queryable,
  interaction: Interaction,
  resourceType: string,
  resource: Resource,
  fhirBaseUrl: string,
): Promise<void> {
  if (resourceType === 'Binary' && !access.can(interaction, resourceType, resource)) {
    const context = localReference((resource as Binary).securityContext?.reference, fhirBaseUrl);
    if (context && context.type !== 'Binary' && context.type !== 'Patient' && access.can(interaction, 'Binary') && access.can('update', context.type)) {
      const holder = await findVisible(access, q, 'update', context.type, context.id, { fhirBaseUrl });
      if (holder && !holder.deleted) return;
    }
  }
  assertAllowed(access, interaction, resourceType, resource);
}

/**
 * Whether the caller writes this type everywhere (a system client's `system/` scope): such a caller may learn
 * which resources exist, since it may write any of them; every other caller's references and criteria only
 * find what it may read or search.
 */
export function writesEverywhere(access: AccessContext, interaction: Interaction, resourceType: string): boolean {
  return lookupConditions(access, interaction, resourceType).length === 0;
}

/**
 * Conditions for matching conditional criteria (If-None-Exist, conditional update/patch/delete, conditional
 * references) on the caller's behalf: what they may search of the type, or, for a caller without search on
 * it, what the write itself may reach; undefined when the caller has neither (nothing can match).
 * `identifierOnly` tells that, without search, only a business identifier may be matched (a lab re-pushing
 * its own identifier does not duplicate, CONTRACT section 6, but cannot ask what else a patient has).
 */
export function criteriaConditions(
  access: AccessContext,
  interaction: Interaction,
  resourceType: string,
): { conditions: Condition[]; identifierOnly: boolean } | undefined {
  if (access.can('search', resourceType)) {
    const searchable = lookupConditions(access, 'search', resourceType);
    if (interaction === 'read' || interaction === 'search' || interaction === 'create') return { conditions: searchable, identifierOnly: false };
    // an update, patch or delete by criteria acts on what the caller may both search and change
    return { conditions: [...searchable, ...lookupConditions(access, interaction, resourceType)], identifierOnly: false };
  }
  if (interaction === 'read' || interaction === 'search') return undefined;
  const reach = lookupConditions(access, interaction, resourceType);
  return sees(reach) ? { conditions: reach, identifierOnly: true } : undefined;
}

/**
 * Which local reference targets ("Type/id") exist for the caller: every existing one for a caller who writes
 * the source type everywhere, else only those they may read and their own record (a reference to another
 * patient's resource is refused exactly like a reference to nothing).
 */
export async function visibleTargets(
  access: AccessContext,
  q: Queryable,
  targets: { type: string; id: string }[],
  everywhere: boolean,
  fhirBaseUrl?: string,
): Promise<Set<string>> {
  const byType = new Map<string, string[]>();
  // Targets checked by existence alone, whatever their type, go in one statement: everything for a caller who
  // writes everywhere, the caller's own record (a patient's Patient is no secret to them), and the types the
  // caller reads unrestricted (the directory: Practitioner, Slot, ...).
  const plain: { type: string; id: string }[] = [];
  const own = access.caller.fhirUser;
  for (const t of targets) {
    const key = `${t.type}/${t.id}`;
    if (everywhere || key === own || (t.type !== 'Binary' && access.can('read', t.type) && lookupConditions(access, 'read', t.type).length === 0)) plain.push(t);
    else byType.set(t.type, [...(byType.get(t.type) ?? []), t.id]);
  }
  const found = await existingTargets(q, plain);
  for (const [type, ids] of byType) {
    const unique = [...new Set(ids)];
    if (type === 'Binary') {
      for (const id of unique) {
        const v = access.can('read', type) ? await findVisible(access, q, 'read', type, id, { fhirBaseUrl }) : undefined;
        if (v && !v.deleted) found.add(`${type}/${id}`);
      }
    } else if (access.can('read', type)) {
      const conditions = lookupConditions(access, 'read', type);
      if (sees(conditions)) for (const id of await idsWhere(q, type, unique, conditions)) found.add(`${type}/${id}`);
    }
  }
  return found;
}

/**
 * Of "Type/id" names, those the caller may read, and whether some were left out: a message never names a
 * resource the caller cannot read.
 */
export async function nameVisible(access: AccessContext, q: Queryable, names: string[]): Promise<{ visible: string[]; hidden: boolean }> {
  const targets = names.map((n) => {
    const [type, id] = n.split('/');
    return { type, id };
  });
  const everywhere = targets.every((t) => lookupConditions(access, 'read', t.type).length === 0);
  const found = await visibleTargets(access, q, targets, everywhere);
  const visible = names.filter((n) => found.has(n));
  return { visible, hidden: visible.length < names.length };
}
