/**
 * The write path every interaction that changes data shares: validation, conditional-reference resolution,
 * referential integrity (as HAPI does by default), and the versioned write of resource, history and indexes
 * in one database transaction.
 */
import type { Resource } from '@medplum/fhirtypes';
import type { Interaction } from '../../access/context';
import { criteriaConditions, nameVisible, visibleTargets, writesEverywhere } from '../../access/visible';
import type { Queryable } from '../../storage/database';
import { referenceRows, walkReferences, type ReferenceRow } from '../../storage/indexer';
import { referrers, writeVersion, type NewVersion, type StoredVersion } from '../../storage/repository';
import { searchResources, type Condition } from '../../storage/search';
import type { FhirContext, WriteEvent } from '../context';
import { badRequest, conflict, preconditionFailed } from '../outcomes';
import { withMeta } from '../resources';
import { parseCriteria, parseSearch } from '../search/parse';
import { isKnownResourceType } from '../definitions';

/**
 * Validates a resource about to be written: base R4, its profiles, the CPF/CRM rule. A `urn:uuid:` or `urn:oid:`
 * reference names a Bundle entry: a transaction has rewritten those it resolves, so one left (outside a
 * Bundle resource, whose entries may use them) refers to nothing.
 */
export function validateForWrite(ctx: FhirContext, resource: Resource): void {
  // A type with a workflow is validated once its workflow has completed it (storeVersion).
  if (ctx.workflows?.handles(resource.resourceType)) return;
  validateNow(ctx, resource);
}

function validateNow(ctx: FhirContext, resource: Resource): void {
  ctx.validator.assertValid(resource);
  if (resource.resourceType !== 'Bundle') {
    walkReferences(resource, (ref) => {
      if (ref.startsWith('urn:uuid:') || ref.startsWith('urn:oid:')) {
        throw badRequest(`The reference ${ref.slice(0, 100)} names a Bundle entry, but this write is not in a transaction that has it`);
      }
    });
  }
}

/**
 * Finds the current resources matching a conditional URL's criteria (If-None-Exist, conditional
 * update/patch/delete, conditional references) among those the caller may see for the interaction
 * (src/access/visible.ts): another patient's resources never match. Returns at most `limit` matches.
 */
export async function matchCriteria(
  ctx: FhirContext,
  q: Queryable,
  interaction: Interaction | 'everywhere',
  resourceType: string,
  criteria: string,
  limit = 2,
): Promise<StoredVersion[]> {
  const query = parseCriteria(criteria);
  const parsed = parseSearch(resourceType, query, { limits: ctx.settings.limits });
  if (parsed.conditions.length === 0) throw badRequest(`Conditional criteria must not be empty: ${resourceType}?${criteria}`);
  // 'everywhere': a conditional reference written by a client that writes its source type everywhere
  const access =
    interaction === 'everywhere'
      ? { conditions: [], identifierOnly: !ctx.access.can('search', resourceType) }
      : criteriaConditions(ctx.access, interaction, resourceType);
  if (!access) return [];
  if (access.identifierOnly && !isIdentifierCriterion(parsed.conditions)) {
    throw badRequest(`Without search access to ${resourceType}, conditional criteria may only name one identifier (system|value): ${resourceType}?${criteria}`);
  }
  const { versions } = await searchResources(q, { resourceType, conditions: [...parsed.conditions, ...access.conditions], count: limit });
  return versions;
}

/** `identifier=system|value`, alone: a business identifier, the one criterion a caller without search may use. */
function isIdentifierCriterion(conditions: Condition[]): boolean {
  if (conditions.length !== 1) return false;
  const c = conditions[0];
  return c.kind === 'token' && c.code === 'identifier' && !c.not && c.any.length === 1 && !!c.any[0].system && c.any[0].value !== undefined;
}

const CONDITIONAL_REF = /^([A-Z][A-Za-z]+)\?(.+)$/;

/**
 * Rewrites conditional references (`Patient?identifier=sys|123`) to the one resource they match
 * (https://hl7.org/fhir/R4/http.html#trules), among what the caller may search of the target type (or, for a
 * client that writes `resource`'s type everywhere, every resource: see matchCriteria). No match: 400; several: 412.
 */
