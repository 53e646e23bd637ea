/**
 * Test support for Subscriptions: a real HTTP receiver on 127.0.0.1 (what it answers chosen per path), a test
 * server whose SUBSCRIPTION_ENDPOINT_ALLOWLIST names it, and the Subscription outbox handlers built for that
 * server with what a test needs (made-up DNS names, few attempts, short delays), given to its outbox worker.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FhirServices } from '../../src/fhir/context';
import { loadValidator } from '../../src/fhir/validation';
import { InsertBatcher } from '../../src/storage/insertBatcher';
import { createWorkflows } from '../../src/workflows';
import type { OutboxHandlers, OutboxHandlerSpec } from '../../src/workflows/outbox/worker';
import { subscriptionHandlers, SUBSCRIPTION_KINDS } from '../../src/workflows/subscriptions';
import type { LookupFunction } from '../../src/workflows/subscriptions/endpoint';
import { startServer, type TestServer } from '../helpers/server';

export interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** What the receiver answered. */
  status: number;
}

export interface Receiver {
  port: number;
  /** `http://127.0.0.1:<port>` */
  base: string;
  received: Received[];
  /** Requests to a path, answered or not. */
  to(path: string): Received[];
  /** What a path answers its n-th request (from 1); default 204 for every path. */
  answers: Map<string, (n: number) => number>;
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  const received: Received[] = [];
  const answers = new Map<string, (n: number) => number>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = (req.url ?? '/').split('?')[0];
      const n = received.filter((r) => r.path === path).length + 1;
      const status = answers.get(path)?.(n) ?? 204;
      received.push({ path, headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), status });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    base: `http://127.0.0.1:${port}`,
    received,
    to: (path) => received.filter((r) => r.path === path),
    answers,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A resolver that knows only the names the test gives it (e.g. a public-looking name for 127.0.0.1): no real DNS. */
export function fakeDns(names: Map<string, string>): LookupFunction {
  const lookup = (hostname: string, options: unknown, callback: unknown) => {
    const cb = (typeof options === 'function' ? options : callback) as (err: NodeJS.ErrnoException | null, address?: unknown, family?: number) => void;
    const all = typeof options === 'object' && options !== null && (options as { all?: boolean }).all;
    const address = names.get(hostname.toLowerCase());
    if (address === undefined) {
      setImmediate(() => cb(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND', hostname })));
      return;
    }
    const family = address.includes(':') ? 6 : 4;
    setImmediate(() => (all ? cb(null, [{ address, family }]) : cb(null, address, family)));
  };
  return lookup as unknown as LookupFunction;
}

export interface SubscriptionTestServer {
  server: TestServer;
  receiver: Receiver;
  /** What the fake DNS answers (change it between steps). */
  dns: Map<string, string>;
  close(): Promise<void>;
}

export const NOTIFY_ATTEMPTS_IN_TESTS = 5;

/** A test server allow-listing the receiver, with an outbox worker polling every 20 ms that runs the Subscription handlers. */
export async function startSubscriptionServer(env: Record<string, string> = {}): Promise<SubscriptionTestServer> {
  const started = new Date();
  const receiver = await startReceiver();
  const dns = new Map<string, string>();
  // The handlers need the server's database, which exists once it started: the worker gets stand-ins that call them.
  let inner: OutboxHandlers | undefined;
  const handlers: OutboxHandlers = Object.fromEntries(
    SUBSCRIPTION_KINDS.map((kind) => [
      kind,
      {
        handle: (payload, job) => (inner![kind] as OutboxHandlerSpec).handle(payload, job),
        backoffMs: (attempt) => (kind === 'subscription.notify' ? 20 : 50 * attempt),
      } satisfies OutboxHandlerSpec,
    ]),
  );
  const server = await startServer(
    { SUBSCRIPTION_ENDPOINT_ALLOWLIST: `127.0.0.1:${receiver.port}`, OUTBOX_POLL_MS: '20', ...env },
    { outbox: { handlers } },
  );
  const { config, db } = server;
  const fhirBaseUrl = `${config.baseUrl}/fhir`;
  const services: FhirServices = {
    db,
    inserts: new InsertBatcher(db, fhirBaseUrl, { writers: 1, maxBatch: 64 }),
    validator: loadValidator(config.profilesDir),
    workflows: createWorkflows({
      scheduling: { videoBaseUrl: config.videoBaseUrl },
      subscriptions: { endpointAllowlist: config.subscriptionEndpointAllowlist },
    }),
    settings: {
      fhirBaseUrl,
      enforceReferentialIntegrityOnWrite: config.enforceReferentialIntegrityOnWrite,
      enforceReferentialIntegrityOnDelete: config.enforceReferentialIntegrityOnDelete,
      limits: config.limits,
    },
  };
  inner = subscriptionHandlers({
    services,
    settings: { endpointAllowlist: config.subscriptionEndpointAllowlist },
    lookup: fakeDns(dns),
    timeoutMs: 2000,
    notifyMaxAttempts: NOTIFY_ATTEMPTS_IN_TESTS,
  });
  return {
    server,
    receiver,
    dns,
    close: async () => {
      // Test files may share one database (DATABASE_URL): leave no Subscription watching what the next file writes.
      const mine = await db.query<{ subscription_id: string }>('SELECT subscription_id FROM subscription_owner WHERE created_at >= $1', [started]);
      for (const { subscription_id } of mine.rows) await server.request('DELETE', `/fhir/Subscription/${subscription_id}`);
      await server.close();
      await receiver.close();
    },
  };
}

export async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Waits until no Subscription outbox row is pending (every event handled, every notification delivered or given up; delays here are short). */
export async function subscriptionsIdle(server: TestServer): Promise<void> {
  await waitFor('the subscription outbox rows to be handled', async () => {
    const r = await server.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM outbox WHERE state = 'pending' AND kind LIKE 'subscription.%'`,
    );
    return Number(r.rows[0].n) === 0;
  });
}
