/**
 * uri parameters (https://hl7.org/fhir/R4/search.html#uri): whole-value match, :below (the stored uri starts
 * with the search value) and :above (the stored uri is the search value or one of its path ancestors).
 */
import type { Condition } from '../../storage/search';
import { badRequest } from '../outcomes';
import type { ParamContext } from './parameter';
import { splitOr } from './values';

/** The value and every ancestor of its path, at `/` boundaries ("http://a/b/c" -> also "http://a/b", "http://a"). */
export function uriAncestors(value: string): string[] {
  const out = [value];
  const schemeEnd = value.indexOf('://');
  const floor = schemeEnd >= 0 ? schemeEnd + 3 : 0;
  for (let i = value.length - 1; i > floor; i--) {
    if (value[i] === '/') {
      out.push(value.slice(0, i), value.slice(0, i + 1));
    }
  }
  return [...new Set(out)];
}

export function uriCondition(p: ParamContext, code: string, modifier: string | undefined, value: string): Condition {
  const values = splitOr(value);
  switch (modifier) {
    case undefined:
      return { kind: 'uri', code, any: values.map((v) => ({ match: 'eq', value: v })) };
    case 'below':
      return { kind: 'uri', code, any: values.map((v) => ({ match: 'below', value: v })) };
    case 'above':
      return { kind: 'uri', code, any: values.map((v) => ({ match: 'above', values: uriAncestors(v) })) };
    default:
      throw badRequest(`Unknown modifier :${modifier} for uri parameter ${code}`, p.name);
  }
}
