/**
 * Translates HTTP requests under /fhir into FhirRequests for the FHIR router, and FhirResponses back.
 */
import type { Context, Middleware } from 'koa';
import type { FhirRequest, FhirServices } from '../fhir/context';
import { route } from '../fhir/router';
import { methodNotAllowed } from '../fhir/outcomes';
import { systemContext } from '../access/context';
import { readBody } from './body';
import { assertAcceptsJson } from './negotiation';
import { writeFhirResponse } from './respond';

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']);

export function fhirHandler(services: FhirServices, maxJsonBytes: number): Middleware {
  return async (ctx: Context) => {
    if (!METHODS.has(ctx.method)) throw methodNotAllowed(`${ctx.method} is not supported`);
    assertAcceptsJson(ctx);
    const parsed = await readBody(ctx, maxJsonBytes);
    const query = new URLSearchParams(ctx.querystring);
    // POST [type]/_search may carry its parameters as a form body (https://hl7.org/fhir/R4/http.html#search)
    if (parsed.form) for (const [k, v] of parsed.form) query.append(k, v);
    const path = ctx.path.replace(/^\/fhir\/?/, '');
    ctx.state.route = path.split('/')[0] || 'base';
    const req: FhirRequest = {
      method: ctx.method as FhirRequest['method'],
      path,
      query,
      body: parsed.body,
      contentType: parsed.contentType,
      ifMatch: ctx.get('if-match') || undefined,
      ifNoneExist: ctx.get('if-none-exist') || undefined,
      ifNoneMatch: ctx.get('if-none-match') || undefined,
      ifModifiedSince: ctx.get('if-modified-since') || undefined,
      prefer: ctx.get('prefer') || undefined,
    };
    const access = ctx.state.access ?? systemContext();
    const res = await route({ ...services, access }, req);
    writeFhirResponse(ctx, res);
  };
}