export async function resolveConditionalReferences(ctx: FhirContext, q: Queryable, resource: Resource, interaction: Interaction): Promise<void> {
  const pending: { holder: Record<string, unknown>; type: string; criteria: string }[] = [];
  walkReferences(resource, (ref, holder) => {
    const m = CONDITIONAL_REF.exec(ref);
    if (m) pending.push({ holder, type: m[1], criteria: m[2] });
  });
  if (pending.length === 0) return;
  const everywhere = writesEverywhere(ctx.access, interaction, resource.resourceType);
  const cache = new Map<string, string>();
  for (const { holder, type, criteria } of pending) {
    const key = `${type}?${criteria}`;
    let target = cache.get(key);
    if (!target) {
      if (!isKnownResourceType(type)) throw badRequest(`Invalid conditional reference ${key}: unknown type`);
      const matches = await matchCriteria(ctx, q, everywhere ? 'everywhere' : 'search', type, criteria);
      if (matches.length === 0) throw badRequest(`Conditional reference ${key} matches no resource`);
      if (matches.length > 1) throw preconditionFailed(`Conditional reference ${key} matches more than one resource`, 'multiple-matches');
      target = `${type}/${matches[0].id}`;
      cache.set(key, target);
    }
    holder.reference = target;
  }
}

/** Local reference targets of a resource, its own id excluded (a resource may reference itself). */
function localTargets(ctx: FhirContext, resource: Resource): ReferenceRow[] {
  return referenceRows(resource, ctx.settings.fhirBaseUrl).filter(
    (t) => !(t.targetType === resource.resourceType && t.targetId === resource.id),
  );
}

/**
 * The local targets of a write, split by how they are checked: `plain` ones must exist, `visible` ones must
 * exist for the caller (one they may not read is refused exactly like a missing one). A caller who writes the
 * type everywhere, and a target the previous version already referenced, are checked plainly: neither tells
 * the caller anything new. Targets the type's workflow verified in this transaction are not checked again.
 */
export interface TargetChecks {
  plain: ReferenceRow[];
  visible: ReferenceRow[];
}

const targetKey = (t: ReferenceRow) => `${t.targetType}/${t.targetId}`;

function targetChecks(ctx: FhirContext, resource: Resource, previous: Resource | undefined, everywhere: boolean, verified?: Set<string>): TargetChecks {
  let targets = ctx.settings.enforceReferentialIntegrityOnWrite ? localTargets(ctx, resource) : [];
  if (verified?.size) targets = targets.filter((t) => !verified.has(targetKey(t)));
  const known = new Set(previous ? localTargets(ctx, previous).map(targetKey) : []);
  // With deletes refused while referenced, what the previous version referenced still exists: no query for it.
  if (ctx.settings.enforceReferentialIntegrityOnDelete) targets = targets.filter((t) => !known.has(targetKey(t)));
  if (everywhere) return { plain: targets, visible: [] };
  return { plain: targets.filter((t) => known.has(targetKey(t))), visible: targets.filter((t) => !known.has(targetKey(t))) };
}

/** Refuses references to local resources that do not exist for the caller (400 naming them). */
async function checkTargetsExist(ctx: FhirContext, q: Queryable, checks: TargetChecks[], sources: string[]): Promise<void> {
  const found = new Set<string>();
  for (const everywhere of [true, false]) {
    const targets = checks.flatMap((c) => (everywhere ? c.plain : c.visible));
    if (targets.length === 0) continue;
    for (const t of await visibleTargets(ctx.access, q, targets.map(asTarget), everywhere, ctx.settings.fhirBaseUrl)) found.add(t);
  }
  checks.forEach((c, i) => assertAllFound(sources[i], [...c.plain, ...c.visible], found));
}

const asTarget = (t: ReferenceRow) => ({ type: t.targetType, id: t.targetId });

function assertAllFound(source: string, targets: ReferenceRow[], found: Set<string>): void {
  const missing = [...new Set(targets.map((t) => `${t.targetType}/${t.targetId}`).filter((t) => !found.has(t)))];
  if (missing.length > 0) {
    throw badRequest(`${source} references ${missing.join(', ')}, which ${missing.length > 1 ? 'do' : 'does'} not exist`);
  }
}

