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
