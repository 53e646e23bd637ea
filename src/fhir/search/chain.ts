/**
 * Chaining and reverse chaining.
 * `subject:Patient.name=x`, `schedule.actor:Practitioner.identifier=x` (any depth): the resource references a
 * resource meeting the rest of the chain (https://hl7.org/fhir/R4/search.html#chaining).
 * `_has:Observation:patient:code=x` (nestable): a resource of that type references this one through that
 * parameter and meets the rest (https://hl7.org/fhir/R4/search.html#has).
 * The caller's access conditions apply to every resource a chain looks into, so a chain never reveals
 * anything about resources the caller cannot search.
 */
import type { Condition } from '../../storage/search';
import { isKnownResourceType, resourceTypes } from '../definitions';
import { badRequest } from '../outcomes';
import { parameterCondition, type ParamContext } from './parameter';
import { referenceTargets, searchParameter } from './params';

/** Parameters every type has, so a chain may end in them on any target. */
const ANY_TYPE = /^(_id|_lastUpdated|_has|_list)(:|$)/;

export function chainCondition(p: ParamContext, name: string, value: string): Condition {
  const dot = name.indexOf('.');
  const [code, typeModifier, extra] = name.slice(0, dot).split(':');
  const rest = name.slice(dot + 1);
  const sp = searchParameter(p.resourceType, code);
  if (!sp || sp.type !== 'reference' || extra !== undefined) {
    throw badRequest(`Cannot chain ${p.name}: ${code} is not a reference parameter of ${p.resourceType}`, p.name);
  }
  if (typeModifier !== undefined && !isKnownResourceType(typeModifier)) {
    throw badRequest(`Unknown resource type ${typeModifier} in ${p.name}`, p.name);
  }
  const next = rest.split(/[.:]/)[0];
  const candidates = (typeModifier ? [typeModifier] : referenceTargets(sp) ?? [...resourceTypes()]).filter(
    (t) => ANY_TYPE.test(rest) || searchParameter(t, next) !== undefined,
  );
  if (candidates.length === 0) throw badRequest(`Cannot chain ${p.name}: no target of ${code} has a parameter ${next}`, p.name);
  p.budget.spend(candidates.length - 1, p.name);
  // Target types whose conditions come out the same share one subquery (`resource_type = ANY(...)`).
  const groups = new Map<string, { types: string[]; where: Condition[] }>();
  for (const type of candidates) {
    const where = [parameterCondition({ ...p, resourceType: type }, rest, value), ...p.access(type)];
    const key = JSON.stringify(where);
    const group = groups.get(key);
    if (group) group.types.push(type);
    else groups.set(key, { types: [type], where });
  }
  return { kind: 'chain', code, targets: [...groups.values()] };
}

export function hasCondition(p: ParamContext, name: string, value: string): Condition {
  const [, type, code, ...restParts] = name.split(':');
  const rest = restParts.join(':');
  if (!type || !code || !rest) throw badRequest(`Invalid ${p.name}: expected _has:Type:reference:parameter`, p.name);
  if (!isKnownResourceType(type)) throw badRequest(`Unknown resource type ${type} in ${p.name}`, p.name);
  const sp = searchParameter(type, code);
  if (!sp || sp.type !== 'reference') throw badRequest(`${code} is not a reference parameter of ${type} in ${p.name}`, p.name);
  const targets = referenceTargets(sp);
  if (targets && !targets.includes(p.resourceType)) {
    throw badRequest(`${type}.${code} cannot reference a ${p.resourceType} in ${p.name}`, p.name);
  }
  const where = [parameterCondition({ ...p, resourceType: type }, rest, value), ...p.access(type)];
  return { kind: 'has', type, code, where };
}
