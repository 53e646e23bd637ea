/**
 * The user's side of a SMART launch without a real browser: a cookie jar, redirects not followed, and the
 * server-rendered forms filled from their hidden fields (request, csrf). The pages' field names are stable
 * (src/auth/pages/views.ts): login, password, decision.
 */
import { PASSWORD } from '../auth/helpers';

export interface Page {
  status: number;
  text: string;
  location?: string;
}

export function plainBrowser() {
  const jar = new Map<string, string>();
  async function go(method: 'GET' | 'POST', url: string, form?: Record<string, string>): Promise<Page> {
    const headers: Record<string, string> = { accept: 'text/html' };
    if (jar.size) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    if (form) headers['content-type'] = 'application/x-www-form-urlencoded';
    const res = await fetch(url, { method, headers, body: form ? new URLSearchParams(form).toString() : undefined, redirect: 'manual' });
    for (const cookie of res.headers.getSetCookie()) {
      const [pair] = cookie.split(';');
      const eq = pair.indexOf('=');
      jar.set(pair.slice(0, eq).trim(), pair.slice(eq + 1));
    }
    const location = res.headers.get('location');
    return { status: res.status, text: await res.text(), location: location ? new URL(location, url).href : undefined };
  }
  return { go };
}

/** The hidden fields every form of the flow carries. */
export function hiddenFields(page: Page): { request: string; csrf: string } {
  const request = /name="request" value="([^"]+)"/.exec(page.text)?.[1];
  const csrf = /name="csrf" value="([^"]+)"/.exec(page.text)?.[1];
  if (!request || !csrf) throw new Error(`no request/csrf fields on the page (${page.status}): ${page.text.slice(0, 300)}`);
  return { request, csrf };
}

/**
 * From the authorization URL an app redirected to, through the login and approval pages, to the redirect back
 * to the app: returns that redirect's URL (with code and state).
 */
export async function signInAndApprove(authorizeUrl: string, login: string, password = PASSWORD): Promise<URL> {
  const browser = plainBrowser();
  const server = new URL(authorizeUrl).origin;
  const loginPage = await browser.go('GET', authorizeUrl);
  if (loginPage.status !== 200) throw new Error(`login page: ${loginPage.status} ${loginPage.location ?? loginPage.text.slice(0, 300)}`);
  const approval = await browser.go('POST', `${server}/oauth2/authorize/login`, { ...hiddenFields(loginPage), login, password });
  if (approval.status !== 200) throw new Error(`login: ${approval.status} ${approval.text.slice(0, 300)}`);
  const done = await browser.go('POST', `${server}/oauth2/authorize/consent`, { ...hiddenFields(approval), decision: 'approve' });
  if (done.status !== 303 || !done.location) throw new Error(`approval: ${done.status} ${done.text.slice(0, 300)}`);
  return new URL(done.location);
}
