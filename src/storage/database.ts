/**
 * The one module that talks to PostgreSQL: a pooled `pg` server when DATABASE_URL is set, else embedded
 * PGlite (real PostgreSQL compiled to WASM) under DATA_DIR. PGlite has a single connection, so every
 * query and transaction on it runs one at a time behind a mutex.
 * Queries are timed; their parameters are never logged (they hold PHI).
 */
import { mkdirSync } from 'node:fs';
import { Pool, type PoolClient } from 'pg';
import type { PGlite } from '@electric-sql/pglite';
import { logger } from '../logger';

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

function timed<T>(sql: string, run: () => Promise<T>): Promise<T> {
  const start = performance.now();
  return run().finally(() => {
    const ms = performance.now() - start;
    if (ms > SLOW_QUERY_MS) logger.warn({ ms: Math.round(ms), sql: sql.slice(0, 120) }, 'slow query');
  });
}

class PostgresDatabase implements Database {
  readonly kind = 'postgres';
  constructor(private readonly pool: Pool) {}

  async query<T>(sql: string, params: unknown[] = [], name?: string): Promise<QueryResult<T>> {
    const r = await timed(sql, () => this.pool.query({ text: sql, values: params, name }));
    return { rows: r.rows as T[], rowCount: r.rowCount ?? 0 };
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    const client: PoolClient = await this.pool.connect();
    const tx: Queryable = {
      query: async <R>(sql: string, params: unknown[] = [], name?: string) => {
        const r = await timed(sql, () => client.query({ text: sql, values: params, name }));
        return { rows: r.rows as R[], rowCount: r.rowCount ?? 0 };
      },
    };
    try {
      await client.query('BEGIN');
      const result = await fn(tx);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  async ping(): Promise<boolean> {
    try {
      await this.pool.query('SELECT 1');
      return true;
    } catch {
      return false;
    }
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
  constructor(private readonly db: PGlite) {}

  private async raw<T>(sql: string, params: unknown[]): Promise<QueryResult<T>> {
    const r = await timed(sql, () => this.db.query<T>(sql, params));
    return { rows: r.rows, rowCount: r.affectedRows ?? r.rows.length };
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
    return this.mutex.run(() => this.db.close());
  }
}

export interface DatabaseOptions {
  databaseUrl?: string;
  /** PGlite data directory; 'memory://' keeps it in memory (tests). */
  dataDir: string;
  poolSize: number;
}

export async function openDatabase(opts: DatabaseOptions): Promise<Database> {
  if (opts.databaseUrl) {
    // JIT compiling a large search statement (many OR'd types) costs seconds and gains nothing for OLTP queries.
    // A fixed-size pool (as HikariCP's default): a connection, once opened, stays. pg's default closes one after
    // 10 s idle, and the next burst of traffic then waits for new backends to start and to load their catalog
    // caches and plans: p95 at half load went from 10 ms to over 300 ms for the first seconds after a pause.
    const pool = new Pool({ connectionString: opts.databaseUrl, max: opts.poolSize, min: opts.poolSize, options: '-c jit=off' });
    // An idle client losing its connection must not crash the process; the next checkout reconnects.
    pool.on('error', (err) => logger.error({ err: err.message }, 'idle database client error'));
    return new PostgresDatabase(pool);
  }
  const { PGlite } = await import('@electric-sql/pglite');
  if (!opts.dataDir.startsWith('memory://')) mkdirSync(opts.dataDir, { recursive: true });
  const db = await PGlite.create(opts.dataDir);
  return new PGliteDatabase(db);
}

/** PostgreSQL error code of a driver error, if any (https://www.postgresql.org/docs/current/errcodes-appendix.html). */
export function pgErrorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' ? code : undefined;
}
