/**
 * Koa routes of the authorization server: discovery, the OAuth 2 endpoints (/oauth2/*, answering OAuth error
 * JSON), the sign-in pages of the browser flow, and the account API (/auth/*, answering OperationOutcomes).
 * Only translation happens here; src/auth decides.
 */
import Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import type { Auth } from '../auth';
import { accountOf, activateTotp, changePassword, deactivateAccount, enrolTotp, reactivateAccount, removeTotp, requestPasswordReset, resetPassword } from '../auth/account';
import { startAuthorization, submitConsent, submitLogin, submitSecondFactor, type View } from '../auth/authorize';
import { registerClient } from '../auth/clients';
import { openidConfiguration, smartConfiguration } from '../auth/discovery';
import { OAuthError } from '../auth/errors';
import { hasSystemWildcard } from '../auth/granting';
import { introspect } from '../auth/introspection';
import { completeMfa, enrolDuringLogin, firstPartyLogin } from '../auth/login';
import { randomSecret } from '../auth/secrets';
import { STYLESHEET, STYLESHEET_PATH } from '../auth/pages/stylesheet';
import { renderView, resetPage } from '../auth/pages/views';
import { revoke } from '../auth/revocation';
import { tokenRequest } from '../auth/tokenEndpoint';
import { registerPatient, registerPractitioner } from '../auth/users';
import { userinfo } from '../auth/userinfo';
import { badRequest, forbidden, OperationOutcomeError, unsupportedMediaType } from '../fhir/outcomes';
import { mediaType, readText } from './body';

const BODY_LIMIT = 256 * 1024;
/** Binds a browser authorization request to the browser that started it (see src/auth/authorize.ts). */
const BROWSER_COOKIE = 'hm_authz';

async function readJson(ctx: Context): Promise<Record<string, unknown>> {
  const type = mediaType(ctx.get('content-type'));
  if (type !== undefined && type !== 'application/json' && type !== 'application/fhir+json') {
    throw unsupportedMediaType('Send application/json');
  }
  const text = await readText(ctx, BODY_LIMIT);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw badRequest('The request body is not valid JSON');
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw badRequest('The request body must be a JSON object');
  return body as Record<string, unknown>;
}

/** A form body, strictly UTF-8; invalid bytes are an OAuth invalid_request (RFC 6749 section 5.2), not replaced. */
async function readOAuthText(ctx: Context): Promise<string> {
  try {
    return await readText(ctx, BODY_LIMIT);
  } catch (err) {
    if (err instanceof OperationOutcomeError && err.status === 400) throw new OAuthError(400, 'invalid_request', 'The request body is not valid UTF-8');
    throw err;
  }
}

/** OAuth endpoints take application/x-www-form-urlencoded (RFC 6749 section 3.2). */
async function readForm(ctx: Context): Promise<URLSearchParams> {
  if (mediaType(ctx.get('content-type')) !== 'application/x-www-form-urlencoded') {
    throw new OAuthError(400, 'invalid_request', 'Send application/x-www-form-urlencoded');
  }
  const form = new URLSearchParams(await readOAuthText(ctx));
  // RFC 6749 section 3.2: parameters sent without a value are treated as omitted; none may repeat.
  for (const key of new Set(form.keys())) {
    if (form.getAll(key).length > 1) throw new OAuthError(400, 'invalid_request', `Parameter ${key} is repeated`);
  }
  return form;
}

/** OAuth endpoints answer `{error, error_description}` (RFC 6749 section 5.2), never cached. */
const oauthErrors: Middleware = async (ctx, next) => {
  ctx.set('Cache-Control', 'no-store');
  ctx.set('Pragma', 'no-cache');
  try {
    await next();
  } catch (err) {
    if (!(err instanceof OAuthError)) throw err;
    for (const [name, value] of Object.entries(err.headers)) ctx.set(name, value);
    ctx.status = err.status;
    ctx.body = err.toJSON();
  }
};

/** Endpoints that carry no cookies may be called from any origin (browser SMART apps). */
const cors: Middleware = async (ctx, next) => {
  ctx.set('Access-Control-Allow-Origin', '*');
  if (ctx.method === 'OPTIONS') {
    ctx.set('Access-Control-Allow-Methods', 'GET, POST, OPTIONS');
    ctx.set('Access-Control-Allow-Headers', 'Authorization, Content-Type');
    ctx.set('Access-Control-Max-Age', '600');
    ctx.status = 204;
    return;
  }
  ctx.set('Access-Control-Expose-Headers', 'WWW-Authenticate, Retry-After');
  await next();
};

/** CSP source for where a flow's forms may lead: the redirect URI's origin, or its private-use scheme. */
function formTarget(redirectUri: string | undefined): string {
  if (!redirectUri) return '';
  try {
    const url = new URL(redirectUri);
    return url.protocol === 'http:' || url.protocol === 'https:' ? ` ${url.origin}` : ` ${url.protocol}`;
  } catch {
    return '';
  }
}

