/**
 * The write path every interaction that changes data shares: validation, conditional-reference resolution,
 * referential integrity (as HAPI does by default), and the versioned write of resource, history and indexes
 * in one database transaction.
 */
import type { Resource } from '@medplum/fhirtypes';
import type { Queryable } from '../../storage/database';
import { referenceRows, walkReferences, type ReferenceRow } from '../../storage/indexer';
import { existingTargets, referrers, writeVersion, type NewVersion, type StoredVersion } from '../../storage/repository';
import { searchResources } from '../../storage/search';
import type { FhirContext } from '../context';
import { badRequest, conflict, preconditionFailed } from '../outcomes';
import { withMeta } from '../resources';
import { parseCriteria, parseSearch } from '../search/parse';
import { isKnownResourceType } from '../definitions';

/** Validates a resource about to be written: base R4, its profiles, the CPF/CRM rule. */
export function validateForWrite(ctx: FhirContext, resource: Resource): void {
  ctx.validator.assertValid(resource);
}

/**
 * Finds the current resources matching a conditional URL's criteria (If-None-Exist, conditional
 * update/delete, conditional references). Returns at most `limit` matches.
 */
export async function matchCriteria(
  ctx: FhirContext,
  q: Queryable,
  resourceType: string,
  criteria: string,
  limit = 2,
): Promise<StoredVersion[]> {
  const query = parseCriteria(criteria);
  const parsed = parseSearch(resourceType, query);
  if (parsed.conditions.length === 0) throw badRequest(`Conditional criteria must not be empty: ${resourceType}?${criteria}`);
  const { versions } = await searchResources(q, { resourceType, conditions: parsed.conditions, count: limit });
  return versions;
}

const CONDITIONAL_REF = /^([A-Z][A-Za-z]+)\?(.+)$/;

/**
 * Rewrites conditional references (`Patient?identifier=sys|123`) to the one resource they match
 * (https://hl7.org/fhir/R4/http.html#trules). No match: 400; several: 412.
 */
export async function resolveConditionalReferences(ctx: FhirContext, q: Queryable, resource: Resource): Promise<void> {
  const pending: { holder: Record<string, unknown>; type: string; criteria: string }[] = [];
  walkReferences(resource, (ref, holder) => {
    const m = CONDITIONAL_REF.exec(ref);
    if (m) pending.push({ holder, type: m[1], criteria: m[2] });
  });
  const cache = new Map<string, string>();
  for (const { holder, type, criteria } of pending) {
    const key = `${type}?${criteria}`;
    let target = cache.get(key);
    if (!target) {
      if (!isKnownResourceType(type)) throw badRequest(`Invalid conditional reference ${key}: unknown type`);
      const matches = await matchCriteria(ctx, q, type, criteria);
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

/** Refuses references to local resources that do not exist (400 naming them). */
export async function checkTargetsExist(q: Queryable, targets: ReferenceRow[], source: string): Promise<void> {
  if (targets.length === 0) return;
  assertAllFound(source, targets, await existingTargets(q, targets));
}

function assertAllFound(source: string, targets: ReferenceRow[], found: Set<string>): void {
  const missing = targets.map((t) => `${t.targetType}/${t.targetId}`).filter((t) => !found.has(t));
  if (missing.length > 0) {
    throw badRequest(`${source} references ${missing.join(', ')}, which ${missing.length > 1 ? 'do' : 'does'} not exist`);
  }
}

/** Refuses deleting a resource others still reference (409 naming them), unless configured otherwise. */
export async function checkNotReferenced(ctx: FhirContext, q: Queryable, resourceType: string, id: string): Promise<void> {
  if (!ctx.settings.enforceReferentialIntegrityOnDelete) return;
  const from = await referrers(q, resourceType, id);
  if (from.length > 0) {
    throw conflict(`Cannot delete ${resourceType}/${id}: it is referenced by ${from.join(', ')}`);
  }
}

/**
 * Stamps meta and writes one version. Inside a transaction Bundle, integrity checks are deferred to its
 * end; otherwise they run here, in the same database transaction as the write.
 */
export async function storeVersion(
  ctx: FhirContext,
  q: Queryable,
  v: Omit<NewVersion, 'lastUpdated'>,
): Promise<StoredVersion> {
  const lastUpdated = new Date().toISOString();
  const resource = v.resource ? withMeta(v.resource, v.id, v.versionId, lastUpdated) : undefined;
  const key = `${v.resourceType}/${v.id}`;
  if (resource) {
    const targets = ctx.settings.enforceReferentialIntegrityOnWrite ? localTargets(ctx, resource) : [];
    if (ctx.deferred) {
      ctx.deferred.references.set(key, targets);
      ctx.deferred.deletes.delete(key);
    } else {
      await checkTargetsExist(q, targets, key);
    }
  } else if (ctx.deferred) {
    ctx.deferred.deletes.add(key);
    ctx.deferred.references.delete(key);
  } else {
    await checkNotReferenced(ctx, q, v.resourceType, v.id);
  }
  const version = { ...v, lastUpdated, resource };
  // A create outside any transaction is a statement of its own, which may share its commit with other creates.
  const written =
    q === ctx.db && version.versionId === 1 && resource
      ? await ctx.inserts.insert(version)
      : await writeVersion(q, version, ctx.settings.fhirBaseUrl);
  if (!written) throw conflict(`${key} was changed concurrently; retry`, 'conflict');
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
  const all: ReferenceRow[] = [];
  for (const targets of deferred.references.values()) all.push(...targets);
  const unique = [...new Map(all.map((t) => [`${t.targetType}/${t.targetId}`, t])).values()];
  const found = await existingTargets(q, unique);
  for (const [source, targets] of deferred.references) assertAllFound(source, targets, found);
}
