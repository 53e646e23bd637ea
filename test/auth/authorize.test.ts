/**
 * The browser flow of a SMART standalone launch, driven over HTTP as a browser would (cookies, forms,
 * redirects not followed): login page -> approval page -> redirect with code and state.
 * https://hl7.org/fhir/smart-app-launch/app-launch.html#obtain-authorization-code
 * (The same pages in headless Chromium are the e2e test's job.)
 */
import { Secret, TOTP } from 'otpauth';
import { startServer, type TestServer } from '../helpers/server';
import { ADMIN_ENV, APP_REDIRECT, PASSWORD, exchange, json, pkce, signUp, tokensFor } from './helpers';

let server: TestServer;
beforeAll(async () => {
  server = await startServer(ADMIN_ENV);
});
afterAll(() => server.close());

interface Page {
  status: number;
  headers: Headers;
  text: string;
  location?: URL;
}

/** A tiny browser: keeps cookies, does not follow redirects. */
function browser() {
  const jar = new Map<string, string>();
  async function go(method: string, path: string, body?: Record<string, string>): Promise<Page> {
    const headers: Record<string, string> = { accept: 'text/html' };
    if (jar.size) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    if (body) headers['content-type'] = 'application/x-www-form-urlencoded';
    const res = await fetch(path.startsWith('http') ? path : `${server.baseUrl}${path}`, {
      method,
      headers,
      body: body ? new URLSearchParams(body).toString() : undefined,
      redirect: 'manual',
    });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const eq = pair.indexOf('=');
      jar.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
    const location = res.headers.get('location');
    return { status: res.status, headers: res.headers, text: await res.text(), location: location ? new URL(location) : undefined };
  }
  return { go, jar };
}

function hidden(page: Page): { request: string; csrf: string } {
  const request = /name="request" value="([^"]+)"/.exec(page.text)?.[1];
  const csrf = /name="csrf" value="([^"]+)"/.exec(page.text)?.[1];
  expect(request && csrf).toBeTruthy();
  return { request: request!, csrf: csrf! };
}

function authorizeUrl(over: Record<string, string | undefined> = {}) {
  const { verifier, challenge } = pkce();
  const params: Record<string, string | undefined> = {
    response_type: 'code',
    client_id: 'healthmed-app',
    redirect_uri: APP_REDIRECT,
    scope: 'openid fhirUser launch/patient patient/*.rs offline_access',
    state: 'st-123',
    aud: server.fhirBase,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    ...over,
  };
  const q = new URLSearchParams(Object.entries(params).filter((e): e is [string, string] => e[1] !== undefined));
  return { url: `/oauth2/authorize?${q}`, verifier };
}

