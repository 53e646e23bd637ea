/**
 * SQL for failed-login counting (auth_login_failures), shared by every server through the database.
 * A key is an account (`account:<id>`), a login that names no account (`login:<hash>`), or a client
 * address (`address:<ip>`).
 */
import type { Queryable } from '../../storage/database';

/** Seconds until the lockout of any of the keys ends; 0 when none is locked. */
export async function lockedFor(q: Queryable, keys: string[]): Promise<number> {
  const r = await q.query<{ seconds: number | null }>(
    `SELECT ceil(extract(epoch FROM max(locked_until) - now()))::integer AS seconds
       FROM auth_login_failures WHERE key = ANY($1::text[]) AND locked_until > now()`,
    [keys],
  );
  return Math.max(0, r.rows[0]?.seconds ?? 0);
}

/**
 * Counts one failure for a key within a window of `windowSeconds`; at `max` failures the key is locked for
 * `lockSeconds` and its count starts over.
 */
export async function countFailure(q: Queryable, key: string, max: number, windowSeconds: number, lockSeconds: number): Promise<void> {
  // Counts nobody has touched for a day are over; dropping them keeps the table as small as the attacks are recent.
  await q.query(
    "DELETE FROM auth_login_failures WHERE window_start < now() - interval '1 day' AND (locked_until IS NULL OR locked_until < now())",
  );
  await q.query(
    `INSERT INTO auth_login_failures AS f (key, failures, window_start) VALUES ($1, 1, now())
     ON CONFLICT (key) DO UPDATE SET
       failures = CASE WHEN f.window_start < now() - make_interval(secs => $2) THEN 1 ELSE f.failures + 1 END,
       window_start = CASE WHEN f.window_start < now() - make_interval(secs => $2) THEN now() ELSE f.window_start END`,
    [key, windowSeconds],
  );
  await q.query(
    `UPDATE auth_login_failures SET locked_until = now() + make_interval(secs => $3), failures = 0, window_start = now()
      WHERE key = $1 AND failures >= $2`,
    [key, max, lockSeconds],
  );
}

export async function clearFailures(q: Queryable, key: string): Promise<void> {
  await q.query('DELETE FROM auth_login_failures WHERE key = $1 AND (locked_until IS NULL OR locked_until < now())', [key]);
}
