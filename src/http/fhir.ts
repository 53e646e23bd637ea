/**
 * Translates HTTP requests under /fhir into FhirRequests for the FHIR router, and FhirResponses back.
 */
import type { Context, Middleware } from 'koa';
import type { FhirContext, FhirRequest, FhirServices } from '../fhir/context';
import { route } from '../fhir/router';
import { methodNotAllowed } from '../fhir/outcomes';
import type { AccessContext } from '../access/context';
import { readBody } from './body';
import { assertAcceptsJson } from './negotiation';
import { writeFhirResponse } from './respond';

/** What an unauthenticated request to a public path may do: nothing beyond that path. */
const publicContext: AccessContext = {
  caller: { kind: 'anonymous' },
  scopes: [],
  can: () => false,
  searchConditions: () => [{ kind: 'none' }],
};

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']);

/** Resolves the caller of a request from its Authorization header (401 when missing or invalid). */
export type Authenticator = (authorization: string | undefined) => Promise<AccessContext>;

/**
 * Work a request needs before its interaction runs, outside any transaction (a DocumentReference's inline data
 * uploaded, src/workflows/records/attachments.ts): the context to route with, and what to undo afterwards.
 */
export type RequestPreparer = (ctx: FhirContext, req: FhirRequest) => Promise<{ ctx: FhirContext; release(failed: boolean): Promise<void> } | undefined>;

/** Readable without a token: the CapabilityStatement (https://hl7.org/fhir/smart-app-launch/conformance.html). */
const PUBLIC_PATHS = new Set(['metadata']);

export function fhirHandler(services: FhirServices, maxJsonBytes: number, authenticate: Authenticator, prepare?: RequestPreparer): Middleware {
  return async (ctx: Context) => {
    if (!METHODS.has(ctx.method)) throw methodNotAllowed(`${ctx.method} is not supported`);
    const path = ctx.path.replace(/^\/fhir\/?/, '');
    // Authenticate before reading the body: an anonymous caller gets 401 without the server parsing anything.
    const access = PUBLIC_PATHS.has(path) && (ctx.method === 'GET' || ctx.method === 'HEAD') ? undefined : await authenticate(ctx.get('authorization') || undefined);
    assertAcceptsJson(ctx);
    const parsed = await readBody(ctx, maxJsonBytes);
    const query = new URLSearchParams(ctx.querystring);
    // POST [type]/_search may carry its parameters as a form body (https://hl7.org/fhir/R4/http.html#search)
    if (parsed.form) for (const [k, v] of parsed.form) query.append(k, v);
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
    const base: FhirContext = { ...services, access: access ?? publicContext };
    const prepared = access ? await prepare?.(base, req) : undefined;
    let res;
    try {
      res = await route(prepared?.ctx ?? base, req);
    } catch (err) {
      await prepared?.release(true);
      throw err;
    }
    await prepared?.release(false);
    writeFhirResponse(ctx, res);
  };
}
