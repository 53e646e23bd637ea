/**
 * The database going away is an outage, not a crash (issue 11): with updates, deletes and transaction Bundles
 * in flight, a PostgreSQL restart (`pg_ctl restart -m fast`) and a crash (`stop -m immediate`, then start) of
 * a private cluster leave the process running; requests during the outage get 503 with Retry-After and an
 * OperationOutcome, /readyz says 503, and the server serves again within seconds of the database's return.
 * Every acknowledged write is there afterwards.
 *
 * It restarts a cluster of its own (never the shared server), so it runs once, in the PostgreSQL pass of
 * .ci/run (DATABASE_URL set), and only where the PostgreSQL binaries are installed.
 */
import { hasPostgresBinaries, startCluster, type PgCluster } from '../helpers/pgCluster';
import { startServer, type TestResponse, type TestServer } from '../helpers/server';

const run = process.env.DATABASE_URL && hasPostgresBinaries() ? describe : describe.skip;

run('a database restart under load', () => {
  let cluster: PgCluster;
  let s: TestServer;
  const uncaught: unknown[] = [];
  const onUncaught = (err: unknown) => uncaught.push(err);

  beforeAll(async () => {
    cluster = await startCluster();
    s = await startServer({ DATABASE_URL: cluster.url });
    await s.adminToken(); // the token is signed before the outage: requests during it need no key lookup
    process.on('uncaughtException', onUncaught);
  }, 120_000);
  afterAll(async () => {
    process.off('uncaughtException', onUncaught);
    await s?.close().catch(() => undefined);
    cluster?.destroy();
  });

  /** What a worker was last told about its resource: the version acknowledged, or that it was deleted. */
  interface Acked {
    id: string;
    version: number;
    deleted: boolean;
    /** A write was sent after the last acknowledged one (it may have landed without an answer). */
    unsure: boolean;
  }

  const statuses = new Map<number, number>();
  const badOutages: string[] = [];
  const acked: Acked[] = [];

  function note(res: TestResponse): void {
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    if (res.status >= 500) {
      const ok = res.status === 503 && res.headers.get('retry-after') !== null && res.body?.resourceType === 'OperationOutcome';
      if (!ok) badOutages.push(`${res.status} ${res.headers.get('retry-after')} ${res.text.slice(0, 120)}`);
    }
  }

  async function worker(stop: () => boolean): Promise<void> {
    while (!stop()) {
      const created = await s.request('POST', '/fhir/Patient', { resourceType: 'Patient', name: [{ family: 'Outage' }] });
      note(created);
      if (created.status !== 201) continue;
      const mine: Acked = { id: created.body.id, version: 1, deleted: false, unsure: false };
      acked.push(mine);
      for (let v = 2; v <= 3 && !stop(); v++) {
        mine.unsure = true;
        const updated = await s.request('PUT', `/fhir/Patient/${mine.id}`, { resourceType: 'Patient', id: mine.id, name: [{ family: `Outage${v}` }] });
        note(updated);
        if (updated.status !== 200) break;
        Object.assign(mine, { version: Number(updated.body.meta.versionId), unsure: false });
      }
      const tx = await s.request('POST', '/fhir', {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          { fullUrl: 'urn:uuid:0b1e2c3d-0000-4000-8000-000000000001', resource: { resourceType: 'Patient', name: [{ family: 'OutageTx' }] }, request: { method: 'POST', url: 'Patient' } },
          { resource: { resourceType: 'Observation', status: 'final', code: { text: 'pulse' }, subject: { reference: 'urn:uuid:0b1e2c3d-0000-4000-8000-000000000001' } }, request: { method: 'POST', url: 'Observation' } },
        ],
      });
      note(tx);
      if (!mine.unsure && !stop()) {
        mine.unsure = true;
        const deleted = await s.request('DELETE', `/fhir/Patient/${mine.id}`);
        note(deleted);
        if (deleted.status === 200) Object.assign(mine, { deleted: true, unsure: false });
      }
    }
  }

  async function servesWithin(ms: number): Promise<number> {
    const start = Date.now();
    while (Date.now() - start < ms) {
      const res = await s.request('GET', '/fhir/Patient?_count=1');
      if (res.status === 200) return Date.now() - start;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`not serving ${ms} ms after the database came back`);
  }

  test('restart and crash of PostgreSQL: 503s with Retry-After, no exit, serving again within seconds', async () => {
    let stopping = false;
    const workers = Array.from({ length: 6 }, () => worker(() => stopping));
    const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

    await pause(1500);
    cluster.restart('fast');
    const afterRestart = await servesWithin(15_000);
    await pause(1000);

    cluster.stop('immediate');
    await pause(300);
    const ready = await s.request('GET', '/readyz');
    expect(ready.status).toBe(503);
    const during = await s.request('GET', '/fhir/Patient?_count=1');
    expect(during.status).toBe(503);
    expect(during.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(during.body.issue[0].code).toBe('transient');
    await pause(1000);
    cluster.start();
    const afterCrash = await servesWithin(15_000);
    expect((await s.request('GET', '/readyz')).status).toBe(200);
    await pause(1000);

    stopping = true;
    await Promise.all(workers);

    expect(uncaught).toEqual([]);
    expect(badOutages).toEqual([]);
    // The only statuses: success and the outage's 503
    expect([...statuses.keys()].filter((k) => ![200, 201, 503].includes(k))).toEqual([]);
    expect(statuses.get(503) ?? 0).toBeGreaterThan(0);
    expect(afterRestart).toBeLessThan(15_000);
    expect(afterCrash).toBeLessThan(15_000);

    // Every acknowledged write is there (a later unanswered write may have landed on top of it).
    expect(acked.length).toBeGreaterThan(0);
    for (const a of acked) {
      const res = await s.request('GET', `/fhir/Patient/${a.id}`);
      if (a.deleted) expect(res.status).toBe(410);
      else if (res.status === 410) expect(a.unsure).toBe(true);
      else {
        expect(res.status).toBe(200);
        expect(Number(res.body.meta.versionId)).toBeGreaterThanOrEqual(a.version);
      }
    }
  }, 120_000);
});
