/**
 * Bundle building for history and search responses: entries with fullUrl, paging links under the FHIR base.
 * https://hl7.org/fhir/R4/bundle.html — https://hl7.org/fhir/R4/http.html#paging
 */
import type { Bundle, BundleEntry, BundleLink, Resource } from '@medplum/fhirtypes';
import type { StoredVersion } from '../storage/repository';

export function fullUrl(fhirBaseUrl: string, resourceType: string, id: string): string {
  return `${fhirBaseUrl}/${resourceType}/${id}`;
}

/** A link to the same request with some query parameters replaced (others kept in order). */
export function pageLink(
  relation: string,
  fhirBaseUrl: string,
  path: string,
  query: URLSearchParams,
  replace: Record<string, string | undefined>,
): BundleLink {
  const q = new URLSearchParams(query);
  for (const [k, v] of Object.entries(replace)) {
    q.delete(k);
    if (v !== undefined) q.set(k, v);
  }
  const qs = q.toString();
  return { relation, url: `${fhirBaseUrl}${path ? '/' + path : ''}${qs ? '?' + qs : ''}` };
}

export function historyEntry(fhirBaseUrl: string, v: StoredVersion): BundleEntry {
  const method = (v.method ?? (v.deleted ? 'DELETE' : 'PUT')) as 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  const url = method === 'POST' ? v.resourceType : `${v.resourceType}/${v.id}`;
  const entry: BundleEntry = {
    fullUrl: fullUrl(fhirBaseUrl, v.resourceType, v.id),
    request: { method, url },
    response: {
      status: v.deleted ? '200 OK' : v.versionId === 1 ? '201 Created' : '200 OK',
      etag: `W/"${v.versionId}"`,
      lastModified: v.lastUpdated,
    },
  };
  if (v.resource) entry.resource = v.resource;
  return entry;
}

export function bundle(type: Bundle['type'], entry: BundleEntry[], link: BundleLink[], total?: number): Bundle {
  const b: Bundle = { resourceType: 'Bundle', type, timestamp: new Date().toISOString() } as Bundle;
  if (total !== undefined) b.total = total;
  if (link.length > 0) b.link = link;
  // R4 JSON has no empty arrays (https://hl7.org/fhir/R4/json.html): an empty Bundle has no `entry`.
  if (entry.length > 0) b.entry = entry;
  return b;
}

export function searchEntry(fhirBaseUrl: string, resource: Resource, mode: 'match' | 'include' | 'outcome'): BundleEntry {
  return { fullUrl: fullUrl(fhirBaseUrl, resource.resourceType, resource.id as string), resource, search: { mode } };
}
