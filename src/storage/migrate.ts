/**
 * Applies the ordered SQL files of migrations/ at start, forward only, each recorded in schema_migrations.
 * Everything runs in one transaction under a transaction-scoped advisory lock, so two servers starting at
 * once migrate once: the second waits for the lock, then finds nothing left to do.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Database } from './database';
import { logger } from '../logger';

/** Arbitrary constant key for pg_advisory_xact_lock, shared by every server of this project. */
const MIGRATION_LOCK_KEY = 7_240_115_021;

export function migrationFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => /^\d+_.+\.sql$/.test(f))
    .sort();
}

export async function migrate(db: Database, dir: string): Promise<string[]> {
  const files = migrationFiles(dir);
  return db.transaction(async (tx) => {
    // A long index build, or a second server waiting here for the lock, is not a runaway query (DB_STATEMENT_TIMEOUT_MS).
    await tx.query('SET LOCAL statement_timeout = 0');
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
    await tx.query(
      'CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
    );
    const done = new Set((await tx.query<{ name: string }>('SELECT name FROM schema_migrations')).rows.map((r) => r.name));
    const applied: string[] = [];
    for (const file of files) {
      if (done.has(file)) continue;
      // A migration file may hold several statements; the simple query protocol runs them all.
      await runScript(tx, readFileSync(join(dir, file), 'utf8'));
      await tx.query('INSERT INTO schema_migrations (name) VALUES ($1)', [file]);
      applied.push(file);
      logger.info({ migration: file }, 'migration applied');
    }
    return applied;
  });
}

/** Splits a SQL script on statement-ending semicolons (our migrations hold no functions or quoted semicolons). */
async function runScript(tx: { query: (sql: string) => Promise<unknown> }, script: string): Promise<void> {
  const statements = script
    .split(/;\s*(?:\n|$)/)
    .map((s) => s.replace(/^\s*--.*$/gm, '').trim())
    .filter((s) => s.length > 0);
  for (const sql of statements) await tx.query(sql);
}

/** True when every migration file has been applied (readiness). */
export async function isMigrated(db: Database, dir: string): Promise<boolean> {
  try {
    const r = await db.query<{ name: string }>('SELECT name FROM schema_migrations');
    const done = new Set(r.rows.map((x) => x.name));
    return migrationFiles(dir).every((f) => done.has(f));
  } catch {
    return false;
  }
}
