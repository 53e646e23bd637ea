/**
 * The SMART standalone launch in a real browser: headless Chromium (Debian's) driven by playwright-core through
 * GET /oauth2/authorize -> login page -> approval page -> redirect to the app with `code` and `state`, then the
 * code is exchanged with the PKCE verifier and the token reads FHIR data.
 * https://hl7.org/fhir/smart-app-launch/app-launch.html#obtain-authorization-code
 * The same pages over plain HTTP (every refusal, MFA) are covered by test/auth/authorize.test.ts; this file is
 * about what only a browser shows: that the forms submit, the CSP lets the page work and blocks the rest, the
 * redirect after the form is allowed, and the page fits a phone.
 */
import { randomBytes } from 'node:crypto';
import type { Browser, BrowserContext, Page, Response } from 'playwright-core';
import { startServer, type TestServer } from '../helpers/server';
import { ADMIN_ENV, PASSWORD, exchange, pkce, punctuatedCpf, signUp } from '../auth/helpers';
import { launchChromium, onFailureScreenshot, startRedirectTarget, type Callback, type RedirectTarget } from './support';

const SCOPE = 'openid fhirUser launch/patient patient/*.rs offline_access';
const PHONE = { width: 390, height: 844 };

let server: TestServer;
let target: RedirectTarget;
let browser: Browser;
/** The browser contexts (separate cookie jars) a test opened; closed after each test. */
let contexts: BrowserContext[] = [];
let page: Page;
/** Console errors of the latest page: a CSP violation shows up there ("Refused to ..."). */
let consoleErrors: string[];
/** The console errors that report a Content-Security-Policy violation (a missing favicon is not one). */
const cspViolations = () => consoleErrors.filter((m) => /Content Security Policy|Refused to/i.test(m));

beforeAll(async () => {
  target = await startRedirectTarget();
  server = await startServer({ ...ADMIN_ENV, APP_REDIRECT_URIS: target.redirectUri });
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
  await target?.close();
});

async function newPage(options: Parameters<Browser['newContext']>[0] = {}): Promise<Page> {
  const ctx = await browser.newContext(options);
  const p = await ctx.newPage();
  const errors: string[] = [];
  p.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  p.on('pageerror', (e) => errors.push(e.message));
  contexts.push(ctx);
  consoleErrors = errors;
  return p;
}

beforeEach(async () => {
  page = await newPage();
});
afterEach(async () => {
  await Promise.all(contexts.map((c) => c.close()));
  contexts = [];
});

/** A browser test: a screenshot of the page goes to a temporary directory when it fails. */
function browserTest(name: string, body: () => Promise<void>) {
  it(name, () => onFailureScreenshot(page, name, body));
}

/** The authorization request a SMART app sends the browser to (standalone launch, PKCE S256). */
function authorizeRequest() {
  const { verifier, challenge } = pkce();
  const state = randomBytes(12).toString('base64url');
  const q = new URLSearchParams({
    response_type: 'code',
    client_id: 'healthmed-app',
    redirect_uri: target.redirectUri,
    scope: SCOPE,
    state,
    aud: server.fhirBase,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  });
  return { url: `${server.baseUrl}/oauth2/authorize?${q}`, verifier, state };
}

/** Clicks a submit button and returns the response to the form's POST (the page has loaded it when this returns). */
async function submit(p: Page, button: string, path: string): Promise<Response> {
  const [response] = await Promise.all([
    p.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === path),
    p.click(button),
  ]);
  await p.waitForLoadState('load');
  return response;
}

const callbacksFor = (state: string): Callback[] => target.received.filter((c) => c.state === state);

/** Login page -> approval page -> the app's redirect URI; returns what the app received. */
async function signInAndApprove(p: Page, login: string, request = authorizeRequest()): Promise<Callback & { verifier: string }> {
  const loginPage = await p.goto(request.url);
  expect(loginPage?.status()).toBe(200);
  await p.fill('#login', login);
  await p.fill('#password', PASSWORD);
  const approval = await submit(p, 'button[type=submit]', '/oauth2/authorize/login');
  expect(approval.status()).toBe(200);
  await p.locator('button[name=decision][value=approve]').waitFor({ state: 'visible' });
  expect(await p.locator('ul.scopes li').count()).toBeGreaterThan(0);

  await Promise.all([p.waitForURL((u) => u.href.startsWith(`${target.redirectUri}?`)), p.click('button[name=decision][value=approve]')]);
  await p.locator('#app-callback').waitFor();
  const received = callbacksFor(request.state);
  expect(received).toHaveLength(1);
  expect(received[0].error).toBeNull();
  expect(received[0].code).toEqual(expect.any(String));
  // The browser really landed there: the address bar carries the same code and state.
  const landed = new URL(p.url());
  expect(landed.searchParams.get('code')).toBe(received[0].code);
  expect(landed.searchParams.get('state')).toBe(request.state);
  // Neither the stylesheet, the form posts nor the redirect after the last one ran into the CSP.
  expect(cspViolations()).toEqual([]);
  return { ...received[0], verifier: request.verifier };
}

