/**
 * The transactional outbox (issue 12 "Everyone is told"; migrations/0008_scheduling.sql,
 * src/workflows/outbox/worker.ts): rows written in a committed transaction are delivered, a rolled-back
 * transaction's never; failures are retried with backoff until they succeed (exactly one successful
 * delivery), or the row is `dead` after its max attempts, counted in /metrics; several workers on one
 * database never deliver a row twice while it is leased; a lease that lapses (its worker died) is delivered
 * again. Both databases: PGlite by default, the PostgreSQL server of DATABASE_URL when set.
 */
import { randomBytes } from 'node:crypto';
import type { Practitioner } from '@medplum/fhirtypes';
import { openDatabase, type Database } from '../../src/storage/database';
import { enqueue } from '../../src/workflows/outbox/enqueue';
import { createOutboxWorker, DeliveryError, type OutboxJob, type OutboxWorker } from '../../src/workflows/outbox/worker';
import { signUpPractitioner } from '../auth/helpers';
import { startServer, type TestServer } from '../helpers/server';
import { icsLines, icsOf, sleep, startSmtp, storeResource, waitFor, type TestSmtp } from './outboxSupport';

// Kinds of this run only: another test file's rows (a shared PostgreSQL database) are never claimed here.
const run = randomBytes(4).toString('hex');
const KIND = { ok: `test-${run}.ok`, flaky: `test-${run}.flaky`, failing: `test-${run}.failing`, unknown: `test-${run}.unknown` };

/** Deliveries each handler saw, by payload marker. */
const delivered = new Map<string, OutboxJob[]>();
const record = (payload: Record<string, unknown>, job: OutboxJob) => {
  const key = String(payload.marker);
  delivered.set(key, [...(delivered.get(key) ?? []), job]);
};
const marker = () => randomBytes(6).toString('hex');

let server: TestServer;
let smtp: TestSmtp;

beforeAll(async () => {
  smtp = await startSmtp(() => 'accept');
  server = await startServer(
    { OUTBOX_POLL_MS: '50', SMTP_URL: smtp.url, MAIL_FROM: 'Health&Med <no-reply@healthmed.test>' },
    {
      outbox: {
        backoffMs: () => 30,
        // Rows of a kind this server has no handler for (the other workers' below) are left alone for 10 s.
        unknownKindGraceMs: 10_000,
        maintenanceEveryMs: 50,
        handlers: {
          [KIND.ok]: async (payload, job) => record(payload, job),
          [KIND.flaky]: {
            handle: async (payload, job) => {
              if (job.attempts <= 3) throw new Error(`refused for ana@example.com (attempt ${job.attempts})`);
              record(payload, job);
            },
            backoffMs: (attempt) => 10 * attempt,
          },
          [KIND.failing]: async () => {
            throw new Error('the receiver of ana@example.com is down');
          },
        },
      },
    },
  );
});
afterAll(async () => {
  await server?.close();
  await smtp?.close();
});

interface OutboxRowState {
  state: string;
  attempts: number;
  last_error: string | null;
  done_at: Date | null;
}

async function rowsWith(db: Database, mark: string): Promise<OutboxRowState[]> {
  const r = await db.query<OutboxRowState>(`SELECT state, attempts, last_error, done_at FROM outbox WHERE payload->>'marker' = $1 ORDER BY id`, [mark]);
  return r.rows;
}

test('rows enqueued in a committed transaction are delivered, once, and marked done', async () => {
  const marks = [marker(), marker(), marker()];
  await server.db.transaction((tx) => enqueue(tx, marks.map((m) => ({ kind: KIND.ok, payload: { marker: m } }))));
  await waitFor('three deliveries', () => marks.every((m) => delivered.has(m)));
  for (const m of marks) {
    await waitFor('done', async () => (await rowsWith(server.db, m))[0]?.state === 'done');
    const [row] = await rowsWith(server.db, m);
    expect(row).toMatchObject({ state: 'done', attempts: 1, last_error: null });
    expect(row.done_at).not.toBeNull();
  }
  await sleep(300);
  for (const m of marks) expect(delivered.get(m)).toHaveLength(1);
});

