/**
 * The floor we compare ourselves with: the fewest lines of Koa + pg that read and create a Patient as
 * JSON, and answer each benchmark search with hand-written SQL over the same index tables
 * (bench/search/queries.ts) as a searchset Bundle. No validation, versioning, history, search index
 * maintenance, FHIR parameter generality or audit. Run by bench/run.ts as its own process.
 * Env: PORT, DATABASE_URL, DB_POOL_SIZE (the same pool size as the server under test), BASELINE_SLOTS (free
 * Slots of the booking scenario).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import Koa from 'koa';
import Router from '@koa/router';
import { Pool } from 'pg';
import { BadQuery, BASELINE_QUERIES } from './search/queries';

// The same fixed-size pool as ours (connections stay open once made), so neither side's latency rows pay for
// backends started after the other side's measurement left its pool idle.
const poolSize = Number(process.env.DB_POOL_SIZE || 20);
const pool = new Pool({ connectionString: process.env.DATABASE_URL, max: poolSize, min: poolSize });

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
}

const router = new Router();

router.get('/healthz', (ctx) => {
  ctx.body = 'ok';
});

router.get('/Patient/:id', async (ctx) => {
  const { rows } = await pool.query(
    "SELECT content FROM resources WHERE resource_type = 'Patient' AND id = $1",
    [ctx.params.id],
  );
  if (rows.length === 0) {
    ctx.status = 404;
    return;
  }
  ctx.body = rows[0].content;
});

router.post('/Patient', async (ctx) => {
  const resource = { ...(await readJson(ctx.req)), id: randomUUID() };
  await pool.query('INSERT INTO baseline_resources (id, content) VALUES ($1, $2)', [resource.id, resource]);
  ctx.status = 201;
  ctx.set('Location', `/Patient/${resource.id}`);
  ctx.body = resource;
});

// Booking (the `booking` scenario): the same transaction ours runs, by hand, on tables of its own.
const BOOK_SLOT = { name: 'baseline_book_slot', text: "SELECT status FROM baseline_slot WHERE id = $1 FOR UPDATE" };
router.post('/Appointment', async (ctx) => {
  const body = await readJson(ctx.req);
  const slotId = String((body.slot as { reference?: string }[] | undefined)?.[0]?.reference ?? '').replace('Slot/', '');
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const slot = await client.query({ ...BOOK_SLOT, values: [slotId] });
    if (slot.rows[0]?.status !== 'free') {
      await client.query('ROLLBACK');
      ctx.status = 409;
      return;
    }
    const id = randomUUID();
    const appointment = { ...body, id };
    await client.query({ name: 'baseline_book_insert', text: 'INSERT INTO baseline_appointment (id, slot_id, content) VALUES ($1, $2, $3)', values: [id, slotId, appointment] });
    await client.query({ name: 'baseline_book_update', text: "UPDATE baseline_slot SET status = 'busy-tentative' WHERE id = $1", values: [slotId] });
    await client.query({ name: 'baseline_book_outbox', text: "INSERT INTO baseline_outbox (kind, payload) VALUES ('mail', $1)", values: [{ appointment: id }] });
    await client.query('COMMIT');
    ctx.status = 201;
    ctx.body = appointment;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
});

interface SearchRow {
  mode: 'match' | 'include';
  resource_type: string;
  id: string;
  content: unknown;
}

// One search per scenario, on the same URL our server answers under /fhir.
router.get('/:type', async (ctx) => {
  const build = BASELINE_QUERIES[ctx.params.type];
  if (!build) {
    ctx.status = 404;
    return;
  }
  let sql;
  try {
    sql = build(new URLSearchParams(ctx.querystring));
  } catch (err) {
    if (!(err instanceof BadQuery)) throw err;
    ctx.status = 400;
    ctx.body = { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'invalid', diagnostics: err.message }] };
    return;
  }
  const { rows } = await pool.query<SearchRow>(sql.text, sql.values);
  const base = `${ctx.protocol}://${ctx.host}`;
  ctx.type = 'application/fhir+json';
  ctx.body = {
    resourceType: 'Bundle',
    type: 'searchset',
    entry: rows.map((r) => ({ fullUrl: `${base}/${r.resource_type}/${r.id}`, resource: r.content, search: { mode: r.mode } })),
  };
});

async function main(): Promise<void> {
  await pool.query('CREATE TABLE IF NOT EXISTS baseline_resources (id text PRIMARY KEY, content jsonb NOT NULL)');
  await pool.query('CREATE TABLE IF NOT EXISTS baseline_slot (id text PRIMARY KEY, status text NOT NULL)');
  await pool.query('CREATE TABLE IF NOT EXISTS baseline_appointment (id text PRIMARY KEY, slot_id text NOT NULL, content jsonb NOT NULL)');
  await pool.query('CREATE TABLE IF NOT EXISTS baseline_outbox (id bigserial PRIMARY KEY, kind text NOT NULL, payload jsonb NOT NULL)');
  // Free Slots b0, b1, ... for the booking scenario (BASELINE_SLOTS of them)
  const slots = Number(process.env.BASELINE_SLOTS || 0);
  if (slots > 0) {
    await pool.query("INSERT INTO baseline_slot (id, status) SELECT 'b' || g, 'free' FROM generate_series(0, $1::int - 1) AS g ON CONFLICT (id) DO UPDATE SET status = 'free'", [slots]);
  }
  const app = new Koa();
  app.use(router.routes());
  const server = app.listen(Number(process.env.PORT || 18081), '127.0.0.1');
  process.on('SIGTERM', () => {
    server.close(() => void pool.end().then(() => process.exit(0)));
  });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
