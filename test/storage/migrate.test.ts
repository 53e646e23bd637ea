/**
 * Migrations apply once, in order, recorded in schema_migrations — also when two servers start at once.
 * Embedded PGlite keeps its data under DATA_DIR across restarts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../../src/config';
import { openDatabase, type Database } from '../../src/storage/database';
import { isMigrated, migrate, migrationFiles } from '../../src/storage/migrate';

const MIGRATIONS = join(projectRoot(), 'migrations');

/** A fresh database: a new PostgreSQL database when DATABASE_URL is set, else a PGlite in memory. */
async function freshDatabase(): Promise<{ open: () => Promise<Database>; drop: () => Promise<void> }> {
  const url = process.env.DATABASE_URL;
  if (!url) return { open: () => openDatabase({ dataDir: 'memory://', poolSize: 1 }), drop: async () => undefined };
  const admin = await openDatabase({ databaseUrl: url, dataDir: '', poolSize: 1 });
  const name = `fhir_migrate_${Date.now()}_${Math.floor(Math.random() * 1e6)}`;
  await admin.query(`CREATE DATABASE ${name}`);
  const target = new URL(url);
  target.pathname = `/${name}`;
  return {
    open: () => openDatabase({ databaseUrl: target.toString(), dataDir: '', poolSize: 4 }),
    drop: async () => {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.close();
    },
  };
}

test('two servers migrating one database at once apply each migration once', async () => {
  const fresh = await freshDatabase();
  const a = await fresh.open();
  const b = process.env.DATABASE_URL ? await fresh.open() : a;
  try {
    expect(await isMigrated(a, MIGRATIONS)).toBe(false);
    const [first, second] = await Promise.all([migrate(a, MIGRATIONS), migrate(b, MIGRATIONS)]);
    const files = migrationFiles(MIGRATIONS);
    expect([...first, ...second].sort()).toEqual(files);
    const rows = await a.query<{ name: string }>('SELECT name FROM schema_migrations ORDER BY name');
    expect(rows.rows.map((r) => r.name)).toEqual(files);
    expect(await isMigrated(b, MIGRATIONS)).toBe(true);
    expect(await migrate(a, MIGRATIONS)).toEqual([]);
  } finally {
    if (b !== a) await b.close();
    await a.close();
    await fresh.drop();
  }
});

test('embedded PGlite keeps data under DATA_DIR across restarts', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fhir-pglite-'));
  try {
    const first = await openDatabase({ dataDir: dir, poolSize: 1 });
    await migrate(first, MIGRATIONS);
    await first.query(
      `INSERT INTO resources (resource_type, id, version_id, last_updated, deleted, content) VALUES ('Basic', 'kept', 1, now(), false, '{"resourceType":"Basic"}')`,
    );
    await first.close();
    const second = await openDatabase({ dataDir: dir, poolSize: 1 });
    const r = await second.query<{ id: string }>(`SELECT id FROM resources WHERE resource_type = 'Basic' AND id = 'kept'`);
    expect(r.rows).toEqual([{ id: 'kept' }]);
    await second.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