test("a rolled-back transaction's rows are never delivered", async () => {
  const m = marker();
  await expect(
    server.db.transaction(async (tx) => {
      await enqueue(tx, [{ kind: KIND.ok, payload: { marker: m } }]);
      throw new Error('the change failed');
    }),
  ).rejects.toThrow('the change failed');
  await sleep(500); // ten polls
  expect(delivered.has(m)).toBe(false);
  expect(await rowsWith(server.db, m)).toEqual([]);
});

test('a row due later waits for its time', async () => {
  const m = marker();
  const dueAt = new Date(Date.now() + 800);
  await enqueue(server.db, [{ kind: KIND.ok, payload: { marker: m }, dueAt }]);
  await sleep(400);
  expect(delivered.has(m)).toBe(false);
  await waitFor('the delivery', () => delivered.has(m));
  expect(Date.now()).toBeGreaterThanOrEqual(dueAt.getTime());
});

test('a handler that fails 3 times then succeeds yields exactly one successful delivery, after backoff', async () => {
  const m = marker();
  await enqueue(server.db, [{ kind: KIND.flaky, payload: { marker: m } }]);
  await waitFor('the fourth attempt', () => delivered.has(m));
  await waitFor('done', async () => (await rowsWith(server.db, m))[0]?.state === 'done');
  await sleep(300);
  expect(delivered.get(m)).toHaveLength(1);
  expect(delivered.get(m)![0].attempts).toBe(4);
  expect((await rowsWith(server.db, m))[0]).toMatchObject({ state: 'done', attempts: 4, last_error: null });
});

test('an SMTP server that refuses 3 times (451) then accepts gets the mail exactly once', async () => {
  const admin = await server.adminToken();
  const dr = await signUpPractitioner(server, admin);
  const refusing = new Set<number>();
  let seen = 0;
  smtp.answer = () => {
    seen++;
    if (seen <= 3) {
      refusing.add(seen);
      return 451;
    }
    return 'accept';
  };
  try {
    const id = `appt-${marker()}`;
    await storeResource(server.db, server.fhirBase, {
      resourceType: 'Appointment',
      id,
      status: 'pending',
      start: '2031-05-20T13:00:00Z',
      end: '2031-05-20T13:50:00Z',
      participant: [{ actor: { reference: dr.practitioner }, status: 'needs-action' }],
    });
    await enqueue(server.db, [{ kind: 'mail.booking-requested', payload: { appointment: id, marker: id } }]);
    await waitFor('the mail', () => smtp.received.some((r) => r.to.includes(dr.email)));
    await waitFor('done', async () => (await rowsWith(server.db, id))[0]?.state === 'done');
    await sleep(300);
    const mails = smtp.received.filter((r) => r.to.includes(dr.email));
    expect(mails).toHaveLength(1);
    expect(refusing.size).toBe(3);
    expect((await rowsWith(server.db, id))[0]).toMatchObject({ state: 'done', attempts: 4 });
    expect(icsLines(icsOf(mails[0])!)).toContain(`UID:${id}`);
  } finally {
    smtp.answer = () => 'accept';
  }
});

test('a permanent SMTP refusal (550) is dead at once, with a PHI-free last_error', async () => {
  const id = `appt-${marker()}`;
  const pr = `pr-${marker()}`;
  await storeResource<Practitioner>(server.db, server.fhirBase, { resourceType: 'Practitioner', id: pr, telecom: [{ system: 'email', value: `${pr}@example.com` }] });
  await storeResource(server.db, server.fhirBase, {
    resourceType: 'Appointment',
    id,
    status: 'pending',
    start: '2031-05-21T13:00:00Z',
    participant: [{ actor: { reference: `Practitioner/${pr}` }, status: 'needs-action' }],
  });
  smtp.answer = () => 550;
  try {
    await enqueue(server.db, [{ kind: 'mail.booking-requested', payload: { appointment: id, marker: id } }]);
    await waitFor('dead', async () => (await rowsWith(server.db, id))[0]?.state === 'dead');
    const [row] = await rowsWith(server.db, id);
    expect(row).toMatchObject({ state: 'dead', attempts: 1, last_error: 'SMTP server answered 550' });
  } finally {
    smtp.answer = () => 'accept';
  }
});

