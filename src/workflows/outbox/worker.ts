/**
 * The outbox delivery worker (migrations/0008_scheduling.sql): one in every server process. It claims due rows
 * in one short statement (`FOR UPDATE SKIP LOCKED`, so several servers share the work and never claim one row
 * together), delivers them outside any transaction, then marks each `done`, reschedules it with exponential
 * backoff and jitter, or gives up (`dead`) after the row's `max_attempts`.
 *
 * A claim is a lease: it moves `due_at` `leaseMs` ahead and counts the attempt. While a delivery runs, the
 * worker renews the lease (every third of it), so a slow delivery is never claimed twice; a process killed
 * mid-delivery stops renewing, and the row is claimed again when its lease ends: at least once. The attempt
 * count is the claim's fencing token: a worker whose lease was lost (it stalled past it) cannot mark a row
 * another worker has claimed since.
 *
 * A worker claims only the kinds it has handlers for: during a rolling deploy an older server leaves the new
 * kinds to the newer ones. A row whose kind no worker has claimed for `unknownKindGraceMs` past its due time
 * is `dead` ("no handler"), logged and counted. `done` rows are deleted after `retainDoneMs`.
 *
 * Handlers get ids, never message content (a payload holds no PHI); what they throw is logged and kept in
 * `last_error` only as far as it is known to be PHI-free (see deliveryErrorText).
 */
import type { Database } from '../../storage/database';
import { logger } from '../../logger';

export interface OutboxJob {
  id: number;
  kind: string;
  /** This delivery's attempt, counting from 1. */
  attempts: number;
}

/** Delivers one row; throws to fail (retried), or throws a DeliveryError with `permanent` to give up at once. */
export type OutboxHandler = (payload: Record<string, unknown>, job: OutboxJob) => Promise<void>;

/** A handler with its own retry policy; the number of attempts stays the row's `max_attempts` (enqueue's `maxAttempts`). */
export interface OutboxHandlerSpec {
  handle: OutboxHandler;
  /** Delay before attempt `attempt + 1` after attempt `attempt` failed (ms); default defaultBackoffMs. */
  backoffMs?(attempt: number): number;
}

export type OutboxHandlers = Record<string, OutboxHandler | OutboxHandlerSpec>;

export type OutboxOutcome = 'done' | 'retry' | 'dead';

/**
 * A failure whose message is known to be free of PHI and secrets (it is stored in `last_error` and logged as
 * is); `permanent` failures are not retried (e.g. an SMTP 5xx: the server will refuse the same message again).
 */
export class DeliveryError extends Error {
  readonly permanent: boolean;
  constructor(message: string, opts: { permanent?: boolean; cause?: unknown } = {}) {
    super(message, { cause: opts.cause });
    this.name = 'DeliveryError';
    this.permanent = opts.permanent ?? false;
  }
}

export interface OutboxWorkerOptions {
  db: Database;
  handlers: OutboxHandlers;
  /** How long the loop sleeps when there was nothing to claim (OUTBOX_POLL_MS). */
  pollMs: number;
  /** At most this many deliveries in flight at once (and claimed in one statement); default 10. */
  batchSize?: number;
  /** How long a claim holds a row before another worker may take it, renewed while the delivery runs; default 30 s. */
  leaseMs?: number;
  /** A delivery still running after this long counts as a failed attempt (its lease is no longer renewed); default 2 min. */
  deliveryTimeoutMs?: number;
  /** Backoff for kinds whose handler declares none; default defaultBackoffMs. */
  backoffMs?(attempt: number): number;
  /** Rows of a kind no handler here knows, overdue by this long, become `dead`; default 10 min. */
  unknownKindGraceMs?: number;
  /** `done` rows older than this are deleted; default 7 days. */
  retainDoneMs?: number;
  /** How often those two sweeps run; default 1 min. */
  maintenanceEveryMs?: number;
  /** Called once per finished delivery (metrics). */
  onOutcome?(kind: string, outcome: OutboxOutcome): void;
}

