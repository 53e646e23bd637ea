/**
 * number parameters (https://hl7.org/fhir/R4/search.html#number): a prefix and a decimal whose implicit
 * precision sets the `eq` range (100 matches [99.5, 100.5)). Custom parameters such as PractitionerRole
 * `rating` (fhir-profiles/) are plain number parameters.
 */
import type { Condition } from '../../storage/search';
import { badRequest } from '../outcomes';
import type { ParamContext } from './parameter';
import { parseDecimal, splitOr, splitPrefix } from './values';

export function numberCondition(p: ParamContext, code: string, modifier: string | undefined, value: string): Condition {
  if (modifier !== undefined) throw badRequest(`Unknown modifier :${modifier} for number parameter ${code}`, p.name);
  const any = splitOr(value).map((v) => {
    const { prefix, rest } = splitPrefix(v);
    return { prefix, value: parseDecimal(rest, p.name) };
  });
  return { kind: 'number', table: 'number', code, any };
}