function securityHeaders(ctx: Context, redirectUri?: string): void {
  ctx.set(
    'Content-Security-Policy',
    `default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'${formTarget(redirectUri)}; frame-ancestors 'none'; base-uri 'none'`,
  );
  ctx.set('X-Frame-Options', 'DENY');
  ctx.set('X-Content-Type-Options', 'nosniff');
  ctx.set('Referrer-Policy', 'no-referrer');
  ctx.set('Cache-Control', 'no-store');
}

function sendPage(ctx: Context, status: number, page: string, redirectUri?: string): void {
  securityHeaders(ctx, redirectUri);
  ctx.status = status;
  ctx.type = 'text/html; charset=utf-8';
  ctx.body = page;
}

function sendView(ctx: Context, view: View): void {
  if (view.page === 'redirect') {
    ctx.set('Cache-Control', 'no-store');
    ctx.set('Referrer-Policy', 'no-referrer');
    ctx.status = 303;
    ctx.redirect(view.location);
    return;
  }
  sendPage(ctx, view.status, renderView(view), 'redirectUri' in view ? view.redirectUri : undefined);
}

function browserCookie(ctx: Context): string {
  const existing = ctx.cookies.get(BROWSER_COOKIE);
  if (existing && /^[A-Za-z0-9_-]{43}$/.test(existing)) return existing;
  const value = randomSecret();
  ctx.cookies.set(BROWSER_COOKIE, value, { httpOnly: true, sameSite: 'lax', secure: ctx.secure, path: '/oauth2/authorize', overwrite: true });
  return value;
}

async function requireAdmin(auth: Auth, ctx: Context): Promise<void> {
  const grant = await auth.authenticate(ctx.get('authorization') || undefined);
  if (!hasSystemWildcard(grant.scopes)) throw forbidden('This needs an administrator token (system/*.*)');
}

