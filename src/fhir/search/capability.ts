/**
 * The search part of the CapabilityStatement (https://hl7.org/fhir/R4/capabilitystatement-definitions.html#CapabilityStatement.rest.resource.searchParam):
 * every parameter a type supports with its type and documentation, and the _include/_revinclude values
 * that make sense for it, all derived from the same SearchParameter index the search uses.
 */
import type { CapabilityStatementRestResourceSearchParam } from '@medplum/fhirtypes';
import { resourceTypes } from '../definitions';
import { codeByUrl, referenceParameters, searchParameters } from './params';

export interface SearchCapabilities {
  searchParam: CapabilityStatementRestResourceSearchParam[];
  searchInclude: string[];
  searchRevInclude: string[];
}

let revIncludes: Map<string, string[]> | undefined;

/** Target type -> `Source:param` of every reference parameter that can point at it. */
function revIncludeIndex(): Map<string, string[]> {
  if (!revIncludes) {
    revIncludes = new Map();
    for (const source of [...resourceTypes()].sort()) {
      for (const [code, sp] of referenceParameters(source)) {
        for (const target of sp.target ?? []) revIncludes.set(target, [...(revIncludes.get(target) ?? []), `${source}:${code}`]);
      }
    }
  }
  return revIncludes;
}

function supported(type: string, code: string, spType: string, components: string[]): boolean {
  if (spType === 'special') return type === 'Location' && code === 'near';
  if (spType === 'composite') return components.length > 0 && components.every((url) => codeByUrl(type, url) !== undefined);
  return true;
}

export function searchCapabilities(type: string): SearchCapabilities {
  const searchParam: CapabilityStatementRestResourceSearchParam[] = [];
  for (const [code, sp] of searchParameters(type)) {
    const components = (sp.component ?? []).map((c) => c.definition ?? '');
    if (!supported(type, code, sp.type, components)) continue;
    const documentation = sp.description ?? DOCUMENTATION[code] ?? `${sp.name ?? code} (${sp.expression ?? sp.type})`;
    searchParam.push({ name: code, definition: sp.url, type: sp.type, documentation });
  }
  searchParam.push({ name: '_list', type: 'special', documentation: 'Resources referenced by the entries of the given List' });
  const includes = referenceParameters(type).map(([code]) => `${type}:${code}`);
  return {
    searchParam,
    searchInclude: includes.length > 0 ? ['*', ...includes] : [],
    searchRevInclude: revIncludeIndex().get(type) ?? [],
  };
}

/** Some base definitions carry no description. */
const DOCUMENTATION: Record<string, string> = {
  _id: 'Logical id of the resource',
  _lastUpdated: 'When the resource version last changed',
  _tag: 'Tags applied to the resource',
  _profile: 'Profiles the resource claims to conform to',
  _security: 'Security labels applied to the resource',
  _source: 'Where the resource comes from',
};

/** Parameters of system-level search (https://hl7.org/fhir/R4/http.html#search). */
export const SYSTEM_SEARCH_PARAMS: CapabilityStatementRestResourceSearchParam[] = [
  { name: '_type', type: 'token', documentation: 'The resource types to search (comma-separated); without it, every type' },
  { name: '_id', type: 'token', documentation: 'Logical id of the resource' },
  { name: '_lastUpdated', type: 'date', documentation: 'When the resource version last changed' },
  { name: '_tag', type: 'token', documentation: 'Tags applied to the resource' },
  { name: '_profile', type: 'uri', documentation: 'Profiles the resource claims to conform to' },
  { name: '_security', type: 'token', documentation: 'Security labels applied to the resource' },
  { name: '_source', type: 'uri', documentation: 'Where the resource comes from' },
];