/**
 * Refuses deleting a resource others still reference (409), unless configured otherwise. The message names
 * only referrers the caller may read; the others are "other resources".
 */
export async function checkNotReferenced(ctx: FhirContext, q: Queryable, resourceType: string, id: string): Promise<void> {
  if (!ctx.settings.enforceReferentialIntegrityOnDelete) return;
  const from = await referrers(q, resourceType, id);
  if (from.length === 0) return;
  const { visible, hidden } = await nameVisible(ctx.access, q, from);
  const names = visible.length === 0 ? 'other resources' : `${visible.join(', ')}${hidden ? ' and other resources' : ''}`;
  throw conflict(`Cannot delete ${resourceType}/${id}: it is referenced by ${names}`);
}

/**
 * Stamps meta and writes one version. Inside a transaction Bundle, integrity checks are deferred to its
 * end; otherwise they run here, in the same database transaction as the write. `previous`: the content of the
 * version this one replaces, if any.
 */
export async function storeVersion(
  ctx: FhirContext,
  q: Queryable,
  v: Omit<NewVersion, 'lastUpdated'>,
  previous?: Resource,
): Promise<StoredVersion> {
  let event: WriteEvent | undefined;
  if (ctx.workflows?.handles(v.resourceType)) {
    // Completed by the rules of its type (a booking gets its start, end and video room), then validated.
    event = { resourceType: v.resourceType, id: v.id, method: v.method, previous, next: v.resource ? { ...v.resource } : undefined };
    await ctx.workflows.beforeWrite(ctx, q, event);
    // A workflow's own write (a Slot it books or makes, a Subscription's status) is server-made from content
    // already validated: it is not validated again.
    if (event.next && !ctx.byWorkflow) validateNow(ctx, event.next);
    v = { ...v, resource: event.next };
  }
  const lastUpdated = new Date().toISOString();
  const resource = v.resource ? withMeta(v.resource, v.id, v.versionId, lastUpdated) : undefined;
  const key = `${v.resourceType}/${v.id}`;
  if (resource) {
    const everywhere = writesEverywhere(ctx.access, previous ? 'update' : 'create', v.resourceType);
    const checks = targetChecks(ctx, resource, previous, everywhere, event?.verifiedTargets);
    if (ctx.deferred) {
      ctx.deferred.references.set(key, checks);
      ctx.deferred.deletes.delete(key);
    } else if (checks.plain.length + checks.visible.length > 0) {
      await checkTargetsExist(ctx, q, [checks], [key]);
    }
  } else if (ctx.deferred) {
    ctx.deferred.deletes.add(key);
    ctx.deferred.references.delete(key);
  } else {
    await checkNotReferenced(ctx, q, v.resourceType, v.id);
  }
  const version = { ...v, lastUpdated, resource };
  // A create outside any transaction is a statement of its own, which may share its commit with other creates.
  const written = event?.write
    ? await event.write(version)
    : q === ctx.db && version.versionId === 1 && resource
      ? await ctx.inserts.insert(version)
      : await writeVersion(q, version, ctx.settings.fhirBaseUrl, previous);
  if (!written) throw conflict(`${key} was changed concurrently; retry`, 'conflict');
  if (event) await ctx.workflows?.afterWrite(ctx, q, { ...event, next: resource });
  return { resourceType: v.resourceType, id: v.id, versionId: v.versionId, lastUpdated, deleted: !resource, resource };
}

/** Runs the referential-integrity checks a transaction Bundle deferred, before it commits. */
export async function runDeferredChecks(ctx: FhirContext, q: Queryable): Promise<void> {
  const deferred = ctx.deferred;
  if (!deferred) return;
  for (const key of deferred.deletes) {
    const [type, id] = key.split('/');
    await checkNotReferenced(ctx, q, type, id);
  }
  const entries = [...deferred.references];
  if (entries.length > 0) await checkTargetsExist(ctx, q, entries.map(([, c]) => c), entries.map(([source]) => source));
}
