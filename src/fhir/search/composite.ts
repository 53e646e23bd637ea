/**
 * composite parameters (https://hl7.org/fhir/R4/search.html#composite): `a$b` matches when every component
 * matches its own SearchParameter's criteria (found by the component's definition URL) within one element
 * of the composite's expression: for `component-code-value-quantity`, the code and the value must come
 * from the same Observation.component. The indexer stores component values per element
 * (src/storage/indexer.ts) under the codes `<code>$<index>`.
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
    return {
      kind: 'composite',
      parts: parts.map((part, i) => componentCondition(parameterCondition(p, codes[i] as string, part.replace(/,/g, '\\,')), `${sp.code}$${i}`, p.name)),
    };
  });
  return any.length === 1 ? any[0] : { kind: 'or', any };
}

/** A component's condition, moved to the component rows of the composite (code `<code>$<index>`). */
function componentCondition(c: Condition, code: string, name: string): Condition {
  switch (c.kind) {
    case 'token':
    case 'string':
    case 'date':
    case 'number':
    case 'uri':
      return { ...c, code };
    case 'refValue':
      if (!c.not) return { ...c, code };
      break;
  }
  throw badRequest(`${name}: a component of a composite takes a plain value`, name);
}
