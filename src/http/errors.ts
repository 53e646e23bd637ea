/**
 * The first middleware in the chain: every error, from anywhere, leaves as an OperationOutcome with the
 * right status. Koa's own handler would answer text/plain. 5xx details are logged, never sent.
 */
import type { Middleware } from 'koa';
import { logger } from '../logger';
import { notFound, OperationOutcomeError, outcome, serverError } from '../fhir/outcomes';
import { DatabaseUnavailableError, pgErrorCode, QueryTimeoutError } from '../storage/database';
import { writeResource } from './respond';

function fromHttpError(err: { status?: number; statusCode?: number; type?: string; expose?: boolean; message?: string }): OperationOutcomeError | undefined {
  const status = err.status ?? err.statusCode;
  if (typeof status !== 'number' || status < 400 || status >= 500) return undefined;
  if (err.type === 'entity.too.large' || status === 413) {
    return new OperationOutcomeError(413, outcome('error', 'too-costly', 'Request body too large'));
  }
  const code = status === 415 ? 'not-supported' : 'invalid';
  return new OperationOutcomeError(status, outcome('error', code, err.expose && err.message ? err.message : 'Bad request'));
}

/** The database is down or restarting: an outage a client can act on (retry), not a server fault. */
function unavailable(): OperationOutcomeError {
  return new OperationOutcomeError(503, outcome('error', 'transient', 'The database is unavailable; retry shortly'), { 'Retry-After': String(RETRY_AFTER_SECONDS) });
}

const RETRY_AFTER_SECONDS = 5;

/** A statement outside a search ran past DB_STATEMENT_TIMEOUT_MS (searches answer 400 too-costly themselves). */
function timedOut(): OperationOutcomeError {
  return new OperationOutcomeError(503, outcome('error', 'transient', 'The database took too long (DB_STATEMENT_TIMEOUT_MS); retry shortly'), { 'Retry-After': String(RETRY_AFTER_SECONDS) });
}

/**
 * PostgreSQL broke a deadlock or a serialization conflict between concurrent writes by failing this one
 * (https://www.postgresql.org/docs/current/errcodes-appendix.html, class 40): nothing of it was written, and the
 * same request may well succeed when sent again.
 */
function concurrentConflict(err: unknown): OperationOutcomeError | undefined {
  const code = pgErrorCode(err);
  if (code !== '40P01' && code !== '40001') return undefined;
  return new OperationOutcomeError(409, outcome('error', 'transient', 'A concurrent write conflicted with this one and nothing was written; retry'), { 'Retry-After': '1' });
}

export function outcomeErrors(): Middleware {
  return async (ctx, next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) throw notFound(`No route for ${ctx.method} ${ctx.path}`);
    } catch (err) {
      let e =
        err instanceof OperationOutcomeError
          ? err
          : err instanceof DatabaseUnavailableError
            ? unavailable()
            : err instanceof QueryTimeoutError
              ? timedOut()
              : (concurrentConflict(err) ?? fromHttpError(err as object));
      if (!e) {
        logger.error({ err: (err as Error)?.message, stack: (err as Error)?.stack, method: ctx.method, route: ctx.state.route }, 'unhandled error');
        e = serverError();
      }
      for (const [name, value] of Object.entries(e.headers)) ctx.set(name, value);
      ctx.status = e.status;
      writeResource(ctx, e.outcome);
    }
  };
}
