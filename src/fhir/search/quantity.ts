/**
 * quantity parameters (https://hl7.org/fhir/R4/search.html#quantity): `[prefix]number|system|code`,
 * `number||code` (code or unit, any system) or a bare number. Units are compared as written (no UCUM
 * conversion).
 */
import type { Condition, NumberMatch } from '../../storage/search';
import { badRequest } from '../outcomes';
import type { ParamContext } from './parameter';
import { parseDecimal, splitOr, splitPrefix, splitUnescaped, unescape } from './values';

export function parseQuantity(p: ParamContext, v: string): NumberMatch {
  const parts = splitUnescaped(v, '|').map(unescape);
  if (parts.length !== 1 && parts.length !== 3) throw badRequest(`Invalid quantity for ${p.name}: ${v}`, p.name);
  const { prefix, rest } = splitPrefix(parts[0]);
  const match: NumberMatch = { prefix, value: parseDecimal(rest, p.name) };
  if (parts.length === 3) {
    if (parts[1] !== '') match.system = parts[1];
    if (parts[2] !== '') match.unit = parts[2];
  }
  return match;
}

export function quantityCondition(p: ParamContext, code: string, modifier: string | undefined, value: string): Condition {
  if (modifier !== undefined) throw badRequest(`Unknown modifier :${modifier} for quantity parameter ${code}`, p.name);
  return { kind: 'number', table: 'quantity', code, any: splitOr(value).map((v) => parseQuantity(p, v)) };
}
