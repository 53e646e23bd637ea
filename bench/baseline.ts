/**
 * The floor we compare ourselves with: the fewest lines of Koa + pg that read and create a Patient as
 * JSON, and answer each benchmark search with hand-written SQL over the same index tables
 * (bench/search/queries.ts) as a searchset Bundle. No validation, versioning, history, search index
 * maintenance, FHIR parameter generality or audit. Run by bench/run.ts as its own process.
 * Env: PORT, DATABASE_URL, DB_POOL_SIZE (the same pool size as the server under test).
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
