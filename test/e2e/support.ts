/**
 * What the browser tests need besides the server: the app's redirect URI (a tiny HTTP server that records the
 * `code` and `state` it receives, as a SMART app's callback page would), Debian's Chromium driven by
 * playwright-core, and a screenshot of the page when a test fails.
 */
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Flags for a root user in a container without a display or network beyond loopback. */
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

/** One request the redirect URI received. */
export interface Callback {
  code: string | null;
  state: string | null;
  error: string | null;
  url: URL;
}

export interface RedirectTarget {
  /** The redirect URI to register for healthmed-app (`APP_REDIRECT_URIS`). */
  redirectUri: string;
  origin: string;
  received: Callback[];
  close(): Promise<void>;
}

/** The app's callback page: answers a plain HTML page and records what the authorization server sent. */
export async function startRedirectTarget(): Promise<RedirectTarget> {
  const received: Callback[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', `http://${req.headers.host}`);
    if (url.pathname === '/callback') {
      const q = url.searchParams;
      received.push({ code: q.get('code'), state: q.get('state'), error: q.get('error'), url });
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end('<!doctype html><title>App</title><h1 id="app-callback">Signed in</h1>');
      return;
    }
    if (url.pathname === '/favicon.ico') return void res.writeHead(204).end();
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    redirectUri: `${origin}/callback`,
    origin,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

let screenshotDir: string | undefined;

/**
 * Runs a test body against a page; when it fails, saves a full-page screenshot into a temporary directory,
 * names the file on stderr, and rethrows.
 */
export async function onFailureScreenshot(page: Page, name: string, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (err) {
    screenshotDir ??= mkdtempSync(join(tmpdir(), 'fhir-e2e-'));
    const file = join(screenshotDir, `${name.replace(/[^A-Za-z0-9_-]+/g, '-')}.png`);
    try {
      await page.screenshot({ path: file, fullPage: true });
      console.error(`screenshot of the failing page (${page.url()}): ${file}`);
    } catch (shotError) {
      console.error(`could not take a screenshot: ${String(shotError)}`);
    }
    throw err;
  }
}
