/**
 * _include and _revinclude (https://hl7.org/fhir/R4/search.html#include): `Type:param[:targetType]`,
 * `Type:*`, `*`, and `:iterate` to follow them again from what was included. Included resources pass the
 * same access rules as matches (in SQL where the target types are known, and `can('read')` on each), and
 * never change paging: they are fetched for the page's matches only.
 */
import { includeResources, type Condition, type IncludeQuery } from '../../storage/search';
import type { Queryable } from '../../storage/database';
import type { StoredVersion } from '../../storage/repository';
import type { FhirContext } from '../context';
import { isKnownResourceType } from '../definitions';
import { badRequest } from '../outcomes';
import { referenceParameters, referenceTargets, searchParameter } from './params';

export interface IncludeSpec {
  reverse: boolean;
  iterate: boolean;
  /** The type holding the reference parameter; `*` = any type. */
  sourceType: string;
  /** The reference parameter; `*` = every reference parameter of the source type. */
  code: string;
  targetType?: string;
}

/** Rounds of :iterate, and included resources per page, at most. */
const MAX_ROUNDS = 4;
const MAX_INCLUDES = 1000;

export function parseInclude(name: string, modifier: string | undefined, value: string): IncludeSpec {
  const reverse = name === '_revinclude';
  if (modifier !== undefined && modifier !== 'iterate' && modifier !== 'recurse') {
    throw badRequest(`Unknown modifier :${modifier} for ${name}`, name);
  }
  const iterate = modifier !== undefined;
  if (value === '*') {
    if (reverse) throw badRequest('_revinclude=* is not supported: name the type and parameter', name);
    return { reverse, iterate, sourceType: '*', code: '*' };
  }
  const [sourceType, code, targetType, extra] = value.split(':');
  if (!sourceType || !code || extra !== undefined || !isKnownResourceType(sourceType)) {
    throw badRequest(`Invalid ${name}=${value}: expected Type:parameter[:targetType]`, name);
  }
  if (code !== '*') {
    const sp = searchParameter(sourceType, code);
    if (!sp || sp.type !== 'reference') throw badRequest(`Invalid ${name}=${value}: ${code} is not a reference parameter of ${sourceType}`, name);
  }
  if (targetType !== undefined && !isKnownResourceType(targetType)) throw badRequest(`Invalid ${name}=${value}: unknown type ${targetType}`, name);
  return { reverse, iterate, sourceType, code, targetType };
}

type Access = (resourceType: string) => Condition[];

/** The resources the includes bring in for these matches, matches themselves excluded. */
export async function resolveIncludes(ctx: FhirContext, q: Queryable, matches: StoredVersion[], specs: IncludeSpec[]): Promise<StoredVersion[]> {
  const key = (v: { resourceType: string; id: string }) => `${v.resourceType}/${v.id}`;
  const access: Access = (t) => ctx.access.searchConditions(t);
  const seen = new Set(matches.map(key));
  const included: StoredVersion[] = [];
  let frontier = matches;
  for (let round = 0; round < MAX_ROUNDS && frontier.length > 0 && included.length < MAX_INCLUDES; round++) {
    const found: StoredVersion[] = [];
    for (const query of planIncludes(frontier, specs.filter((s) => round === 0 || s.iterate), access)) {
      for (const v of await includeResources(q, query)) {
        if (seen.has(key(v)) || !ctx.access.can('read', v.resourceType, v.resource)) continue;
        seen.add(key(v));
        found.push(v);
      }
    }
    included.push(...found);
    frontier = found;
  }
  return included.slice(0, MAX_INCLUDES);
}

/** The include queries of one round: `specs` applied to the `frontier` resources. */
export function planIncludes(frontier: { resourceType: string; id: string }[], specs: IncludeSpec[], access: Access): IncludeQuery[] {
  return specs.flatMap((spec) => (spec.reverse ? reverse(frontier, spec, access) : forward(frontier, spec, access)));
}

function forward(frontier: { resourceType: string; id: string }[], spec: IncludeSpec, access: Access): IncludeQuery[] {
  const out: IncludeQuery[] = [];
  for (const [type, ids] of groupIds(frontier)) {
    if (spec.sourceType !== '*' && spec.sourceType !== type) continue;
    const params = spec.code === '*' ? referenceParameters(type) : [[spec.code, searchParameter(type, spec.code)!] as const];
    if (params.length === 0) continue;
    let targets: string[] | undefined = spec.targetType ? [spec.targetType] : [];
    if (!spec.targetType) {
      for (const [, sp] of params) {
        const t = referenceTargets(sp);
        targets = t && targets ? [...targets, ...t] : undefined;
      }
    }
    const where = accessWhere(access, targets && [...new Set(targets)]);
    const codes = params.map(([code]) => code);
    out.push({ reverse: false, sourceType: type, sourceIds: ids, codes, targetType: spec.targetType, where, limit: MAX_INCLUDES });
  }
  return out;
}

function reverse(frontier: { resourceType: string; id: string }[], spec: IncludeSpec, access: Access): IncludeQuery[] {
  const codes = spec.code === '*' ? referenceParameters(spec.sourceType).map(([c]) => c) : [spec.code];
  const targets = frontier
    .filter((v) => !spec.targetType || v.resourceType === spec.targetType)
    .map((v) => ({ type: v.resourceType, id: v.id }));
  if (targets.length === 0 || codes.length === 0) return [];
  return [{ reverse: true, sourceType: spec.sourceType, codes, targets, where: access(spec.sourceType), limit: MAX_INCLUDES }];
}

function groupIds(versions: { resourceType: string; id: string }[]): Map<string, string[]> {
  const byType = new Map<string, string[]>();
  for (const v of versions) byType.set(v.resourceType, [...(byType.get(v.resourceType) ?? []), v.id]);
  return byType;
}

/** The access conditions of the possible target types, as one condition on the included rows. */
function accessWhere(access: Access, types: string[] | undefined): Condition[] {
  if (!types) return [];
  const perType = types.map((t) => ({ t, c: access(t) }));
  if (perType.every((x) => x.c.length === 0)) return [];
  return [{ kind: 'or', any: perType.map(({ t, c }) => ({ kind: 'and', all: [{ kind: 'type', types: [t] }, ...c] })) }];
}