async function readPatient(id: string, token: string) {
  return server.request('GET', `/fhir/Patient/${id}`, undefined, { authorization: `Bearer ${token}` });
}

/** Exchanges the code like the app would, and checks what the token reads. */
async function expectTokenReadsOnlyOwnRecord(callback: Callback & { verifier: string }, patient: string) {
  const tokens = await exchange(server, callback.code!, callback.verifier, { redirect_uri: target.redirectUri });
  expect(tokens.status).toBe(200);
  expect(tokens.body).toMatchObject({ token_type: 'Bearer', patient: patient.split('/')[1], refresh_token: expect.any(String) });
  const own = await readPatient(tokens.body.patient, tokens.body.access_token);
  expect(own.status).toBe(200);
  expect(own.body).toMatchObject({ resourceType: 'Patient', id: tokens.body.patient });

  const other = await signUp(server);
  const theirs = await readPatient(other.patient.split('/')[1], tokens.body.access_token);
  expect([403, 404]).toContain(theirs.status);
  expect(theirs.body.resourceType).toBe('OperationOutcome');
}

describe('SMART standalone launch in headless Chromium', () => {
  browserTest('signs in with the e-mail, approves, and the code gives a token for the own record only', async () => {
    const person = await signUp(server);
    const callback = await signInAndApprove(page, person.email);
    await expectTokenReadsOnlyOwnRecord(callback, person.patient);
  });

  browserTest('signs in with the CPF written with punctuation', async () => {
    const person = await signUp(server);
    const callback = await signInAndApprove(page, punctuatedCpf(person.cpf));
    await expectTokenReadsOnlyOwnRecord(callback, person.patient);
  });

  browserTest('shows the error on the login page after a wrong password, without redirecting', async () => {
    const person = await signUp(server);
    const request = authorizeRequest();
    await page.goto(request.url);
    await page.fill('#login', person.email);
    await page.fill('#password', 'not the password');
    const refused = await submit(page, 'button[type=submit]', '/oauth2/authorize/login');
    expect(refused.status()).toBe(401);
    const alert = page.locator('[role=alert]');
    await alert.waitFor({ state: 'visible' });
    expect((await alert.innerText()).trim()).not.toBe('');
    expect(new URL(page.url()).origin).toBe(server.baseUrl);
    expect(await page.locator('#password').inputValue()).toBe('');
    expect(await page.locator('button[name=decision]').count()).toBe(0);
    expect(callbacksFor(request.state)).toEqual([]);

    // The page it shows is a working login page for the same request.
    await page.fill('#login', person.email);
    await page.fill('#password', PASSWORD);
    expect((await submit(page, 'button[type=submit]', '/oauth2/authorize/login')).status()).toBe(200);
    await page.locator('button[name=decision][value=approve]').waitFor({ state: 'visible' });
  });
});

