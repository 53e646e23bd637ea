/**
 * The browser flow of a SMART standalone launch (https://hl7.org/fhir/smart-app-launch/app-launch.html):
 * GET /oauth2/authorize checks the request and shows the login page; the password (and second factor) pages
 * post back; the approval page ends with a redirect to the client carrying `code` and `state`.
 *
 * The request lives server-side (auth_pending) under an opaque handle carried in the forms. Each form also
 * carries a CSRF token (synchronizer token) and the request is bound to the browser that started it by a
 * cookie, so another site can neither post the forms nor finish a sign-in it started in someone else's
 * browser (login CSRF). Until client_id and redirect_uri are known good, errors are shown, never redirected
 * (RFC 6749 section 4.1.2.1).
 */
import { OperationOutcomeError } from '../fhir/outcomes';
import type { AuthServices } from './context';
import { grantScopes } from './granting';
import { otpauthUri } from './mfa';
import { checkPassword, checkSecondFactor, issueCode, secondFactor, startEnrolment } from './login';
import { randomSecret, safeEqual, sha256 } from './secrets';
import { findClient } from './store/clients';
import { deletePending, findPending, insertPending, updatePending } from './store/grants';
import { findUserById } from './store/users';

const REQUEST_TTL_SECONDS = 15 * 60;
const CODE_CHALLENGE = /^[A-Za-z0-9\-._~]{43,128}$/;

interface AuthorizeState {
  clientId: string;
  clientName: string;
  redirectUri: string;
  state?: string;
  scope: string;
  nonce?: string;
  codeChallenge?: string;
  /** CSRF token of the forms, and the hash of the browser cookie the request is bound to. */
  csrf: string;
  browser: string;
  stage: 'login' | 'mfa' | 'enrol' | 'consent';
  userId?: string;
  granted?: string[];
}

interface FormContext {
  request: string;
  csrf: string;
  /** Where the flow ends: the page's forms may lead there (CSP form-action). */
  redirectUri: string;
}

export type View =
  | { page: 'error'; status: number; message: string }
  | ({ page: 'login'; status: number; clientName: string; error?: string } & FormContext)
  | ({ page: 'mfa'; status: number; error?: string } & FormContext)
  | ({ page: 'enrol'; status: number; secret: string; uri: string; error?: string } & FormContext)
  | ({ page: 'consent'; status: number; clientName: string; scopes: string[] } & FormContext)
  | { page: 'redirect'; location: string };

const errorView = (status: number, message: string): View => ({ page: 'error', status, message });

function redirectTo(redirectUri: string, params: Record<string, string | undefined>): View {
  const url = new URL(redirectUri);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, v);
  return { page: 'redirect', location: url.toString() };
}

const trimSlash = (s: string) => s.replace(/\/+$/, '');

/** GET /oauth2/authorize. `browser` is the value of the browser's binding cookie. */
export async function startAuthorization(auth: AuthServices, query: URLSearchParams, browser: string): Promise<View> {
  const clientId = query.get('client_id');
  const redirectUri = query.get('redirect_uri');
  const client = clientId ? await findClient(auth.db, clientId) : undefined;
  if (!client) return errorView(400, 'Aplicativo desconhecido (client_id inválido).');
  if (!redirectUri || !client.redirect_uris.includes(redirectUri)) {
    return errorView(400, 'Endereço de retorno não registrado para este aplicativo (redirect_uri inválido).');
  }
  const state = query.get('state') ?? undefined;
  const fail = (error: string, description: string) => redirectTo(redirectUri, { error, error_description: description, state });
  if (query.get('response_type') !== 'code') return fail('unsupported_response_type', 'response_type must be code');
  if (!client.grant_types.includes('authorization_code')) return fail('unauthorized_client', 'This client may not use authorization_code');
  // SMART App Launch: the app names the FHIR server it wants a token for; this server issues tokens for itself only.
  const aud = query.get('aud');
  if (!aud || trimSlash(aud) !== trimSlash(auth.settings.fhirBaseUrl)) return fail('invalid_request', `aud must be ${auth.settings.fhirBaseUrl}`);
  const scope = query.get('scope');
  if (!scope) return fail('invalid_scope', 'scope is required');
  const codeChallenge = query.get('code_challenge') ?? undefined;
  const method = query.get('code_challenge_method') ?? undefined;
  if (codeChallenge !== undefined || method !== undefined) {
    if (method !== 'S256') return fail('invalid_request', 'code_challenge_method must be S256');
    if (!codeChallenge || !CODE_CHALLENGE.test(codeChallenge)) return fail('invalid_request', 'code_challenge is not a valid S256 challenge');
  } else if (client.auth_method === 'none') {
    return fail('invalid_request', 'PKCE (code_challenge with S256) is required for public clients');
  }
  const request = randomSecret();
  const params: AuthorizeState = {
    clientId: client.client_id,
    clientName: client.client_name ?? client.client_id,
    redirectUri,
    state,
    scope,
    nonce: query.get('nonce') ?? undefined,
    codeChallenge,
    csrf: randomSecret(),
    browser: sha256(browser),
    stage: 'login',
  };
  await insertPending(auth.db, sha256(request), 'authorize', params, REQUEST_TTL_SECONDS);
  return { page: 'login', status: 200, request, csrf: params.csrf, redirectUri, clientName: params.clientName };
}

type Loaded = { view: View } | { s: AuthorizeState; hash: string; request: string };

