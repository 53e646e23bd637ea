/**
 * The one module that talks to PostgreSQL: a pooled `pg` server when DATABASE_URL is set, else embedded
 * PGlite (real PostgreSQL compiled to WASM) under DATA_DIR. PGlite has a single connection, so every
 * query and transaction on it runs one at a time behind a mutex.
 * Queries are timed; their parameters are never logged (they hold PHI).
 */
import { mkdirSync } from 'node:fs';
import { Pool, type PoolClient } from 'pg';
import type { Extension, PGlite } from '@electric-sql/pglite';
import { logger } from '../logger';
import { lockDataDir, type DirLock } from './dataDirLock';

export interface QueryResult<T> {
  rows: T[];
  rowCount: number;
}

/** Something that runs parameterized SQL: the database itself or an open transaction. */
export interface Queryable {
  /** `name` makes a hot statement a server-side prepared statement (planned once per connection). */
  query<T = Record<string, unknown>>(sql: string, params?: unknown[], name?: string): Promise<QueryResult<T>>;
}

export interface Database extends Queryable {
  readonly kind: 'postgres' | 'pglite';
  /** Runs fn in one transaction on one connection: COMMIT when it resolves, ROLLBACK when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

const SLOW_QUERY_MS = 500;
/** How long /readyz waits for the database before saying it is not ready. */
const PING_TIMEOUT_MS = 2000;
/** How long a request waits for a pooled connection (all busy, or the server unreachable). */
const CONNECT_TIMEOUT_MS = 5000;

/**
 * The database cannot be reached (down, restarting, failing over, or every connection busy past the pool's
 * wait): an outage the client may retry, answered 503 with Retry-After (src/http/errors.ts), never a crash.
 */
export class DatabaseUnavailableError extends Error {
  constructor(override readonly cause: unknown) {
    super('The database is unavailable');
    this.name = 'DatabaseUnavailableError';
  }
}

/**
 * A statement ran past the statement timeout (DB_STATEMENT_TIMEOUT_MS) and PostgreSQL cancelled it (SQLSTATE
 * 57014 query_canceled): no query outlives the request that sent it. The connection stays usable; a
 * transaction it ran in is rolled back. A search answers it 400 too-costly (src/fhir/interactions/search.ts),
 * anything else 503 (src/http/errors.ts).
 */
export class QueryTimeoutError extends Error {
  constructor(
    override readonly cause: unknown,
    /** The timeout in force, when known (ms). */
    readonly timeoutMs?: number,
  ) {
    super(`The statement was cancelled${timeoutMs ? ` after ${timeoutMs} ms (DB_STATEMENT_TIMEOUT_MS)` : ''}`);
    this.name = 'QueryTimeoutError';
  }
}

/** Connection-class failures (https://www.postgresql.org/docs/current/errcodes-appendix.html: 08, 57P01-57P03). */
export function isConnectionError(err: unknown): boolean {
  if (err instanceof DatabaseUnavailableError) return true;
  const code = pgErrorCode(err);
  if (code && (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03')) return true;
  const message = String((err as Error)?.message ?? '');
  return /ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|the database system is (starting up|shutting down)|terminating connection/i.test(
    message,
  );
}

function asUnavailable(err: unknown): unknown {
  return isConnectionError(err) && !(err instanceof DatabaseUnavailableError) ? new DatabaseUnavailableError(err) : err;
}

/** The error a query's caller sees: an outage, a timeout, or the driver's own error. */
function queryError(err: unknown, timeoutMs: number | undefined): unknown {
  return pgErrorCode(err) === '57014' ? new QueryTimeoutError(err, timeoutMs) : asUnavailable(err);
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('timed out')), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

function timed<T>(sql: string, run: () => Promise<T>): Promise<T> {
  const start = performance.now();
  return run().finally(() => {
    const ms = performance.now() - start;
    if (ms > SLOW_QUERY_MS) logger.warn({ ms: Math.round(ms), sql: sql.slice(0, 120) }, 'slow query');
  });
}

class PostgresDatabase implements Database {
  readonly kind = 'postgres';
  constructor(
    private readonly pool: Pool,
    private readonly timeoutMs?: number,
  ) {}

  async query<T>(sql: string, params: unknown[] = [], name?: string): Promise<QueryResult<T>> {
    try {
      const r = await timed(sql, () => this.pool.query({ text: sql, values: params, name }));
      return { rows: r.rows as T[], rowCount: r.rowCount ?? 0 };
    } catch (err) {
      throw queryError(err, this.timeoutMs);
    }
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    const client: PoolClient = await this.pool.connect().catch((err: unknown) => {
      throw asUnavailable(err);
    });
    // A held client whose connection dies (the server restarts, fails over) emits 'error': without a listener
    // that is an unhandled 'error' event, which ends the process. The failure reaches the request through the
    // query in flight; the client is then discarded, not returned to the pool.
    let broken: unknown;
    const onError = (err: unknown) => {
      broken ??= err;
      logger.warn({ err: (err as Error)?.message }, 'database connection lost during a transaction');
    };
    client.on('error', onError);
    const tx: Queryable = {
      query: async <R>(sql: string, params: unknown[] = [], name?: string) => {
        try {
          const r = await timed(sql, () => client.query({ text: sql, values: params, name }));
          return { rows: r.rows as R[], rowCount: r.rowCount ?? 0 };
        } catch (err) {
          if (isConnectionError(err)) broken ??= err;
          throw queryError(err, this.timeoutMs);
        }
      },
    };
    try {
      await tx.query('BEGIN');
      const result = await fn(tx);
      await tx.query('COMMIT');
      return result;
    } catch (err) {
      if (!broken) await client.query('ROLLBACK').catch((e: unknown) => (broken ??= e));
      throw asUnavailable(err);
    } finally {
      client.removeListener('error', onError);
      client.release(broken ? (broken instanceof Error ? broken : new Error('connection lost')) : undefined);
    }
  }

  async ping(): Promise<boolean> {
    return withTimeout(this.pool.query('SELECT 1').then(() => true), PING_TIMEOUT_MS).catch(() => false);
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}

/** A FIFO lock: PGlite serves one statement or transaction at a time. */
class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn, fn);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

class PGliteDatabase implements Database {
  readonly kind = 'pglite';
  private readonly mutex = new Mutex();
  constructor(
    private readonly db: PGlite,
    private readonly lock?: DirLock,
    private readonly timeoutMs?: number,
  ) {}

  private async raw<T>(sql: string, params: unknown[]): Promise<QueryResult<T>> {
    try {
      const r = await timed(sql, () => this.db.query<T>(sql, params));
      return { rows: r.rows, rowCount: r.affectedRows ?? r.rows.length };
    } catch (err) {
      throw queryError(err, this.timeoutMs);
    }
  }

  query<T>(sql: string, params: unknown[] = []): Promise<QueryResult<T>> {
    return this.mutex.run(() => this.raw<T>(sql, params));
  }

  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.mutex.run(async () => {
      const tx: Queryable = { query: (sql, params = []) => this.raw(sql, params) };
      await this.db.exec('BEGIN');
      try {
        const result = await fn(tx);
        await this.db.exec('COMMIT');
        return result;
      } catch (err) {
        await this.db.exec('ROLLBACK').catch(() => undefined);
        throw err;
      }
    });
  }

  async ping(): Promise<boolean> {
    try {
      await this.query('SELECT 1');
      return true;
    } catch {
      return false;
    }
  }

  close(): Promise<void> {
    return this.mutex.run(() => this.db.close()).finally(() => this.lock?.release());
  }
}

export interface DatabaseOptions {
  databaseUrl?: string;
  /** PGlite data directory; 'memory://' keeps it in memory (tests). */
  dataDir: string;
  poolSize: number;
  /**
   * Longest a statement may run (ms; 0 or unset: no limit), past which it fails with QueryTimeoutError
   * (DB_STATEMENT_TIMEOUT_MS). PGlite (0.5) accepts the setting but cannot enforce it: WebAssembly gets no
   * timer signal while a statement runs, so the search limits are its only guard.
   */
  statementTimeoutMs?: number;
}

export async function openDatabase(opts: DatabaseOptions): Promise<Database> {
  const timeoutMs = opts.statementTimeoutMs && opts.statementTimeoutMs > 0 ? Math.floor(opts.statementTimeoutMs) : undefined;
  if (opts.databaseUrl) {
    // JIT compiling a large search statement (many OR'd types) costs seconds and gains nothing for OLTP queries.
    // A fixed-size pool (as HikariCP's default): a connection, once opened, stays. pg's default closes one after
    // 10 s idle, and the next burst of traffic then waits for new backends to start and to load their catalog
    // caches and plans: p95 at half load went from 10 ms to over 300 ms for the first seconds after a pause.
    // connectionTimeoutMillis: during an outage a request waits this long for a connection, then gets a 503.
    const pool = new Pool({
      connectionString: opts.databaseUrl,
      max: opts.poolSize,
      min: opts.poolSize,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      // statement_timeout for every statement of every connection, set when the connection starts
      options: `-c jit=off${timeoutMs ? ` -c statement_timeout=${timeoutMs}` : ''}`,
    });
    // An idle client losing its connection must not crash the process; the next checkout reconnects.
    pool.on('error', (err) => logger.error({ err: err.message }, 'idle database client error'));
    return new PostgresDatabase(pool, timeoutMs);
  }
  const { PGlite } = await import('@electric-sql/pglite');
  const open = async (lock?: DirLock) => {
    // btree_gist: exclusion constraints on (key, time range) (migrations/0008_scheduling.sql)
    // (a package subpath this project's moduleResolution cannot type; it resolves at run time through "exports")
    const contrib = '@electric-sql/pglite/contrib/btree_gist';
    const { btree_gist } = (await import(contrib)) as { btree_gist: Extension };
    const pglite = await PGlite.create(opts.dataDir, { extensions: { btree_gist } });
    if (timeoutMs) await pglite.exec(`SET statement_timeout = ${timeoutMs}`);
    return new PGliteDatabase(pglite, lock, timeoutMs);
  };
  if (opts.dataDir.startsWith('memory://')) return open();
  mkdirSync(opts.dataDir, { recursive: true });
  // One server per data directory: a second one refuses to start, naming the holder (dataDirLock.ts).
  const lock = lockDataDir(opts.dataDir);
  try {
    return await open(lock);
  } catch (err) {
    lock.release();
    throw err;
  }
}

/** PostgreSQL error code of a driver error, if any (https://www.postgresql.org/docs/current/errcodes-appendix.html). */
export function pgErrorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' ? code : undefined;
}
