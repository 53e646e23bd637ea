/**
 * Writing to the transactional outbox (migrations/0008_scheduling.sql): called inside the transaction of the
 * change that causes the side effect, so the two commit together or not at all. The worker (worker.ts)
 * delivers later, outside any transaction. A payload holds ids and kinds, never message content or PHI.
 */
import type { Queryable } from '../../storage/database';

export interface OutboxRow {
  /** What to deliver, e.g. 'mail.booking-requested'. */
  kind: string;
  payload: Record<string, unknown>;
  /** Not before this time (a reminder); default now. */
  dueAt?: Date;
  maxAttempts?: number;
}

export async function enqueue(q: Queryable, rows: OutboxRow[]): Promise<void> {
  if (rows.length === 0) return;
  await q.query(
    `INSERT INTO outbox (kind, payload, due_at, max_attempts)
     SELECT kind, payload, COALESCE(due_at, now()), COALESCE(max_attempts, 10)
       FROM unnest($1::text[], $2::jsonb[], $3::timestamptz[], $4::int[]) AS r(kind, payload, due_at, max_attempts)`,
    [
      rows.map((r) => r.kind),
      rows.map((r) => JSON.stringify(r.payload)),
      rows.map((r) => r.dueAt?.toISOString() ?? null),
      rows.map((r) => r.maxAttempts ?? null),
    ],
  );
}