describe('GET /oauth2/authorize -> login -> approval -> redirect', () => {
  it('ends with a redirect carrying code and state, and the code exchanges for tokens', async () => {
    const p = await signUp(server);
    const b = browser();
    const { url, verifier } = authorizeUrl();
    const login = await b.go('GET', url);
    expect(login.status).toBe(200);
    expect(login.headers.get('content-type')).toMatch(/^text\/html/);
    expect(login.text).toContain('name="viewport"');
    expect(login.text).toContain('<link rel="stylesheet" href="/auth/static/auth.css">');
    expect(login.text).not.toMatch(/<script|\sstyle=|\son[a-z]+="/i);
    const csp = login.headers.get('content-security-policy')!;
    expect(csp).toMatch(/default-src 'none'/);
    expect(csp).toMatch(/style-src 'self'/);
    expect(csp).toMatch(/frame-ancestors 'none'/);
    expect(csp).toMatch(/form-action 'self' http:\/\/127\.0\.0\.1:5173/);
    expect(login.headers.get('x-frame-options')).toBe('DENY');
    expect(b.jar.has('hm_authz')).toBe(true);

    const consent = await b.go('POST', '/oauth2/authorize/login', { ...hidden(login), login: p.email, password: PASSWORD });
    expect(consent.status).toBe(200);
    expect(consent.text).toContain('name="decision" value="approve"');

    const done = await b.go('POST', '/oauth2/authorize/consent', { ...hidden(consent), decision: 'approve' });
    expect(done.status).toBe(303);
    expect(`${done.location!.origin}${done.location!.pathname}`).toBe(APP_REDIRECT);
    expect(done.location!.searchParams.get('state')).toBe('st-123');
    const code = done.location!.searchParams.get('code')!;
    expect(code).toBeTruthy();

    // The code is bound to the redirect URI of the request.
    const tokens = await exchange(server, code, verifier, { redirect_uri: APP_REDIRECT });
    expect(tokens.status).toBe(200);
    expect(tokens.body.patient).toBe(p.patient.split('/')[1]);
    expect(tokens.body.refresh_token).toEqual(expect.any(String));
  });

  it('refuses the code at the token endpoint without the redirect_uri of the request', async () => {
    const p = await signUp(server);
    const b = browser();
    const { url, verifier } = authorizeUrl();
    const login = await b.go('GET', url);
    const consent = await b.go('POST', '/oauth2/authorize/login', { ...hidden(login), login: p.cpf, password: PASSWORD });
    const done = await b.go('POST', '/oauth2/authorize/consent', { ...hidden(consent), decision: 'approve' });
    const res = await exchange(server, done.location!.searchParams.get('code')!, verifier, { redirect_uri: 'http://127.0.0.1:5173/other' });
    expect(res.body.error).toBe('invalid_grant');
  });

  it('redirects with access_denied when the user refuses', async () => {
    const p = await signUp(server);
    const b = browser();
    const login = await b.go('GET', authorizeUrl().url);
    const consent = await b.go('POST', '/oauth2/authorize/login', { ...hidden(login), login: p.email, password: PASSWORD });
    const done = await b.go('POST', '/oauth2/authorize/consent', { ...hidden(consent), decision: 'deny' });
    expect(done.status).toBe(303);
    expect(done.location!.searchParams.get('error')).toBe('access_denied');
    expect(done.location!.searchParams.get('state')).toBe('st-123');
    expect(done.location!.searchParams.get('code')).toBeNull();
  });

  it('shows the login page again with an error after a wrong password', async () => {
    const p = await signUp(server);
    const b = browser();
    const login = await b.go('GET', authorizeUrl().url);
    const again = await b.go('POST', '/oauth2/authorize/login', { ...hidden(login), login: p.email, password: 'wrong password!' });
    expect(again.status).toBe(401);
    expect(again.text).toContain('role="alert"');
    const consent = await b.go('POST', '/oauth2/authorize/login', { ...hidden(again), login: p.email, password: PASSWORD });
    expect(consent.status).toBe(200);
    expect(consent.text).toContain('decision');
  });

  it('asks for the OTP of an account with a second factor', async () => {
    const p = await signUp(server);
    const t = await tokensFor(server, p.email);
    const auth = { authorization: `Bearer ${t.access_token}` };
    const secret = (await json(server, '/auth/mfa/totp', {}, auth)).body.secret;
    const totp = new TOTP({ secret: Secret.fromBase32(secret) });
    expect((await json(server, '/auth/mfa/totp/activate', { otp: totp.generate() }, auth)).status).toBe(200);
    const b = browser();
    const login = await b.go('GET', authorizeUrl().url);
    const mfa = await b.go('POST', '/oauth2/authorize/login', { ...hidden(login), login: p.email, password: PASSWORD });
    expect(mfa.text).toContain('name="otp"');
    const wrong = await b.go('POST', '/oauth2/authorize/mfa', { ...hidden(mfa), stage: 'mfa', otp: '000000' });
    expect(wrong.status).toBe(401);
    const consent = await b.go('POST', '/oauth2/authorize/mfa', { ...hidden(wrong), stage: 'mfa', otp: totp.generate({ timestamp: Date.now() + 30_000 }) });
    expect(consent.status).toBe(200);
    expect(consent.text).toContain('decision');
  });
});

describe('refusals', () => {
  it('shows an error page, never a redirect, for an unregistered redirect_uri or an unknown client', async () => {
    for (const over of [{ redirect_uri: 'https://evil.example.com/cb' }, { client_id: 'nobody' }, { redirect_uri: undefined }]) {
      const page = await browser().go('GET', authorizeUrl(over).url);
      expect(page.status).toBe(400);
      expect(page.location).toBeUndefined();
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    }
  });

  it.each([
    ['a wrong aud', { aud: 'https://other.example.com/fhir' }, 'invalid_request'],
    ['no PKCE for a public client', { code_challenge: undefined, code_challenge_method: undefined }, 'invalid_request'],
    ['PKCE plain', { code_challenge_method: 'plain' }, 'invalid_request'],
    ['response_type token', { response_type: 'token' }, 'unsupported_response_type'],
    ['no scope', { scope: undefined }, 'invalid_scope'],
  ])('redirects with an error for %s', async (_label, over, error) => {
    const page = await browser().go('GET', authorizeUrl(over).url);
    expect(page.status).toBe(303);
    expect(page.location!.searchParams.get('error')).toBe(error);
    expect(page.location!.searchParams.get('state')).toBe('st-123');
  });

  it('refuses a form without the right CSRF token or from another browser (403)', async () => {
    const p = await signUp(server);
    const b = browser();
    const login = await b.go('GET', authorizeUrl().url);
    const { request, csrf } = hidden(login);
    const forged = await b.go('POST', '/oauth2/authorize/login', { request, csrf: 'x'.repeat(43), login: p.email, password: PASSWORD });
    expect(forged.status).toBe(403);
    const other = await browser().go('POST', '/oauth2/authorize/login', { request, csrf, login: p.email, password: PASSWORD });
    expect(other.status).toBe(403);
    // The request itself is still good in its own browser.
    expect((await b.go('POST', '/oauth2/authorize/login', { request, csrf, login: p.email, password: PASSWORD })).status).toBe(200);
  });

  it('cannot approve before signing in, nor approve twice', async () => {
    const p = await signUp(server);
    const b = browser();
    const login = await b.go('GET', authorizeUrl().url);
    expect((await b.go('POST', '/oauth2/authorize/consent', { ...hidden(login), decision: 'approve' })).status).toBe(400);
    const consent = await b.go('POST', '/oauth2/authorize/login', { ...hidden(login), login: p.email, password: PASSWORD });
    expect((await b.go('POST', '/oauth2/authorize/consent', { ...hidden(consent), decision: 'approve' })).status).toBe(303);
    expect((await b.go('POST', '/oauth2/authorize/consent', { ...hidden(consent), decision: 'approve' })).status).toBe(400);
  });

  it('serves the stylesheet as a file', async () => {
    const res = await fetch(`${server.baseUrl}/auth/static/auth.css`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/css/);
    expect(await res.text()).toContain('.card');
  });
});