test('after max_attempts a row is dead, its last_error free of PHI, and /metrics counts it', async () => {
  const m = marker();
  await enqueue(server.db, [{ kind: KIND.failing, payload: { marker: m }, maxAttempts: 3 }]);
  await waitFor('dead', async () => (await rowsWith(server.db, m))[0]?.state === 'dead');
  const [row] = await rowsWith(server.db, m);
  expect(row).toMatchObject({ state: 'dead', attempts: 3, done_at: null });
  expect(row.last_error).toBe('Error'); // a handler's own message could name someone: only its name and codes are kept
  await sleep(300);
  expect((await rowsWith(server.db, m))[0].attempts).toBe(3);

  const metrics = (await server.request('GET', '/metrics')).text;
  expect(metrics).toContain(`outbox_deliveries_total{kind="${KIND.failing}",outcome="retry"} 2`);
  expect(metrics).toContain(`outbox_deliveries_total{kind="${KIND.failing}",outcome="dead"} 1`);
  expect(metrics).toMatch(new RegExp(`outbox_deliveries_total\\{kind="${KIND.flaky.replace('.', '\\.')}",outcome="done"\\} 1\\b`));
  const dead = Number(/^outbox_rows\{state="dead"\} (\d+)$/m.exec(metrics)?.[1]);
  const deadRows = Number((await server.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM outbox WHERE state = 'dead'`)).rows[0].n);
  expect(dead).toBeGreaterThanOrEqual(1);
  expect(dead).toBe(deadRows);
  expect(metrics).toMatch(/^outbox_rows\{state="pending"\} \d+$/m);
});

test('a kind no handler knows is dead with a clear last_error, once past the grace period', async () => {
  const m = marker();
  await enqueue(server.db, [{ kind: KIND.unknown, payload: { marker: m }, dueAt: new Date(Date.now() - 11_000) }]);
  await waitFor('dead', async () => (await rowsWith(server.db, m))[0]?.state === 'dead');
  expect((await rowsWith(server.db, m))[0]).toMatchObject({ state: 'dead', attempts: 0, last_error: `no handler for kind ${KIND.unknown}` });
  const metrics = (await server.request('GET', '/metrics')).text;
  expect(metrics).toContain(`outbox_deliveries_total{kind="${KIND.unknown}",outcome="dead"} 1`);
});

test('a DeliveryError marked permanent is dead at the first attempt', async () => {
  const kind = `test-${run}.permanent`;
  const db = server.db;
  const worker = createOutboxWorker({
    db,
    pollMs: 50,
    handlers: {
      [kind]: async () => {
        throw new DeliveryError('the endpoint is gone', { permanent: true });
      },
    },
  });
  const m = marker();
  await enqueue(db, [{ kind, payload: { marker: m } }]);
  expect(await worker.runOnce()).toBe(1);
  expect((await rowsWith(db, m))[0]).toMatchObject({ state: 'dead', attempts: 1, last_error: 'the endpoint is gone' });
});

describe('several workers on one database', () => {
  // On PostgreSQL each worker has a pool of its own (as separate servers would); PGlite has one connection.
  const dbs: Database[] = [];
  const workers: OutboxWorker[] = [];
  async function database(): Promise<Database> {
    if (!process.env.DATABASE_URL) return server.db;
    const db = await openDatabase({ databaseUrl: process.env.DATABASE_URL, dataDir: 'memory://', poolSize: 3 });
    dbs.push(db);
    return db;
  }
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await Promise.all(dbs.map((db) => db.close()));
  });

  test('share the work and never deliver one row twice while it is leased', async () => {
    const kind = `test-${run}.shared`;
    const byWorker: Map<string, string[]> = new Map();
    const mk = (name: string) => async (payload: Record<string, unknown>) => {
      byWorker.set(name, [...(byWorker.get(name) ?? []), String(payload.marker)]);
      await sleep(5 + Math.random() * 20);
    };
    const [dbA, dbB, dbC] = [await database(), await database(), await database()];
    workers.push(
      createOutboxWorker({ db: dbA, pollMs: 20, leaseMs: 300, batchSize: 4, handlers: { [kind]: mk('a') } }),
      createOutboxWorker({ db: dbB, pollMs: 20, leaseMs: 300, batchSize: 4, handlers: { [kind]: mk('b') } }),
      createOutboxWorker({ db: dbC, pollMs: 20, leaseMs: 300, batchSize: 4, handlers: { [kind]: mk('c') } }),
    );
    const marks = Array.from({ length: 120 }, marker);
    await server.db.transaction((tx) => enqueue(tx, marks.map((m) => ({ kind, payload: { marker: m } }))));
    for (const w of workers) w.start();
    const all = () => [...byWorker.values()].flat();
    await waitFor('every row', () => all().length >= marks.length, 60_000);
    await sleep(500);
    await Promise.all(workers.splice(0).map((w) => w.stop()));
    expect(all().sort()).toEqual([...marks].sort());
    if (process.env.DATABASE_URL) expect([...byWorker.values()].filter((list) => list.length > 0).length).toBeGreaterThanOrEqual(2);
  });

  test('a delivery that outlasts its lease keeps it (renewed), so no other worker takes the row', async () => {
    const kind = `test-${run}.slow`;
    const seen: string[] = [];
    const m = marker();
    const slow = createOutboxWorker({
      db: await database(),
      pollMs: 20,
      leaseMs: 300,
      handlers: {
        [kind]: async () => {
          seen.push('slow');
          await sleep(1500); // five leases
        },
      },
    });
    const eager = createOutboxWorker({ db: await database(), pollMs: 20, leaseMs: 300, handlers: { [kind]: async () => void seen.push('eager') } });
    workers.push(eager);
    await enqueue(server.db, [{ kind, payload: { marker: m } }]);
    const first = slow.runOnce();
    await waitFor('the slow delivery', () => seen.length === 1);
    eager.start();
    expect(await first).toBe(1);
    await sleep(500);
    expect(seen).toEqual(['slow']);
    expect((await rowsWith(server.db, m))[0]).toMatchObject({ state: 'done', attempts: 1 });
  });

  test("a worker that died mid-delivery leaves the row leased until the lease ends; then it is delivered again", async () => {
    const kind = `test-${run}.orphan`;
    const m = marker();
    await enqueue(server.db, [{ kind, payload: { marker: m } }]);
    // A worker claims the row (as the worker's claim does) and is killed before it marks it.
    await server.db.query(`UPDATE outbox SET due_at = now() + interval '1 second', attempts = attempts + 1 WHERE payload->>'marker' = $1`, [m]);
    const claimedAt = Date.now();
    const times: number[] = [];
    const survivor = createOutboxWorker({ db: await database(), pollMs: 20, handlers: { [kind]: async (_p, job) => void times.push(job.attempts) } });
    workers.push(survivor);
    survivor.start();
    await sleep(500);
    expect(times).toEqual([]); // still leased
    await waitFor('the second delivery', () => times.length > 0);
    expect(Date.now() - claimedAt).toBeGreaterThanOrEqual(900);
    expect(times).toEqual([2]);
    await waitFor('done', async () => (await rowsWith(server.db, m))[0]?.state === 'done');
  });
});
