/**
 * Plain creates that wait for a database writer are written together (src/storage/insertBatcher.ts):
 * each still answers as its own create (https://hl7.org/fhir/R4/http.html#create), with its own content,
 * history and search index rows, and a create the database refuses fails alone.
 */
import { randomUUID } from 'node:crypto';
import { startServer, type TestServer } from '../helpers/server';

let s: TestServer;
beforeAll(async () => {
  // one writer; a token checked once, so a create needs the database for its write only
  s = await startServer({ CREATE_WRITERS: '1', TOKEN_REVOCATION_RECHECK_MS: '600000' });
});
afterAll(async () => {
  await s.close();
});

/** fhir_create_batch_size's count (statements) and sum (creates) from /metrics. */
async function batchMetrics(): Promise<{ statements: number; creates: number }> {
  const text = (await s.request('GET', '/metrics')).text;
  const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
  return { statements: value('fhir_create_batch_size_count'), creates: value('fhir_create_batch_size_sum') };
}

/**
 * Fires the creates while a transaction holds a lock that every insert into `resources` waits for (on
 * PGlite, the one connection): the first create's statement waits, and the others queue behind it.
 */
async function whileWritesWait<T>(fire: () => Promise<T>): Promise<T> {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  let locked!: () => void;
  const isLocked = new Promise<void>((resolve) => (locked = resolve));
  const lock = s.db.transaction(async (tx) => {
    await tx.query('LOCK TABLE resources IN SHARE ROW EXCLUSIVE MODE');
    locked();
    await held;
  });
  await isLocked;
  const result = fire();
  await new Promise((resolve) => setTimeout(resolve, 400));
  release();
  await lock;
  return result;
}

function resourceFor(i: number, run: string): Record<string, unknown> {
  const identifier = [{ system: 'urn:test:batch', value: `${run}-${i}` }];
  if (i % 3 === 1) return { resourceType: 'Practitioner', identifier, name: [{ family: `Prac${i}` }] };
  if (i % 3 === 2) return { resourceType: 'Organization', identifier, name: `Org ${run} ${i}` };
  return { resourceType: 'Patient', identifier, name: [{ family: `Batch${i}`, given: [`G${run.slice(0, 8)}`] }], birthDate: `19${String(50 + i).slice(-2)}-01-0${(i % 9) + 1}` };
}

describe('creates written together', () => {
  test('each concurrent create gets its own id, content, history and index rows', async () => {
    const run = randomUUID();
    const before = await batchMetrics();
    const n = 40;
    await s.request('GET', '/fhir/Patient?_count=1'); // the token's revocation check, now cached
    const created = await whileWritesWait(() =>
      Promise.all(
        Array.from({ length: n }, (_, i) => {
          const r = resourceFor(i, run);
          return s.request('POST', `/fhir/${r.resourceType as string}`, r);
        }),
      ),
    );
    expect(created.map((r) => r.status)).toEqual(Array(n).fill(201));
    expect(new Set(created.map((r) => r.body.id)).size).toBe(n);

    const after = await batchMetrics();
    expect(after.creates - before.creates).toBe(n);
    // the first create alone, the rest (mostly) together
    expect(after.statements - before.statements).toBeLessThanOrEqual(n / 2);

    for (let i = 0; i < n; i++) {
      const expected = resourceFor(i, run);
      const { id } = created[i].body;
      const type = expected.resourceType as string;
      const read = await s.request('GET', `/fhir/${type}/${id}`);
      expect(read.status).toBe(200);
      expect(read.body.identifier).toEqual(expected.identifier);
      expect(read.body.name).toEqual(expected.name);
      const history = await s.request('GET', `/fhir/${type}/${id}/_history`);
      expect(history.body.entry.map((e: { resource: { meta: { versionId: string } } }) => e.resource.meta.versionId)).toEqual(['1']);
      // the token index row belongs to this resource, not to a neighbour in the same statement
      const byIdentifier = await s.request('GET', `/fhir/${type}?identifier=urn:test:batch|${run}-${i}`);
      expect(byIdentifier.body.entry.map((e: { resource: { id: string } }) => e.resource.id)).toEqual([id]);
    }
    // string and date index rows too
    const byName = await s.request('GET', `/fhir/Patient?family:exact=Batch3&given=G${run.slice(0, 8)}`);
    expect(byName.body.entry.map((e: { resource: { id: string } }) => e.resource.id)).toEqual([created[3].body.id]);
    const byBirthDate = await s.request('GET', `/fhir/Patient?birthdate=1956-01-07&given=G${run.slice(0, 8)}`);
    expect(byBirthDate.body.entry.map((e: { resource: { id: string } }) => e.resource.id)).toEqual([created[6].body.id]);
  });

  test('a create the database refuses fails alone; the creates written with it are stored', async () => {
    const run = randomUUID();
    const marker = `Refused${run.slice(0, 8)}`;
    // a real refusal by the database for one resource: a trigger raising on its family name
    await s.db.query(`CREATE OR REPLACE FUNCTION test_refuse_marker() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.content #>> '{name,0,family}' = '${marker}' THEN RAISE EXCEPTION 'refused by the test'; END IF;
        RETURN NEW;
      END $$`);
    await s.db.query('CREATE TRIGGER test_refuse_marker BEFORE INSERT ON resources FOR EACH ROW EXECUTE FUNCTION test_refuse_marker()');
    try {
      const before = await batchMetrics();
      const n = 30;
      const refused = 17;
      await s.request('GET', '/fhir/Patient?_count=1');
      const responses = await whileWritesWait(() =>
        Promise.all(
          Array.from({ length: n }, (_, i) => {
            const family = i === refused ? marker : `Kept${i}`;
            return s.request('POST', '/fhir/Patient', { resourceType: 'Patient', identifier: [{ system: `urn:test:refuse:${run}`, value: String(i) }], name: [{ family }] });
          }),
        ),
      );
      const after = await batchMetrics();
      expect(after.statements - before.statements).toBeLessThanOrEqual(n / 2);

      expect(responses[refused].status).toBe(500);
      expect(responses[refused].body.resourceType).toBe('OperationOutcome');
      responses.forEach((r, i) => {
        if (i !== refused) expect(r.status).toBe(201);
      });
      const stored = await s.request('GET', `/fhir/Patient?identifier=urn:test:refuse:${run}|&_count=100`);
      expect(stored.body.entry.map((e: { resource: { id: string } }) => e.resource.id).sort()).toEqual(
        responses.filter((_, i) => i !== refused).map((r) => r.body.id).sort(),
      );
      // nothing of the refused one: no current row, no history, no index row
      const rows = await s.db.query<{ n: number }>(
        `SELECT (SELECT count(*) FROM resource_history WHERE content #>> '{name,0,family}' = $1)
              + (SELECT count(*) FROM search_string WHERE exact = $1) AS n`,
        [marker],
      );
      expect(Number(rows.rows[0].n)).toBe(0);
    } finally {
      await s.db.query('DROP TRIGGER test_refuse_marker ON resources');
      await s.db.query('DROP FUNCTION test_refuse_marker()');
    }
  });
});
