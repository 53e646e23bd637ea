/**
 * Which search parameters a type has and where their values are indexed. Definitions come from
 * @medplum/core's index: the R4 SearchParameters plus the project's own from fhir-profiles/, registered at
 * start, so a custom parameter needs no code here. https://hl7.org/fhir/R4/searchparameter.html
 */
import { getSearchParameterDetails, getSearchParameters } from '@medplum/core';
import type { SearchParameter } from '@medplum/fhirtypes';
import type { IndexTable } from '../../storage/search';

/** Medplum-internal parameters that are no part of R4. */
const HIDDEN = new Set(['_compartment']);

/** The SearchParameter `code` of `resourceType`, if the type has it. */
export function searchParameter(resourceType: string, code: string): SearchParameter | undefined {
  if (HIDDEN.has(code)) return undefined;
  // Types outside the DomainResource hierarchy (Binary, Bundle, Parameters) have no parameters of their own
  // in the index; the Resource-level ones (_tag, _profile...) still apply to them.
  return getSearchParameters(resourceType)?.[code] ?? (code.startsWith('_') ? getSearchParameters('Resource')?.[code] : undefined);
}

/** Every search parameter of a type, by code. */
export function searchParameters(resourceType: string): [string, SearchParameter][] {
  return Object.entries(getSearchParameters(resourceType) ?? {}).filter(([code]) => !HIDDEN.has(code));
}

/** The index table holding a parameter's values (undefined: not stored in a side table). */
export function indexTable(sp: SearchParameter): IndexTable | undefined {
  if (sp.code === '_id' || sp.code === '_lastUpdated') return undefined;
  switch (sp.type) {
    case 'token':
    case 'string':
    case 'date':
    case 'number':
    case 'quantity':
    case 'reference':
    case 'uri':
      return sp.type;
    case 'special':
      return sp.code === 'near' ? 'position' : undefined;
    default:
      return undefined;
  }
}

/** The target types a reference parameter may point at (all types when the definition names none). */
export function referenceTargets(sp: SearchParameter): string[] | undefined {
  return sp.target && sp.target.length > 0 ? [...sp.target] : undefined;
}

/** Reference parameters of a type, for `_include=Type:*` and the CapabilityStatement. */
export function referenceParameters(resourceType: string): [string, SearchParameter][] {
  return searchParameters(resourceType).filter(([, sp]) => sp.type === 'reference');
}

/** The code of the parameter of `resourceType` whose canonical URL is `url` (composite components). */
export function codeByUrl(resourceType: string, url: string): string | undefined {
  return searchParameters(resourceType).find(([, sp]) => sp.url === url)?.[0];
}

/** Index tables that hold exactly one row per value (a date, number, quantity or uri value is one row). */
const ONE_ROW_PER_VALUE = new Set<IndexTable>(['date', 'number', 'quantity', 'uri']);

/**
 * Whether a parameter has at most one index row per resource (`single`: its expression yields at most one
 * value, of a one-row type) and whether every resource has one (`required`: a top-level element with
 * min 1, which validation enforces). Such parameters can drive a sorted search and merge repeated conditions.
 */
export function cardinality(resourceType: string, sp: SearchParameter): { single: boolean; required: boolean } {
  // medplum derives the details from the element definitions on every call (about 0.1 ms): once per definition
  let ofParameter = cardinalities.get(sp);
  if (!ofParameter) cardinalities.set(sp, (ofParameter = new Map()));
  let known = ofParameter.get(resourceType);
  if (!known) ofParameter.set(resourceType, (known = computeCardinality(resourceType, sp)));
  return known;
}

/** Per SearchParameter object: reloaded definitions are new objects, so they are computed anew. */
const cardinalities = new WeakMap<SearchParameter, Map<string, { single: boolean; required: boolean }>>();

function computeCardinality(resourceType: string, sp: SearchParameter): { single: boolean; required: boolean } {
  const table = indexTable(sp);
  if (!table || !ONE_ROW_PER_VALUE.has(table)) return { single: false, required: false };
  let details;
  try {
    details = getSearchParameterDetails(resourceType, sp);
  } catch {
    return { single: false, required: false };
  }
  const elements = details.elementDefinitions ?? [];
  const single = details.array === false && elements.length > 0;
  const required = single && elements.length === 1 && (elements[0].min ?? 0) >= 1 && elements[0].path.split('.').length === 2;
  return { single, required };
}
