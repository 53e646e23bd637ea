/**
 * One search parameter (name with its modifier, and value) of one resource type -> one storage Condition.
 * Dispatches on the SearchParameter's type to the file of that type; chains and `_has` recurse through here.
 * https://hl7.org/fhir/R4/search.html#ptypes — https://hl7.org/fhir/R4/search.html#modifiers
 */
import type { Condition } from '../../storage/search';
import { badRequest, notSupported } from '../outcomes';
import { chainCondition, hasCondition } from './chain';
import { compositeCondition } from './composite';
import { dateCondition, lastUpdatedCondition } from './date';
import type { ConditionBudget } from './limits';
import { nearCondition } from './near';
import { numberCondition } from './number';
import { indexTable, searchParameter } from './params';
import { quantityCondition } from './quantity';
import { referenceCondition } from './reference';
import { stringCondition } from './string';
import { tokenCondition } from './token';
import { uriCondition } from './uri';
import { splitOr } from './values';

export interface ParamContext {
  resourceType: string;
  /** The parameter as the client wrote it, for error messages. */
  name: string;
  /** Our FHIR base: absolute references under it are local. */
  fhirBaseUrl: string;
  /** Access conditions of a type, applied to the resources a chain or `_has` looks into. */
  access: (resourceType: string) => Condition[];
  /** Counts the types chains look into, against searchMaxConditions. */
  budget: ConditionBudget;
}

/** Recognised R4 parameters this server does not implement (no full-text index, no named queries). */
const UNSUPPORTED = new Set(['_text', '_content', '_query', '_filter', '_contained', '_containedType']);

export function parameterCondition(p: ParamContext, name: string, value: string): Condition {
  if (name.startsWith('_has:')) return hasCondition(p, name, value);
  if (name.includes('.')) return chainCondition(p, name, value);
  const colon = name.indexOf(':');
  const code = colon < 0 ? name : name.slice(0, colon);
  const modifier = colon < 0 ? undefined : name.slice(colon + 1);
  if (splitOr(value).length === 0 && modifier !== 'missing') throw badRequest(`Empty value for ${p.name}`, p.name);

  if (code === '_id') return idCondition(p, modifier, value);
  if (code === '_lastUpdated') return modifier === 'missing' ? missingConstant(p, value) : lastUpdatedCondition(p, modifier, value);
  if (code === '_list') {
    // https://hl7.org/fhir/R4/search.html#list: the resources a List's entries point at
    if (modifier !== undefined) throw badRequest(`Unknown modifier :${modifier} for _list`, p.name);
    return { kind: 'has', type: 'List', code: 'item', where: [{ kind: 'id', ids: splitOr(value) }, ...p.access('List')] };
  }
  if (UNSUPPORTED.has(code)) throw notSupported(`Search parameter ${code} is not supported`);

  const sp = searchParameter(p.resourceType, code);
  if (!sp) throw badRequest(`Unknown search parameter ${code} for ${p.resourceType}`, p.name);
  if (modifier === 'missing') {
    const table = indexTable(sp);
    if (!table) throw badRequest(`:missing is not supported on ${code}`, p.name);
    return { kind: 'missing', table, code, missing: parseBoolean(p, value) };
  }
  switch (sp.type) {
    case 'token':
      return tokenCondition(p, code, modifier, value);
    case 'string':
      return stringCondition(p, code, modifier, value);
    case 'date':
      return dateCondition(p, code, modifier, value);
    case 'number':
      return numberCondition(p, code, modifier, value);
    case 'quantity':
      return quantityCondition(p, code, modifier, value);
    case 'reference':
      return referenceCondition(p, sp, modifier, value);
    case 'uri':
      return uriCondition(p, code, modifier, value);
    case 'composite':
      return compositeCondition(p, sp, modifier, value);
    case 'special':
      if (code === 'near' && p.resourceType === 'Location') return nearCondition(p, modifier, value);
      throw notSupported(`Special search parameter ${code} is not supported`);
    default:
      throw notSupported(`Search parameter ${code} of type ${sp.type} is not supported`);
  }
}

function idCondition(p: ParamContext, modifier: string | undefined, value: string): Condition {
  if (modifier === 'missing') return missingConstant(p, value);
  if (modifier !== undefined && modifier !== 'not') throw badRequest(`Unknown modifier :${modifier} for _id`, p.name);
  return { kind: 'id', ids: splitOr(value), not: modifier === 'not' || undefined };
}

/** `_id` and `_lastUpdated` are never missing. */
function missingConstant(p: ParamContext, value: string): Condition {
  return parseBoolean(p, value) ? { kind: 'none' } : { kind: 'and', all: [] };
}

function parseBoolean(p: ParamContext, value: string): boolean {
  if (value !== 'true' && value !== 'false') throw badRequest(`:missing expects true or false, got ${value}`, p.name);
  return value === 'true';
}
