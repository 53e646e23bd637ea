/**
 * Starts the real app over HTTP for a test file: PGlite in memory by default, or the PostgreSQL server of
 * DATABASE_URL (as .ci/run does). Every test makes its own data, so files can share one database.
 */
import type { AddressInfo } from 'node:net';
import type { RequestListener } from 'node:http';
import { join } from 'node:path';
import { createApp, type App, type AppDeps } from '../../src/app';
import { createHttpServer } from '../../src/http/clientErrors';
import { loadConfig, projectRoot, type Config } from '../../src/config';
import { loadDefinitions } from '../../src/fhir/definitions';
import { loadValidator } from '../../src/fhir/validation';
import { openDatabase, type Database } from '../../src/storage/database';
import { migrate } from '../../src/storage/migrate';

export interface TestServer {
  baseUrl: string;
  fhirBase: string;
  db: Database;
  config: Config;
  /** A system/*.* access token of the bootstrap admin client. */
  adminToken(): Promise<string>;
  request(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<TestResponse>;
  close(): Promise<void>;
}

export interface TestResponse {
  status: number;
  headers: Headers;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

/** The bootstrap admin client every test server has (CONTRACT section 1). */
export const TEST_ADMIN = { id: 'test-admin', secret: 'test-admin-secret-0123456789abcdef' };
const DEFAULT_ENV = {
  BOOTSTRAP_CLIENT_ID: TEST_ADMIN.id,
  BOOTSTRAP_CLIENT_SECRET: TEST_ADMIN.secret,
  APP_REDIRECT_URIS: 'http://127.0.0.1:5173/callback,br.com.healthmed.app:/callback',
};

/**
 * `env` overrides configuration variables (e.g. `OUTBOX_POLL_MS`); `deps` replaces app dependencies (a mailer
 * that records; `background: false` for no outbox worker; `outbox` handlers and a short lease or backoff).
 * Requests to /fhir carry a system/*.* token of the bootstrap client unless the test passes its own
 * `authorization` header ('' sends none).
 */
export async function startServer(env: Record<string, string> = {}, deps: Pick<AppDeps, 'mailer' | 'background' | 'outbox'> = {}): Promise<TestServer> {
  env = { ...DEFAULT_ENV, ...env };
  // env.DATABASE_URL: a database of the test's own (e.g. a private cluster it restarts)
  const db = await openDatabase({
    databaseUrl: env.DATABASE_URL ?? process.env.DATABASE_URL,
    dataDir: 'memory://',
    poolSize: 10,
    statementTimeoutMs: loadConfig({ ...process.env, ...env }).dbStatementTimeoutMs,
  });
  await migrate(db, join(projectRoot(), 'migrations'));
  loadDefinitions();
  const placeholder = loadConfig({ ...process.env, PORT: '0', ...env });
  const validator = loadValidator(placeholder.profilesDir);
  // Listen first to learn the port, so BASE_URL (and every absolute URL the server writes) is right.
  // The same server main.ts creates (protocol errors answered as OperationOutcomes); the app is bound once the port is known.
  let app: RequestListener = (_req, res) => res.writeHead(503).end();
  const server = createHttpServer((req, res) => app(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const config = loadConfig({ ...process.env, PORT: String(port), BASE_URL: `http://127.0.0.1:${port}`, ...env });
  const koa: App = createApp({ config, db, validator, ...deps });
  app = koa.callback();
  const baseUrl = config.baseUrl;

  let systemToken: string | undefined;
  async function adminToken(): Promise<string> {
    if (!systemToken) {
      const res = await fetch(`${baseUrl}/oauth2/token`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from(`${TEST_ADMIN.id}:${TEST_ADMIN.secret}`).toString('base64')}`,
        },
        body: 'grant_type=client_credentials&scope=system%2F*.*',
      });
      if (res.status !== 200) throw new Error(`system token: ${res.status} ${await res.text()}`);
      systemToken = ((await res.json()) as { access_token: string }).access_token;
    }
    return systemToken;
  }

  async function request(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<TestResponse> {
    const h: Record<string, string> = { accept: 'application/fhir+json', ...headers };
    const authKey = Object.keys(h).find((k) => k.toLowerCase() === 'authorization');
    if (authKey === undefined && /^(https?:\/\/[^/]+)?\/fhir(\/|\?|$)/.test(path)) h.authorization = `Bearer ${await adminToken()}`;
    else if (authKey !== undefined && h[authKey] === '') delete h[authKey];
    let payload: string | undefined;
    if (body !== undefined) {
      payload = typeof body === 'string' ? body : JSON.stringify(body);
      if (!Object.keys(h).some((k) => k.toLowerCase() === 'content-type')) h['content-type'] = 'application/fhir+json';
    }
    const url = path.startsWith('http') ? path : `${baseUrl}${path}`;
    const res = await fetch(url, { method, headers: h, body: payload });
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: res.status, headers: res.headers, text, body: parsed };
  }

  return {
    adminToken,
    baseUrl,
    fhirBase: `${baseUrl}/fhir`,
    db,
    config,
    request,
    close: async () => {
      const background = koa.stopBackground();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await background;
      await db.close();
    },
  };
}
