/**
 * composite parameters (https://hl7.org/fhir/R4/search.html#composite): `a$b` matches when each component
 * matches its own SearchParameter (found by the component's definition URL).
 * The components are matched per resource, not per repeating element: for `component-code-value-quantity`
 * the code and the value may come from two different Observation.component elements.
 */
import type { SearchParameter } from '@medplum/fhirtypes';
import type { Condition } from '../../storage/search';
import { badRequest, notSupported } from '../outcomes';
import { parameterCondition, type ParamContext } from './parameter';
import { codeByUrl } from './params';
import { splitOr, splitUnescaped } from './values';

export function compositeCondition(p: ParamContext, sp: SearchParameter, modifier: string | undefined, value: string): Condition {
  if (modifier !== undefined) throw badRequest(`Unknown modifier :${modifier} for composite parameter ${sp.code}`, p.name);
  const codes = (sp.component ?? []).map((c) => (c.definition ? codeByUrl(p.resourceType, c.definition) : undefined));
  if (codes.length === 0 || codes.some((c) => c === undefined)) {
    throw notSupported(`Composite parameter ${sp.code} has components this server cannot resolve`);
  }
  const any = splitOr(value).map((v): Condition => {
    const parts = splitUnescaped(v, '$');
    if (parts.length !== codes.length) throw badRequest(`${p.name} expects ${codes.length} components separated by $`, p.name);
    // each part is one value, so its commas are not ORs: escape them again for the component parser
    return { kind: 'and', all: parts.map((part, i) => parameterCondition(p, codes[i] as string, part.replace(/,/g, '\\,'))) };
  });
  return any.length === 1 ? any[0] : { kind: 'or', any };
}