export interface OutboxWorker {
  /** Starts the polling loop (idempotent). */
  start(): void;
  /** Stops polling and waits up to `graceMs` (default 10 s) for deliveries in flight; those left keep their rows leased. */
  stop(graceMs?: number): Promise<void>;
  /** One claim and its deliveries, awaited (tests, or a caller with its own loop): how many rows it claimed. */
  runOnce(): Promise<number>;
}

const SECOND = 1000;
const MINUTE = 60 * SECOND;

/**
 * 30 s, 1 min, 2 min, ... doubling up to 6 h, each with "equal jitter" (half fixed, half random) so that rows
 * that failed together do not all come back together
 * (https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/). The default 10 attempts span
 * about 4 to 8 hours.
 */
export function defaultBackoffMs(attempt: number): number {
  const ceiling = Math.min(6 * 60 * MINUTE, 30 * SECOND * 2 ** Math.max(0, attempt - 1));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

/** What of a thrown value may be stored and logged: our own messages, else only codes (a driver's message may name a recipient). */
export function deliveryErrorText(err: unknown): string {
  if (err instanceof DeliveryError) return err.message.slice(0, 300);
  const e = err as { name?: unknown; code?: unknown; responseCode?: unknown; status?: unknown } | null;
  const parts = [typeof e?.name === 'string' ? e.name : 'Error'];
  for (const key of ['code', 'responseCode', 'status'] as const) {
    const v = e?.[key];
    if ((typeof v === 'string' && /^[A-Za-z0-9_.-]{1,40}$/.test(v)) || typeof v === 'number') parts.push(`${key} ${v}`);
  }
  return parts.join(', ');
}

interface ClaimedRow {
  id: string | number;
  kind: string;
  payload: Record<string, unknown> | string;
  attempts: number;
  max_attempts: number;
}

export function createOutboxWorker(opts: OutboxWorkerOptions): OutboxWorker {
  const { db } = opts;
  const batchSize = Math.max(1, opts.batchSize ?? 10);
  const leaseMs = Math.max(100, opts.leaseMs ?? 30 * SECOND);
  const deliveryTimeoutMs = opts.deliveryTimeoutMs ?? 2 * MINUTE;
  const unknownKindGraceMs = opts.unknownKindGraceMs ?? 10 * MINUTE;
  const retainDoneMs = opts.retainDoneMs ?? 7 * 24 * 60 * MINUTE;
  const maintenanceEveryMs = opts.maintenanceEveryMs ?? MINUTE;
  const specs = new Map<string, OutboxHandlerSpec>(
    Object.entries(opts.handlers).map(([kind, h]) => [kind, typeof h === 'function' ? { handle: h } : h]),
  );
  const kinds = [...specs.keys()];

  /** Deliveries in flight: row id -> the attempt that holds its lease. */
  const inFlight = new Map<number, { attempts: number; done: Promise<void> }>();
  let running = false;
  let timer: NodeJS.Timeout | undefined;
  let renewTimer: NodeJS.Timeout | undefined;
  let ticking: Promise<void> | undefined;
  let lastMaintenance = 0;
  /** Whether the last claim filled every free place (more rows may be due). */
  let backlog = false;

  async function claim(limit: number): Promise<ClaimedRow[]> {
    if (kinds.length === 0 || limit <= 0) return [];
    const r = await db.query<ClaimedRow>(
      `UPDATE outbox SET due_at = now() + $3 * interval '1 millisecond', attempts = attempts + 1
        WHERE id IN (SELECT id FROM outbox
                      WHERE state = 'pending' AND due_at <= now() AND kind = ANY($1::text[])
                      ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED)
        RETURNING id, kind, payload, attempts, max_attempts`,
      [kinds, limit, leaseMs],
    );
    return r.rows;
  }

  /** Renews the leases of every delivery in flight, in one statement. */
  async function renew(): Promise<void> {
    if (inFlight.size === 0) return;
    const ids = [...inFlight.keys()];
    await db
      .query(
        `UPDATE outbox o SET due_at = now() + $3 * interval '1 millisecond'
           FROM unnest($1::bigint[], $2::int[]) AS h(id, attempts)
          WHERE o.id = h.id AND o.attempts = h.attempts AND o.state = 'pending'`,
        [ids, ids.map((id) => inFlight.get(id)!.attempts), leaseMs],
      )
      .catch((err: unknown) => logger.warn({ err: deliveryErrorText(err) }, 'outbox: could not renew leases'));
  }

  /** Runs one handler, bounded by deliveryTimeoutMs. */
  async function attempt(spec: OutboxHandlerSpec, payload: Record<string, unknown>, job: OutboxJob): Promise<void> {
    let timeout: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        spec.handle(payload, job),
        new Promise<never>((_, reject) => {
          timeout = setTimeout(() => reject(new DeliveryError(`delivery timed out after ${deliveryTimeoutMs} ms`)), deliveryTimeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timeout);
    }
  }

  async function deliver(row: ClaimedRow): Promise<void> {
    const job: OutboxJob = { id: Number(row.id), kind: row.kind, attempts: row.attempts };
    const spec = specs.get(row.kind)!;
    const payload = typeof row.payload === 'string' ? (JSON.parse(row.payload) as Record<string, unknown>) : row.payload;
    // The claim's attempt count fences every mark: a row claimed again since (our lease lapsed) is not ours to mark.
    const fence = [job.id, job.attempts];
    let failure: unknown;
    try {
      await attempt(spec, payload, job);
    } catch (err) {
      failure = err ?? new Error('handler failed');
    }
    let outcome: OutboxOutcome;
    if (failure === undefined) {
      outcome = 'done';
      await markDone(job.id, job.attempts);
    } else {
      const text = deliveryErrorText(failure);
      const permanent = failure instanceof DeliveryError && failure.permanent;
      if (permanent || job.attempts >= row.max_attempts) {
        outcome = 'dead';
        await db.query(`UPDATE outbox SET state = 'dead', last_error = $3 WHERE id = $1 AND attempts = $2 AND state = 'pending'`, [...fence, text]);
        logger.error({ outbox: job.id, kind: job.kind, attempts: job.attempts, err: text }, 'outbox: delivery failed for good (dead)');
      } else {
        outcome = 'retry';
        const delay = Math.max(0, Math.round((spec.backoffMs ?? opts.backoffMs ?? defaultBackoffMs)(job.attempts)));
        await db.query(
          `UPDATE outbox SET due_at = now() + $3 * interval '1 millisecond', last_error = $4 WHERE id = $1 AND attempts = $2 AND state = 'pending'`,
          [...fence, delay, text],
        );
        logger.warn({ outbox: job.id, kind: job.kind, attempts: job.attempts, retryInMs: delay, err: text }, 'outbox: delivery failed, will retry');
      }
    }
    opts.onOutcome?.(job.kind, outcome);
  }

  /**
   * Successful deliveries that finish together are marked `done` in one statement: the marks of one event-loop
   * turn (deliveries of one claim tend to finish together) wait for the next turn and go as one UPDATE. Each
   * delivery still resolves only once its row is marked.
   */
  interface DoneBatch {
    ids: number[];
    attempts: number[];
    written: Promise<void>;
  }
  let doneBatch: DoneBatch | undefined;
  function markDone(id: number, attempts: number): Promise<void> {
    let batch = doneBatch;
    if (!batch) {
      const ids: number[] = [];
      const fences: number[] = [];
      const written = new Promise<void>((resolve) => setImmediate(resolve)).then(async () => {
        doneBatch = undefined;
        await db.query(
          `UPDATE outbox o SET state = 'done', done_at = now(), last_error = NULL
             FROM unnest($1::bigint[], $2::int[]) AS d(id, attempts)
            WHERE o.id = d.id AND o.attempts = d.attempts AND o.state = 'pending'`,
          [ids, fences],
        );
      });
      batch = doneBatch = { ids, attempts: fences, written };
    }
    batch.ids.push(id);
    batch.attempts.push(attempts);
    return batch.written;
  }

  /** Starts the deliveries of claimed rows; each resolves when its row is marked (or marking failed: the lease then runs out). */
  function launch(rows: ClaimedRow[]): Promise<void>[] {
    return rows.map((row) => {
      const id = Number(row.id);
      const done = deliver(row)
        .catch((err: unknown) => logger.warn({ outbox: id, kind: row.kind, err: deliveryErrorText(err) }, 'outbox: could not record a delivery; it runs again when its lease ends'))
        .finally(() => {
          if (inFlight.get(id)?.done === done) inFlight.delete(id);
          // More are due: claim again once half the places are free (one claim per finished delivery costs a
          // statement per row).
          if (running && backlog && inFlight.size <= batchSize / 2) wake(0);
        });
      inFlight.set(id, { attempts: row.attempts, done });
      return done;
    });
  }

  /** Rows no handler here claims, and old done rows. */
  async function maintenance(): Promise<void> {
    if (Date.now() - lastMaintenance < maintenanceEveryMs) return;
    lastMaintenance = Date.now();
    const dead = await db.query<{ id: string; kind: string }>(
      `UPDATE outbox SET state = 'dead', last_error = 'no handler for kind ' || kind
        WHERE id IN (SELECT id FROM outbox
                      WHERE state = 'pending' AND due_at <= now() - $2 * interval '1 millisecond' AND kind <> ALL($1::text[])
                      LIMIT 1000 FOR UPDATE SKIP LOCKED)
        RETURNING id, kind`,
      [kinds, unknownKindGraceMs],
    );
    for (const row of dead.rows) {
      logger.error({ outbox: Number(row.id), kind: row.kind }, 'outbox: no handler for this kind (dead)');
      opts.onOutcome?.(row.kind, 'dead');
    }
    await db.query(
      `DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE state = 'done' AND done_at < now() - $1 * interval '1 millisecond' LIMIT 10000)`,
      [retainDoneMs],
    );
  }

  async function claimAndLaunch(): Promise<Promise<void>[]> {
    await maintenance().catch((err: unknown) => logger.warn({ err: deliveryErrorText(err) }, 'outbox: housekeeping failed'));
    const free = batchSize - inFlight.size;
    const rows = await claim(free);
    backlog = free > 0 && rows.length === free;
    return launch(rows);
  }

  function wake(delay: number): void {
    clearTimeout(timer);
    timer = setTimeout(() => void tick(), delay);
  }

  async function tick(): Promise<void> {
    if (!running || ticking) return;
    ticking = (async () => {
      let claimed = 0;
      try {
        claimed = (await claimAndLaunch()).length;
      } catch (err) {
        // The database is away (outage, restart): try again at the next poll.
        logger.warn({ err: deliveryErrorText(err) }, 'outbox: could not claim deliveries');
      }
      // Claimed some and there is room: more may be due at once.
      if (running) wake(claimed > 0 && inFlight.size < batchSize ? 0 : opts.pollMs);
    })();
    await ticking;
    ticking = undefined;
  }

  return {
    start() {
      if (running) return;
      running = true;
      renewTimer = setInterval(() => void renew(), Math.max(50, Math.floor(leaseMs / 3)));
      wake(0);
    },
    async stop(graceMs = 10 * SECOND) {
      running = false;
      clearTimeout(timer);
      await ticking;
      const pending = [...inFlight.values()].map((f) => f.done);
      let grace: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all(pending), new Promise<void>((r) => (grace = setTimeout(r, graceMs)))]);
      clearTimeout(grace);
      clearInterval(renewTimer);
      if (inFlight.size > 0) logger.warn({ inFlight: inFlight.size }, 'outbox: stopped with deliveries in flight; their rows are delivered again when the lease ends');
    },
    async runOnce() {
      // Without the loop nothing renews the lease: renew while these deliveries run.
      const renewing = running ? undefined : setInterval(() => void renew(), Math.max(50, Math.floor(leaseMs / 3)));
      try {
        const deliveries = await claimAndLaunch();
        await Promise.all(deliveries);
        return deliveries.length;
      } finally {
        clearInterval(renewing);
      }
    },
  };
}
