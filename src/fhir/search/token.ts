/**
 * token parameters (https://hl7.org/fhir/R4/search.html#token): `code`, `system|code`, `|code`, `system|`,
 * and the modifiers :not, :text and :of-type. :in/:not-in/:above/:below need a terminology service.
 */
import type { Condition, TokenMatch } from '../../storage/search';
import { normalizeString } from '../../storage/values';
import { badRequest, notSupported } from '../outcomes';
import type { ParamContext } from './parameter';
import { parseToken, splitOr, splitUnescaped, unescape } from './values';

export function tokenCondition(p: ParamContext, code: string, modifier: string | undefined, value: string): Condition {
  const values = splitOr(value);
  switch (modifier) {
    case undefined:
    case 'not':
      return { kind: 'token', code, any: values.map(parseToken), not: modifier === 'not' || undefined };
    case 'text':
      return { kind: 'token', code, any: values.map((v) => ({ text: normalizeString(unescape(v)) })) };
    case 'of-type':
      return { kind: 'token', code, any: values.map((v) => ofType(p, v)) };
    case 'in':
    case 'not-in':
    case 'above':
    case 'below':
      throw notSupported(`Modifier :${modifier} of ${p.name} needs terminology services, which this server does not offer`);
    default:
      throw badRequest(`Unknown modifier :${modifier} for token parameter ${code}`, p.name);
  }
}

/** `type-system|type-code|value`: an Identifier of that type with that value. */
function ofType(p: ParamContext, v: string): TokenMatch {
  const parts = splitUnescaped(v, '|').map(unescape);
  if (parts.length !== 3 || parts.some((x) => x === '')) {
    throw badRequest(`:of-type expects type-system|type-code|value, got ${v}`, p.name);
  }
  return { typeSystem: parts[0], typeCode: parts[1], value: parts[2] };
}
