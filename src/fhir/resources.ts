/**
 * Small FHIR helpers shared by the interactions: type and id checks, version headers, Prefer handling.
 */
import type { Resource } from '@medplum/fhirtypes';
import { isKnownResourceType } from './definitions';
import type { FhirResponse } from './context';
import { allOk, badRequest, notFound } from './outcomes';
import type { StoredVersion } from '../storage/repository';

/** https://hl7.org/fhir/R4/datatypes.html#id */
export const ID_PATTERN = /^[A-Za-z0-9\-.]{1,64}$/;

export function assertResourceType(type: string): void {
  if (!isKnownResourceType(type)) throw notFound(`Unknown resource type: ${type}`);
}

export function assertId(id: string): void {
  if (!ID_PATTERN.test(id)) throw badRequest(`Invalid resource id: ${id.slice(0, 80)}`);
}

/** Checks that a request body is a resource of the expected type. */
export function assertBodyResource(body: unknown, type: string): Resource {
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    throw badRequest('The request body must be a FHIR resource (a JSON object)');
  }
  const resourceType = (body as { resourceType?: unknown }).resourceType;
  if (typeof resourceType !== 'string') throw badRequest('Missing resourceType', 'resourceType');
  if (resourceType !== type) {
    throw badRequest(`Resource type ${resourceType} does not match the URL type ${type}`, 'resourceType');
  }
  return body as Resource;
}

export const etagOf = (versionId: number | string): string => `W/"${versionId}"`;

/** Parses `W/"3"`, `"3"` or `3` into a version number. */
export function parseETag(value: string): string {
  return value.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
}

/** Resource with the server's meta, resourceType/id first (https://hl7.org/fhir/R4/resource.html#Meta). */
export function withMeta(resource: Resource, id: string, versionId: number, lastUpdated: string): Resource {
  const { resourceType, id: _ignored, meta, ...rest } = resource;
  return { resourceType, id, meta: { ...meta, versionId: String(versionId), lastUpdated }, ...rest } as Resource;
}

export function versionHeaders(v: StoredVersion): Pick<FhirResponse, 'etag' | 'lastModified'> {
  return { etag: etagOf(v.versionId), lastModified: new Date(v.lastUpdated).toUTCString() };
}

export function versionUrl(fhirBaseUrl: string, v: StoredVersion): string {
  return `${fhirBaseUrl}/${v.resourceType}/${v.id}/_history/${v.versionId}`;
}

export type ReturnPreference = 'minimal' | 'representation' | 'OperationOutcome';

/** https://hl7.org/fhir/R4/http.html#ops — Prefer: return=... */
export function returnPreference(prefer: string | undefined): ReturnPreference {
  const m = /return=(minimal|representation|OperationOutcome)/.exec(prefer ?? '');
  return (m?.[1] as ReturnPreference) ?? 'representation';
}

/** The response to a successful write, shaped by Prefer: return=. */
export function writeResponse(
  status: number,
  v: StoredVersion,
  fhirBaseUrl: string,
  prefer: string | undefined,
  message: string,
): FhirResponse {
  const pref = returnPreference(prefer);
  const res: FhirResponse = { status, ...versionHeaders(v) };
  if (status === 201) res.location = versionUrl(fhirBaseUrl, v);
  if (pref === 'representation') res.body = v.resource;
  else if (pref === 'OperationOutcome') res.body = allOk(message);
  return res;
}
