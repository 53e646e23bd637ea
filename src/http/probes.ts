/**
 * Liveness, readiness and Prometheus metrics (CONTRACT section 1).
 */
import Router from '@koa/router';
import type { Middleware } from 'koa';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Database } from '../storage/database';

export interface Probes {
  router: Router;
  /** Times every request by method, coarse route (resource type, never ids) and status. */
  timing: Middleware;
  /** Records how many creates each grouped insert statement wrote (src/storage/insertBatcher.ts). */
  createBatch(size: number): void;
  /** Counts a finished outbox delivery (src/workflows/outbox/worker.ts `onOutcome`). */
  outboxDelivery(kind: string, outcome: 'done' | 'retry' | 'dead'): void;
}

export function probes(db: Database, isReady: () => Promise<boolean>): Probes {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by method, route and status',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const createBatch = new Histogram({
    name: 'fhir_create_batch_size',
    help: 'Creates written together in one insert statement (group commit)',
    buckets: [1, 2, 4, 8, 16, 32, 64],
    registers: [registry],
  });
  const deliveries = new Counter({
    name: 'outbox_deliveries_total',
    help: 'Outbox deliveries by kind and outcome (done; retry: failed, will run again; dead: given up)',
    labelNames: ['kind', 'outcome'],
    registers: [registry],
  });
  // Read from the table at each scrape, so every server reports the shared outbox (and one that restarted too).
  new Gauge({
    name: 'outbox_rows',
    help: 'Outbox rows by state: pending (to be delivered, including leased and scheduled ones) and dead (given up)',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      try {
        const r = await db.query<{ pending: string | number; dead: string | number }>(
          `SELECT count(*) FILTER (WHERE state = 'pending') AS pending, count(*) FILTER (WHERE state = 'dead') AS dead FROM outbox`,
        );
        this.set({ state: 'pending' }, Number(r.rows[0]?.pending ?? 0));
        this.set({ state: 'dead' }, Number(r.rows[0]?.dead ?? 0));
      } catch {
        // the database is away or not migrated yet: /readyz says so; keep the last values
      }
    },
  });
  const router = new Router();
  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', async (ctx) => {
    const ready = (await db.ping()) && (await isReady());
    ctx.status = ready ? 200 : 503;
    ctx.body = { status: ready ? 'ready' : 'not ready' };
  });
  router.get('/metrics', async (ctx) => {
    ctx.type = registry.contentType;
    ctx.body = await registry.metrics();
  });
  const timing: Middleware = async (ctx, next) => {
    const end = duration.startTimer();
    try {
      await next();
    } finally {
      end({ method: ctx.method, route: String(ctx.state.route ?? 'other'), status: String(ctx.status) });
    }
  };
  return {
    router,
    timing,
    createBatch: (size) => createBatch.observe(size),
    outboxDelivery: (kind, outcome) => deliveries.inc({ kind, outcome }),
  };
}