async function load(auth: AuthServices, form: URLSearchParams, browser: string | undefined, stage: AuthorizeState['stage']): Promise<Loaded> {
  const request = form.get('request') ?? '';
  const hash = sha256(request);
  const row = request ? await findPending<AuthorizeState>(auth.db, hash, 'authorize') : undefined;
  if (!row) return { view: errorView(400, 'Esta solicitação de acesso expirou. Volte ao aplicativo e tente de novo.') };
  const s = row.params;
  if (!browser || !safeEqual(sha256(browser), s.browser) || !safeEqual(form.get('csrf') ?? '', s.csrf)) {
    return { view: errorView(403, 'Não foi possível confirmar a origem deste formulário. Volte ao aplicativo e tente de novo.') };
  }
  if (s.stage !== stage) return { view: errorView(400, 'Etapa inesperada. Volte ao aplicativo e tente de novo.') };
  return { s, hash, request };
}

function formOf(l: { s: AuthorizeState; request: string }): FormContext {
  return { request: l.request, csrf: l.s.csrf, redirectUri: l.s.redirectUri };
}

/** After a good password and second factor: the approval page (or a redirect when nothing can be granted). */
async function toConsent(auth: AuthServices, l: { s: AuthorizeState; hash: string; request: string }, userId: string, granted: string[]): Promise<View> {
  if (granted.length === 0) {
    await deletePending(auth.db, l.hash);
    return redirectTo(l.s.redirectUri, { error: 'invalid_scope', error_description: 'None of the requested scopes can be granted', state: l.s.state });
  }
  l.s.stage = 'consent';
  l.s.granted = granted;
  await updatePending(auth.db, l.hash, l.s, userId);
  return { page: 'consent', status: 200, ...formOf(l), clientName: l.s.clientName, scopes: granted };
}

/** POST /oauth2/authorize/login: `request`, `csrf`, `login`, `password`. */
export async function submitLogin(auth: AuthServices, form: URLSearchParams, browser: string | undefined, address: string): Promise<View> {
  const l = await load(auth, form, browser, 'login');
  if ('view' in l) return l.view;
  const base = { page: 'login' as const, ...formOf(l), clientName: l.s.clientName };
  let user;
  try {
    user = await checkPassword(auth, form.get('login') ?? '', form.get('password') ?? '', address);
  } catch (err) {
    if (!(err instanceof OperationOutcomeError)) throw err;
    const locked = err.status === 429;
    return { ...base, status: err.status, error: locked ? 'Muitas tentativas. Aguarde alguns minutos e tente de novo.' : 'Login ou senha incorretos.' };
  }
  const client = await findClient(auth.db, l.s.clientId);
  const granted = client ? grantScopes(l.s.scope, client.scope, user.role) : [];
  const factor = secondFactor(auth, user);
  if (factor === 'none') return toConsent(auth, l, user.id, granted);
  l.s.stage = factor === 'enrol' ? 'enrol' : 'mfa';
  l.s.granted = granted;
  await updatePending(auth.db, l.hash, l.s, user.id);
  if (factor === 'verify') return { page: 'mfa', status: 200, ...formOf(l) };
  const { secret, otpauth_uri } = await startEnrolment(auth, user);
  return { page: 'enrol', status: 200, ...formOf(l), secret, uri: otpauth_uri };
}

/** POST /oauth2/authorize/mfa: `request`, `csrf`, `otp` (an OTP or a recovery code). */
export async function submitSecondFactor(auth: AuthServices, form: URLSearchParams, browser: string | undefined, address: string): Promise<View> {
  const stage = form.get('stage') === 'enrol' ? 'enrol' : 'mfa';
  const l = await load(auth, form, browser, stage);
  if ('view' in l) return l.view;
  const row = await findPending<AuthorizeState>(auth.db, l.hash, 'authorize');
  const user = row?.user_id ? await findUserById(auth.db, row.user_id) : undefined;
  if (!user) return errorView(400, 'Esta solicitação de acesso expirou. Volte ao aplicativo e tente de novo.');
  let result;
  try {
    result = await checkSecondFactor(auth, user, form.get('otp') ?? '', stage === 'enrol', address);
  } catch (err) {
    if (!(err instanceof OperationOutcomeError)) throw err;
    return { page: 'mfa', status: err.status, ...formOf(l), error: 'Muitas tentativas. Aguarde alguns minutos e tente de novo.' };
  }
  if (!result.ok) {
    if (stage === 'mfa') return { page: 'mfa', status: 401, ...formOf(l), error: 'Código incorreto.' };
    const secret = user.totp_pending_secret;
    if (!secret) return errorView(400, 'Esta solicitação de acesso expirou. Volte ao aplicativo e tente de novo.');
    return { page: 'enrol', status: 401, ...formOf(l), secret, uri: otpauthUri(secret, user.email), error: 'Código incorreto.' };
  }
  return toConsent(auth, l, user.id, l.s.granted ?? []);
}

/** POST /oauth2/authorize/consent: `request`, `csrf`, `decision` (approve | deny). */
export async function submitConsent(auth: AuthServices, form: URLSearchParams, browser: string | undefined): Promise<View> {
  const l = await load(auth, form, browser, 'consent');
  if ('view' in l) return l.view;
  const row = await findPending<AuthorizeState>(auth.db, l.hash, 'authorize');
  // The request is spent here, once, whatever the decision.
  if (!row?.user_id || !(await deletePending(auth.db, l.hash))) return errorView(400, 'Esta solicitação de acesso expirou.');
  const { s } = l;
  if (form.get('decision') !== 'approve') {
    return redirectTo(s.redirectUri, { error: 'access_denied', error_description: 'The user denied access', state: s.state });
  }
  const user = await findUserById(auth.db, row.user_id);
  if (!user) return errorView(400, 'Esta solicitação de acesso expirou.');
  const code = await issueCode(auth, user, { clientId: s.clientId, scope: s.granted ?? [], redirectUri: s.redirectUri, codeChallenge: s.codeChallenge, nonce: s.nonce });
  return redirectTo(s.redirectUri, { code, state: s.state });
}