describe('the login page', () => {
  browserTest('sends a strict Content-Security-Policy, has no inline script, and the browser enforces it', async () => {
    const response = await page.goto(authorizeRequest().url);
    const headers = response!.headers();
    const csp = headers['content-security-policy'];
    expect(csp).toMatch(/(^|;)\s*default-src 'none'/);
    expect(csp).toMatch(/frame-ancestors 'none'/);
    expect(csp).toMatch(/base-uri 'none'/);
    expect(csp).toContain(`form-action 'self' ${target.origin}`);
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|\*/);
    expect(csp).not.toMatch(/script-src/);
    expect(headers['x-frame-options']).toBe('DENY');
    expect(headers['cache-control']).toContain('no-store');

    const html = await response!.text();
    expect(html).not.toMatch(/<script|\sstyle=|\son[a-z]+=/i);
    expect(await page.locator('script').count()).toBe(0);
    // The one stylesheet is the page's own file, and it loaded (style-src 'self').
    expect(await page.evaluate('Array.from(document.styleSheets).map((s) => new URL(s.href).pathname)')).toEqual(['/auth/static/auth.css']);
    expect(await page.evaluate('document.styleSheets[0].cssRules.length')).toBeGreaterThan(0);
    expect(cspViolations()).toEqual([]);

    // An injected inline script does not run.
    await expect(page.addScriptTag({ content: 'window.injected = true;' })).rejects.toThrow();
    expect(await page.evaluate('window.injected')).toBeUndefined();
    expect(cspViolations().join('\n')).toMatch(/inline script/);
  });

  browserTest('refuses a form post without the CSRF token', async () => {
    const person = await signUp(server);
    const request = authorizeRequest();
    await page.goto(request.url);
    await page.locator('input[name=csrf]').evaluate((input) => (input as unknown as { remove(): void }).remove());
    await page.fill('#login', person.email);
    await page.fill('#password', PASSWORD);
    const refused = await submit(page, 'button[type=submit]', '/oauth2/authorize/login');
    expect(refused.status()).toBe(403);
    expect(await page.locator('button[name=decision]').count()).toBe(0);
    expect(callbacksFor(request.state)).toEqual([]);
  });

  browserTest("refuses another browser posting this browser's form (token bound to the cookie)", async () => {
    const person = await signUp(server);
    await page.goto(authorizeRequest().url);
    const request = await page.locator('input[name=request]').inputValue();
    const csrf = await page.locator('input[name=csrf]').inputValue();

    // A second browser (its own cookie jar) gets its own login page, then posts the first one's fields.
    const other = await newPage();
    await other.goto(authorizeRequest().url);
    await other.locator('input[name=request]').evaluate((input, value) => ((input as unknown as { value: string }).value = value), request);
    await other.locator('input[name=csrf]').evaluate((input, value) => ((input as unknown as { value: string }).value = value), csrf);
    await other.fill('#login', person.email);
    await other.fill('#password', PASSWORD);
    expect((await submit(other, 'button[type=submit]', '/oauth2/authorize/login')).status()).toBe(403);
    expect(await other.locator('button[name=decision]').count()).toBe(0);
  });

  it('is usable on a phone (390x844): fits the width, buttons visible, and the flow completes by touch', async () => {
    page = await newPage({ viewport: PHONE, deviceScaleFactor: 3, isMobile: true, hasTouch: true });
    await onFailureScreenshot(page, 'phone', async () => {
      const person = await signUp(server);
      const request = authorizeRequest();
      await page.goto(request.url);
      // With isMobile, a page without a viewport meta tag would be laid out 980 px wide and shrunk.
      expect(await page.evaluate('document.documentElement.clientWidth')).toBe(PHONE.width);
      expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(PHONE.width);
      for (const selector of ['#login', '#password', 'button[type=submit]']) await expectWithinViewport(page, selector);

      await page.tap('#login');
      await page.fill('#login', person.email);
      await page.tap('#password');
      await page.fill('#password', PASSWORD);
      await Promise.all([page.waitForURL((u) => u.pathname === '/oauth2/authorize/login'), page.tap('button[type=submit]')]);
      await page.locator('button[name=decision][value=approve]').waitFor({ state: 'visible' });
      expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(PHONE.width);
      await expectWithinViewport(page, 'button[name=decision][value=deny]', { scroll: true });
      await expectWithinViewport(page, 'button[name=decision][value=approve]', { scroll: true });
      await Promise.all([page.waitForURL((u) => u.href.startsWith(`${target.redirectUri}?`)), page.tap('button[name=decision][value=approve]')]);
      expect(callbacksFor(request.state)).toHaveLength(1);
      expect(callbacksFor(request.state)[0].code).toEqual(expect.any(String));
    });
  });
});

/** The element is visible, at least 40 px tall (a finger's target), and entirely inside the phone's screen. */
async function expectWithinViewport(p: Page, selector: string, { scroll = false } = {}) {
  const element = p.locator(selector);
  if (scroll) await element.scrollIntoViewIfNeeded();
  expect(await element.isVisible()).toBe(true);
  const box = await element.boundingBox();
  expect(box).not.toBeNull();
  expect(box!.x).toBeGreaterThanOrEqual(0);
  expect(box!.y).toBeGreaterThanOrEqual(0);
  expect(box!.x + box!.width).toBeLessThanOrEqual(PHONE.width);
  expect(box!.y + box!.height).toBeLessThanOrEqual(PHONE.height);
  expect(box!.height).toBeGreaterThanOrEqual(40);
}
