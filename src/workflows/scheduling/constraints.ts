/**
 * The database's own verdicts on scheduling (migrations/0008_scheduling.sql): an exclusion constraint (23P01)
 * or a unique index (23505) refused a row, because a concurrent transaction took the Slot or the time first.
 * https://www.postgresql.org/docs/current/errcodes-appendix.html
 */
import { pgErrorCode } from '../../storage/database';

export function isConstraintViolation(err: unknown): boolean {
  const code = pgErrorCode(err);
  return code === '23P01' || code === '23505';
}
