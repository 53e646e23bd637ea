/**
 * DB_STATEMENT_TIMEOUT_MS (README "Limits"): `openDatabase({ statementTimeoutMs })` sets PostgreSQL's
 * statement_timeout (https://www.postgresql.org/docs/current/runtime-config-client.html#GUC-STATEMENT-TIMEOUT)
 * on every connection; a cancelled statement (SQLSTATE 57014) is a QueryTimeoutError, and the connection, the
 * pool and later transactions keep working. Runs on the database of DATABASE_URL, else on embedded PGlite,
 * which takes the setting but cannot enforce it (no timer signal reaches WebAssembly while a statement runs).
 */
import { openDatabase, QueryTimeoutError, type Database } from '../../src/storage/database';

const onPostgres = !!process.env.DATABASE_URL;
const TIMEOUT_MS = 200;
/** A table of this run's own (test files may share one database). */
const PROBE = `statement_timeout_probe_${process.pid}`;

let db: Database;
beforeAll(async () => {
  db = await openDatabase({ databaseUrl: process.env.DATABASE_URL, dataDir: 'memory://', poolSize: 2, statementTimeoutMs: TIMEOUT_MS });
});
afterAll(async () => {
  await db.close();
});

/** A statement that fails as a cancelled one does, on either database. */
const CANCELLED = `DO $$ BEGIN RAISE EXCEPTION 'canceling statement due to statement timeout' USING ERRCODE = 'query_canceled'; END $$`;

test('every connection runs under the timeout', async () => {
  const shown = await Promise.all([1, 2, 3].map(() => db.query<{ statement_timeout: string }>('SHOW statement_timeout')));
  for (const r of shown) expect(r.rows[0].statement_timeout).toBe(`${TIMEOUT_MS}ms`);
  const tx = await db.transaction((q) => q.query<{ statement_timeout: string }>('SHOW statement_timeout'));
  expect(tx.rows[0].statement_timeout).toBe(`${TIMEOUT_MS}ms`);
});

test('a cancelled statement is a QueryTimeoutError naming the timeout, and the database keeps working', async () => {
  const err = await db.query(CANCELLED).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(QueryTimeoutError);
  expect((err as QueryTimeoutError).timeoutMs).toBe(TIMEOUT_MS);
  expect((err as Error).message).toContain('DB_STATEMENT_TIMEOUT_MS');
  expect((await db.query<{ n: number }>('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
});

test('a cancelled statement in a transaction rolls it back; the next transaction works', async () => {
  await db.query(`CREATE TABLE ${PROBE} (v text)`);
  const err = await db
    .transaction(async (q) => {
      await q.query(`INSERT INTO ${PROBE} VALUES ('rolled back')`);
      await q.query(CANCELLED);
    })
    .catch((e: unknown) => e);
  expect(err).toBeInstanceOf(QueryTimeoutError);
  const committed = await db.transaction(async (q) => {
    await q.query(`INSERT INTO ${PROBE} VALUES ('committed')`);
    return q.query<{ v: string }>(`SELECT v FROM ${PROBE} ORDER BY v`);
  });
  expect(committed.rows).toEqual([{ v: 'committed' }]);
  await db.query(`DROP TABLE ${PROBE}`);
});

(onPostgres ? test : test.skip)('PostgreSQL cancels a statement past the timeout, also in a transaction; every pooled connection still works', async () => {
  let start = Date.now();
  const err = await db.query('SELECT pg_sleep(2)').catch((e: unknown) => e);
  expect(err).toBeInstanceOf(QueryTimeoutError);
  expect(Date.now() - start).toBeLessThan(1000);

  start = Date.now();
  const inTx = await db.transaction((q) => q.query('SELECT pg_sleep(2)')).catch((e: unknown) => e);
  expect(inTx).toBeInstanceOf(QueryTimeoutError);
  expect(Date.now() - start).toBeLessThan(1000);

  // both connections of the pool, at once: neither was left broken or in an aborted transaction
  const after = await Promise.all([1, 2].map(() => db.transaction((q) => q.query<{ n: number }>('SELECT 1 AS n, pg_sleep(0.05)'))));
  for (const r of after) expect(r.rows[0].n).toBe(1);
  // a statement under the timeout is not cancelled
  await expect(db.query('SELECT pg_sleep(0.05)')).resolves.toBeDefined();
});

test('without statementTimeoutMs there is no timeout', async () => {
  const plain = await openDatabase({ databaseUrl: process.env.DATABASE_URL, dataDir: 'memory://', poolSize: 1 });
  try {
    expect((await plain.query<{ statement_timeout: string }>('SHOW statement_timeout')).rows[0].statement_timeout).toBe('0');
  } finally {
    await plain.close();
  }
});
