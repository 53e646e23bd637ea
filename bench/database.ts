/** The throwaway benchmark database on the local PostgreSQL, through an admin connection. */
import { Client } from 'pg';

/** The admin URL with its database replaced. */
export function databaseUrl(adminUrl: string, database: string): string {
  const url = new URL(adminUrl);
  url.pathname = '/' + database;
  return url.toString();
}

async function admin<T>(adminUrl: string, work: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: adminUrl });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

function quoteIdent(name: string): string {
  return '"' + name.replace(/"/g, '""') + '"';
}

/** Drops (disconnecting any leftover session) and creates an empty database; returns its URL. */
export async function recreateDatabase(adminUrl: string, database: string): Promise<string> {
  await admin(adminUrl, async (client) => {
    await client.query(`DROP DATABASE IF EXISTS ${quoteIdent(database)} WITH (FORCE)`);
    await client.query(`CREATE DATABASE ${quoteIdent(database)}`);
  });
  return databaseUrl(adminUrl, database);
}

/** Row counts that show what the load left behind, for the report. */
export async function tableSizes(url: string, tables: string[]): Promise<Record<string, string>> {
  return admin(url, async (client) => {
    const sizes: Record<string, string> = {};
    for (const table of tables) {
      const { rows } = await client.query<{ size: string | null }>(
        'SELECT pg_size_pretty(pg_total_relation_size(to_regclass($1))) AS size',
        [table],
      );
      sizes[table] = rows[0]?.size ?? 'n/a';
    }
    return sizes;
  });
}

/** Whether the database exists (for --reuse). */
export async function databaseExists(adminUrl: string, database: string): Promise<boolean> {
  return admin(adminUrl, async (client) => {
    const { rows } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    return rows.length > 0;
  });
}

/**
 * What a load left for the scenarios (ids, the data set's timeline), kept next to the data in the bench
 * database so `--reuse` can skip loading. Keyed by data set.
 */
export async function saveManifest(url: string, key: string, value: unknown): Promise<void> {
  await admin(url, async (client) => {
    await client.query('CREATE TABLE IF NOT EXISTS bench_manifest (key text PRIMARY KEY, value jsonb NOT NULL)');
    await client.query(
      'INSERT INTO bench_manifest (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value',
      [key, JSON.stringify(value)],
    );
  });
}

export async function loadManifest<T>(url: string, key: string): Promise<T | undefined> {
  return admin(url, async (client) => {
    const { rows } = await client
      .query<{ value: T }>('SELECT value FROM bench_manifest WHERE key = $1', [key])
      .catch(() => ({ rows: [] as { value: T }[] })); // no manifest table: nothing was loaded
    return rows[0]?.value;
  });
}

/** VACUUM ANALYZE after the load, so both servers meet planner statistics as a live database has them. */
export async function analyze(url: string): Promise<number> {
  const started = Date.now();
  await admin(url, (client) => client.query('VACUUM ANALYZE'));
  return (Date.now() - started) / 1000;
}
