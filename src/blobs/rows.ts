/**
 * SQL for binary_content (migrations/0010_blobs.sql): one row per Binary version that has content, naming its
 * encrypted object and holding the object's data key, wrapped under a master key.
 */
import type { Queryable } from '../storage/database';

export interface ContentRow {
  binary_id: string;
  version_id: number;
  object_key: string;
  patient: string;
  size: number;
  sha1: string;
  key_id: string;
  data_key: Buffer;
}

const COLUMNS = 'binary_id, version_id, object_key, patient, size, sha1, key_id, data_key';

const fromDb = (r: ContentRow): ContentRow => ({ ...r, size: Number(r.size), version_id: Number(r.version_id), data_key: Buffer.from(r.data_key) });

export async function insertRow(q: Queryable, row: ContentRow): Promise<void> {
  await q.query(`INSERT INTO binary_content (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, [
    row.binary_id,
    row.version_id,
    row.object_key,
    row.patient,
    row.size,
    row.sha1,
    row.key_id,
    row.data_key,
  ]);
}

export async function contentRow(q: Queryable, binaryId: string, versionId: number): Promise<ContentRow | undefined> {
  const r = await q.query<ContentRow>(`SELECT ${COLUMNS} FROM binary_content WHERE binary_id = $1 AND version_id = $2`, [binaryId, versionId]);
  return r.rows[0] && fromDb(r.rows[0]);
}

/** The content of the newest version before `beforeVersion` that had content. */
export async function latestRow(q: Queryable, binaryId: string, beforeVersion: number): Promise<ContentRow | undefined> {
  const r = await q.query<ContentRow>(
    `SELECT ${COLUMNS} FROM binary_content WHERE binary_id = $1 AND version_id < $2 ORDER BY version_id DESC LIMIT 1`,
    [binaryId, beforeVersion],
  );
  return r.rows[0] && fromDb(r.rows[0]);
}

/** Rows whose data key is not under `keyId`, in a stable order after `after` (rotation resumes where it stopped). */
export async function rowsNotUnder(q: Queryable, keyId: string, after: { binaryId: string; versionId: number } | undefined, limit: number): Promise<ContentRow[]> {
  const r = await q.query<ContentRow>(
    `SELECT ${COLUMNS} FROM binary_content WHERE key_id <> $1 AND (binary_id, version_id) > ($2, $3)
      ORDER BY binary_id, version_id LIMIT $4`,
    [keyId, after?.binaryId ?? '', after?.versionId ?? -1, limit],
  );
  return r.rows.map(fromDb);
}

export async function countNotUnder(q: Queryable, keyId: string): Promise<number> {
  const r = await q.query<{ n: string }>('SELECT count(*) AS n FROM binary_content WHERE key_id <> $1', [keyId]);
  return Number(r.rows[0].n);
}

/** Replaces a row's wrapped key only if it is still the one read (a concurrent rotation wins once). */
export async function replaceKey(q: Queryable, row: ContentRow, keyId: string, dataKey: Buffer): Promise<boolean> {
  const r = await q.query('UPDATE binary_content SET key_id = $1, data_key = $2 WHERE binary_id = $3 AND version_id = $4 AND key_id = $5 AND data_key = $6', [
    keyId,
    dataKey,
    row.binary_id,
    row.version_id,
    row.key_id,
    row.data_key,
  ]);
  return r.rowCount === 1;
}

export async function objectKeyInUse(q: Queryable, objectKey: string): Promise<boolean> {
  const r = await q.query('SELECT 1 FROM binary_content WHERE object_key = $1 LIMIT 1', [objectKey]);
  return r.rows.length > 0;
}
