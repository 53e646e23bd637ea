/**
 * reference parameters (https://hl7.org/fhir/R4/search.html#reference): `id`, `Type/id`, an absolute URL
 * (ours is read as `Type/id`; any other, or a canonical, is matched as written), `:Type` and `:identifier`.
 * Chaining is in ./chain.ts.
 */
import type { SearchParameter } from '@medplum/fhirtypes';
import type { Condition, ReferenceMatch } from '../../storage/search';
import { isKnownResourceType } from '../definitions';
import { badRequest, notSupported } from '../outcomes';
import type { ParamContext } from './parameter';
import { referenceTargets } from './params';
import { parseToken, splitOr } from './values';

const LOCAL = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(\/_history\/[A-Za-z0-9\-.]{1,64})?$/;
const ID = /^[A-Za-z0-9\-.]{1,64}$/;

export function parseReferenceValue(p: ParamContext, sp: SearchParameter, value: string, type?: string): ReferenceMatch {
  const relative = value.startsWith(p.fhirBaseUrl + '/') ? value.slice(p.fhirBaseUrl.length + 1) : value;
  const local = LOCAL.exec(relative);
  if (local) {
    if (type && local[1] !== type) throw badRequest(`${p.name}: ${value} is not a ${type}`, p.name);
    return { id: local[2], types: [local[1]] };
  }
  if (ID.test(relative)) return { id: relative, types: type ? [type] : referenceTargets(sp) };
  if (type) throw badRequest(`${p.name}: invalid id ${value}`, p.name);
  // an external absolute URL or a canonical (`url|version`): matched as stored
  return { url: value, anyVersion: !value.includes('|') };
}

export function referenceCondition(p: ParamContext, sp: SearchParameter, modifier: string | undefined, value: string): Condition {
  const code = sp.code as string;
  const values = splitOr(value);
  if (modifier === 'identifier') {
    return { kind: 'refValue', code, any: values.map((v) => ({ identifier: parseToken(v) })) };
  }
  if (modifier === 'above' || modifier === 'below') {
    throw notSupported(`Modifier :${modifier} of ${p.name} (hierarchies) is not supported`);
  }
  if (modifier !== undefined && !isKnownResourceType(modifier)) {
    throw badRequest(`Unknown modifier :${modifier} for reference parameter ${code}`, p.name);
  }
  return { kind: 'refValue', code, any: values.map((v) => parseReferenceValue(p, sp, v, modifier)) };
}
