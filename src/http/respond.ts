/**
 * Writes FHIR JSON responses: media type, `_pretty`, and the version headers of a FhirResponse.
 */
import type { Context } from 'koa';
import type { Resource } from '@medplum/fhirtypes';
import type { FhirResponse } from '../fhir/context';

export const FHIR_JSON = 'application/fhir+json; charset=utf-8';

export function writeResource(ctx: Context, resource: Resource): void {
  const pretty = ctx.query._pretty === 'true';
  ctx.type = FHIR_JSON;
  ctx.body = pretty ? JSON.stringify(resource, null, 2) : JSON.stringify(resource);
}

export function writeFhirResponse(ctx: Context, res: FhirResponse): void {
  // An explicit null body, set before the status, makes Koa send no body rather than its status text.
  if (!res.body) ctx.body = null;
  ctx.status = res.status;
  if (res.location) ctx.set('Location', res.location);
  if (res.etag) ctx.set('ETag', res.etag);
  if (res.lastModified) ctx.set('Last-Modified', res.lastModified);
  if (res.body && ctx.method !== 'HEAD') writeResource(ctx, res.body);
  else if (res.body && ctx.method === 'HEAD') ctx.type = FHIR_JSON;
}
