/**
 * string parameters (https://hl7.org/fhir/R4/search.html#string): by default the value starts with the
 * search text, ignoring case and accents; :exact is a case- and accent-sensitive whole match; :contains
 * matches anywhere. HumanName and Address match on any of their parts (the indexer stores each part).
 */
import type { Condition } from '../../storage/search';
import { indexPrefix, normalizeString } from '../../storage/values';
import { badRequest } from '../outcomes';
import type { ParamContext } from './parameter';
import { splitOr } from './values';

export function stringCondition(p: ParamContext, code: string, modifier: string | undefined, value: string): Condition {
  const values = splitOr(value);
  switch (modifier) {
    case undefined:
      return { kind: 'string', code, any: values.map((v) => ({ match: 'start', value: indexPrefix(normalizeString(v)) })) };
    case 'contains':
      return { kind: 'string', code, any: values.map((v) => ({ match: 'contains', value: indexPrefix(normalizeString(v)) })) };
    case 'exact':
      return { kind: 'string', code, any: values.map((v) => ({ match: 'exact', value: v })) };
    default:
      throw badRequest(`Unknown modifier :${modifier} for string parameter ${code}`, p.name);
  }
}