export function authRoutes(auth: Auth): ReturnType<Router['routes']> {
  const a = auth.services;
  const router = new Router();
  const address = (ctx: Context) => ctx.ip || 'unknown';
  const authorization = (ctx: Context) => ctx.get('authorization') || undefined;
  // Everything below waits for the configured clients and the signing key.
  router.use(async (ctx, next) => {
    ctx.state.route = 'auth';
    await auth.ready();
    await next();
  });

  // ---- discovery ----
  const smart = (ctx: Context) => {
    ctx.set('Cache-Control', 'public, max-age=300');
    ctx.body = smartConfiguration(a.settings.issuer);
  };
  router.all('/.well-known/smart-configuration', cors, smart);
  router.all('/fhir/.well-known/smart-configuration', cors, smart);
  router.all('/.well-known/openid-configuration', cors, (ctx) => {
    ctx.set('Cache-Control', 'public, max-age=300');
    ctx.body = openidConfiguration(a.settings.issuer);
  });
  router.all('/oauth2/jwks', cors, async (ctx) => {
    ctx.set('Cache-Control', 'public, max-age=300');
    ctx.body = await a.keys.jwks();
  });

  // ---- OAuth 2 endpoints ----
  router.all('/oauth2/token', cors, oauthErrors, async (ctx) => {
    if (ctx.method !== 'POST') throw new OAuthError(405, 'invalid_request', 'Use POST');
    ctx.body = await tokenRequest(a, authorization(ctx), await readForm(ctx));
  });
  router.all('/oauth2/revoke', cors, oauthErrors, async (ctx) => {
    if (ctx.method !== 'POST') throw new OAuthError(405, 'invalid_request', 'Use POST');
    await revoke(a, authorization(ctx), await readForm(ctx));
    ctx.status = 200;
    ctx.body = {};
  });
  router.all('/oauth2/introspect', cors, oauthErrors, async (ctx) => {
    if (ctx.method !== 'POST') throw new OAuthError(405, 'invalid_request', 'Use POST');
    ctx.body = await introspect(a, authorization(ctx), await readForm(ctx));
  });
  router.all('/oauth2/userinfo', cors, oauthErrors, async (ctx) => {
    if (!['GET', 'HEAD', 'POST'].includes(ctx.method)) throw new OAuthError(405, 'invalid_request', 'Use GET or POST');
    ctx.body = await userinfo(a, authorization(ctx));
  });

  // ---- the browser flow ----
  router.get('/oauth2/authorize', async (ctx) => {
    sendView(ctx, await startAuthorization(a, new URLSearchParams(ctx.querystring), browserCookie(ctx)));
  });
  const formStep = (step: (form: URLSearchParams, browser: string | undefined, address: string) => Promise<View>) => async (ctx: Context) => {
    const form = new URLSearchParams(await readOAuthText(ctx));
    sendView(ctx, await step(form, ctx.cookies.get(BROWSER_COOKIE), address(ctx)));
  };
  router.post('/oauth2/authorize/login', formStep((f, b, ip) => submitLogin(a, f, b, ip)));
  router.post('/oauth2/authorize/mfa', formStep((f, b, ip) => submitSecondFactor(a, f, b, ip)));
  router.post('/oauth2/authorize/consent', formStep((f, b) => submitConsent(a, f, b)));
  router.get(STYLESHEET_PATH, (ctx) => {
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.type = 'text/css; charset=utf-8';
    ctx.body = STYLESHEET;
  });

  // ---- accounts (CONTRACT section 4) ----
  router.all('/auth/register', cors, async (ctx) => {
    if (ctx.method !== 'POST') throw badRequest('Use POST');
    const body = await readJson(ctx);
    if (body.role === 'patient') {
      ctx.body = await registerPatient(a, body);
    } else if (body.role === 'practitioner') {
      await requireAdmin(auth, ctx);
      ctx.body = await registerPractitioner(a, body);
    } else {
      throw badRequest('role must be patient or practitioner', 'role');
    }
    ctx.status = 201;
  });
  router.all('/auth/login', cors, async (ctx) => {
    if (ctx.method !== 'POST') throw badRequest('Use POST');
    ctx.set('Cache-Control', 'no-store');
    ctx.body = await firstPartyLogin(a, await readJson(ctx), address(ctx));
  });
  router.all('/auth/mfa', cors, async (ctx) => {
    if (ctx.method !== 'POST') throw badRequest('Use POST');
    ctx.set('Cache-Control', 'no-store');
    ctx.body = await completeMfa(a, await readJson(ctx), address(ctx));
  });
  router.all('/auth/mfa/enroll', cors, async (ctx) => {
    if (ctx.method !== 'POST') throw badRequest('Use POST');
    ctx.set('Cache-Control', 'no-store');
    ctx.body = await enrolDuringLogin(a, await readJson(ctx));
  });
  router.all('/auth/mfa/totp', cors, async (ctx) => {
    if (ctx.method !== 'POST') throw badRequest('Use POST');
    const user = await accountOf(a, authorization(ctx));
    ctx.set('Cache-Control', 'no-store');
    ctx.body = await enrolTotp(a, user);
  });
  router.all('/auth/mfa/totp/activate', cors, async (ctx) => {
    if (ctx.method !== 'POST') throw badRequest('Use POST');
    const user = await accountOf(a, authorization(ctx));
    ctx.set('Cache-Control', 'no-store');
    ctx.body = await activateTotp(a, user, await readJson(ctx), address(ctx));
  });
  router.all('/auth/mfa/totp/disable', cors, async (ctx) => {
    if (ctx.method !== 'POST') throw badRequest('Use POST');
    const user = await accountOf(a, authorization(ctx));
    await removeTotp(a, user, await readJson(ctx), address(ctx));
    ctx.status = 204;
  });
  router.all('/auth/password', cors, async (ctx) => {
    if (ctx.method !== 'POST') throw badRequest('Use POST');
    const user = await accountOf(a, authorization(ctx));
    await changePassword(a, user, await readJson(ctx), address(ctx));
    ctx.status = 204;
  });
  router.all('/auth/deactivate', cors, async (ctx) => {
    if (ctx.method !== 'POST') throw badRequest('Use POST');
    const grant = await auth.authenticate(authorization(ctx));
    ctx.set('Cache-Control', 'no-store');
    ctx.body = await deactivateAccount(a, authorization(ctx), await readJson(ctx), address(ctx), hasSystemWildcard(grant.scopes));
  });
  router.all('/auth/reactivate', cors, async (ctx) => {
    if (ctx.method !== 'POST') throw badRequest('Use POST');
    await requireAdmin(auth, ctx);
    await reactivateAccount(a, await readJson(ctx));
    ctx.status = 204;
  });
  router.all('/auth/password/forgot', cors, async (ctx) => {
    if (ctx.method !== 'POST') throw badRequest('Use POST');
    await requestPasswordReset(a, await readJson(ctx));
    ctx.status = 202;
    ctx.body = { status: 'If the address has an account, a reset link was sent to it' };
  });
  router.get('/auth/password/reset', (ctx) => {
    sendPage(ctx, 200, resetPage(typeof ctx.query.token === 'string' ? ctx.query.token : ''));
  });
  router.post('/auth/password/reset', async (ctx) => {
    // The e-mailed page posts a form; apps post JSON.
    if (mediaType(ctx.get('content-type')) === 'application/x-www-form-urlencoded') {
      const form = new URLSearchParams(await readOAuthText(ctx));
      const token = form.get('token') ?? '';
      try {
        await resetPassword(a, { token, password: form.get('password') ?? '' });
        sendPage(ctx, 200, resetPage(token, { done: true }));
      } catch (err) {
        if (!(err instanceof OperationOutcomeError) || err.status !== 400) throw err;
        const weak = err.outcome.issue?.[0]?.expression?.[0] === 'password';
        sendPage(ctx, 400, resetPage(token, { error: weak ? 'A senha precisa ter pelo menos 10 caracteres.' : 'O link é inválido, expirou ou já foi usado.' }));
      }
      return;
    }
    await resetPassword(a, await readJson(ctx));
    ctx.status = 204;
  });

  // ---- client registration (admin) ----
  router.all('/auth/clients', cors, async (ctx) => {
    if (ctx.method !== 'POST') throw badRequest('Use POST');
    await requireAdmin(auth, ctx);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = await registerClient(a, await readJson(ctx));
    ctx.status = 201;
  });

  return router.routes();
}
