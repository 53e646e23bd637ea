/**
 * Custom SearchParameters from fhir-profiles/ join the R4 ones in @medplum/core's index at start, so the
 * indexer, search and the CapabilityStatement treat them exactly like standard parameters.
 * Adding one and restarting makes it searchable for new writes; `npm run reindex` or `$reindex` indexes
 * existing data.
 */
import { indexSearchParameter } from '@medplum/core';
import type { Resource, SearchParameter } from '@medplum/fhirtypes';
import { clearIndexedParams } from '../storage/indexer';

const registered = new Set<string>();

export function registerSearchParameters(resources: readonly Resource[]): SearchParameter[] {
  const params = resources.filter((r): r is SearchParameter => r.resourceType === 'SearchParameter');
  let changed = false;
  for (const sp of params) {
    const key = JSON.stringify(sp);
    if (registered.has(key)) continue;
    indexSearchParameter(sp);
    registered.add(key);
    changed = true;
  }
  if (changed) clearIndexedParams();
  return params;
}
