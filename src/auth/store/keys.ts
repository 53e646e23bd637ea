/**
 * SQL for the token signing keys (auth_signing_keys).
 */
import type { JWK } from 'jose';
import type { Database, Queryable } from '../../storage/database';

export interface KeyRow {
  kid: string;
  alg: string;
  public_jwk: JWK;
  private_jwk: JWK;
  created_at: Date;
  retired_at: Date | null;
}

/** Every key still worth publishing: unretired, or retired less than `keepSeconds` ago. Newest first. */
export async function publishedKeys(q: Queryable, keepSeconds: number): Promise<KeyRow[]> {
  const r = await q.query<KeyRow>(
    `SELECT kid, alg, public_jwk, private_jwk, created_at, retired_at FROM auth_signing_keys
      WHERE retired_at IS NULL OR retired_at > now() - make_interval(secs => $1) ORDER BY created_at DESC`,
    [keepSeconds],
  );
  return r.rows;
}

/** Arbitrary constant key serializing key generation between servers that start at once. */
const KEY_LOCK = 7_240_115_003;

/**
 * Returns the active signing key, creating one when there is none or it is older than `maxAgeSeconds`
 * (the old one is retired, not deleted). Runs under an advisory lock so that servers starting together make
 * one key.
 */
export async function activeKey(db: Database, maxAgeSeconds: number, generate: () => Promise<Omit<KeyRow, 'created_at' | 'retired_at'>>): Promise<KeyRow> {
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [KEY_LOCK]);
    const current = await tx.query<KeyRow>(
      `SELECT kid, alg, public_jwk, private_jwk, created_at, retired_at FROM auth_signing_keys
        WHERE retired_at IS NULL AND created_at > now() - make_interval(secs => $1) ORDER BY created_at DESC LIMIT 1`,
      [maxAgeSeconds],
    );
    if (current.rows[0]) return current.rows[0];
    const key = await generate();
    await tx.query('UPDATE auth_signing_keys SET retired_at = now() WHERE retired_at IS NULL');
    const r = await tx.query<KeyRow>(
      `INSERT INTO auth_signing_keys (kid, alg, public_jwk, private_jwk) VALUES ($1, $2, $3::jsonb, $4::jsonb)
       RETURNING kid, alg, public_jwk, private_jwk, created_at, retired_at`,
      [key.kid, key.alg, JSON.stringify(key.public_jwk), JSON.stringify(key.private_jwk)],
    );
    return r.rows[0];
  });
}

/** Keys whose private JWK is still stored in plaintext (stored before it was wrapped; src/auth/keys.ts). */
export async function legacyKeys(q: Queryable): Promise<KeyRow[]> {
  const r = await q.query<KeyRow>(
    "SELECT kid, alg, public_jwk, private_jwk, created_at, retired_at FROM auth_signing_keys WHERE NOT (private_jwk ? 'wrapped') ORDER BY kid",
  );
  return r.rows;
}

/** Replaces a key's stored private JWK if it is still `before` (two servers wrapping at once: one wins). */
export async function replacePrivateJwk(q: Queryable, kid: string, before: unknown, after: unknown): Promise<void> {
  await q.query('UPDATE auth_signing_keys SET private_jwk = $3::jsonb WHERE kid = $1 AND private_jwk = $2::jsonb', [kid, JSON.stringify(before), JSON.stringify(after)]);
}

/** Every stored key (rotate-keys re-wraps them all). */
export async function allKeys(q: Queryable): Promise<KeyRow[]> {
  const r = await q.query<KeyRow>('SELECT kid, alg, public_jwk, private_jwk, created_at, retired_at FROM auth_signing_keys ORDER BY kid');
  return r.rows;
}
