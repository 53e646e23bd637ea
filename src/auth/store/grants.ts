/**
 * SQL for what a sign-in produces: pending logins (browser authorization requests, logins awaiting a second
 * factor), authorization codes, refresh token families, revoked access tokens, and client assertion jtis.
 */
import type { Queryable } from '../../storage/database';

// ---- pending logins ----

export interface PendingRow<P> {
  kind: 'authorize' | 'mfa';
  params: P;
  user_id: string | null;
  attempts: number;
}

export async function insertPending(q: Queryable, handleHash: string, kind: 'authorize' | 'mfa', params: unknown, ttlSeconds: number, userId?: string): Promise<void> {
  await q.query('DELETE FROM auth_pending WHERE expires_at < now()');
  await q.query(
    "INSERT INTO auth_pending (handle_hash, kind, params, user_id, expires_at) VALUES ($1, $2, $3::jsonb, $4, now() + make_interval(secs => $5))",
    [handleHash, kind, JSON.stringify(params), userId ?? null, ttlSeconds],
  );
}

export async function findPending<P>(q: Queryable, handleHash: string, kind: 'authorize' | 'mfa'): Promise<PendingRow<P> | undefined> {
  const r = await q.query<PendingRow<P>>(
    'SELECT kind, params, user_id, attempts FROM auth_pending WHERE handle_hash = $1 AND kind = $2 AND expires_at > now()',
    [handleHash, kind],
  );
  return r.rows[0];
}

export async function updatePending(q: Queryable, handleHash: string, params: unknown, userId: string | null): Promise<void> {
  await q.query('UPDATE auth_pending SET params = $2::jsonb, user_id = $3 WHERE handle_hash = $1', [handleHash, JSON.stringify(params), userId]);
}

/** Counts a wrong second factor; returns the attempts so far. */
export async function countPendingAttempt(q: Queryable, handleHash: string): Promise<number> {
  const r = await q.query<{ attempts: number }>(
    'UPDATE auth_pending SET attempts = attempts + 1 WHERE handle_hash = $1 RETURNING attempts',
    [handleHash],
  );
  return r.rows[0]?.attempts ?? Number.MAX_SAFE_INTEGER;
}

export async function deletePending(q: Queryable, handleHash: string): Promise<boolean> {
  const r = await q.query('DELETE FROM auth_pending WHERE handle_hash = $1', [handleHash]);
  return r.rowCount === 1;
}

// ---- authorization codes ----

export interface CodeRecord {
  clientId: string;
  userId: string;
  redirectUri?: string;
  scope: string;
  codeChallenge?: string;
  nonce?: string;
  authTime: Date;
}

export interface CodeRow {
  client_id: string;
  user_id: string;
  redirect_uri: string | null;
  scope: string;
  code_challenge: string | null;
  nonce: string | null;
  auth_time: Date;
  expires_at: Date;
  used_at: Date | null;
  family_id: string | null;
}

export async function insertCode(q: Queryable, codeHash: string, c: CodeRecord, ttlSeconds: number): Promise<void> {
  await q.query('DELETE FROM auth_codes WHERE expires_at < now() - interval \'1 hour\'');
  await q.query(
    `INSERT INTO auth_codes (code_hash, client_id, user_id, redirect_uri, scope, code_challenge, nonce, auth_time, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now() + make_interval(secs => $9))`,
    [codeHash, c.clientId, c.userId, c.redirectUri ?? null, c.scope, c.codeChallenge ?? null, c.nonce ?? null, c.authTime, ttlSeconds],
  );
}

/**
 * Redeems a code: marks it used and returns it, once. A second redemption returns the row with `used_at`
 * already set (so the caller can revoke what the first issued); an unknown code returns undefined.
 */
export async function redeemCode(q: Queryable, codeHash: string): Promise<{ row: CodeRow; firstUse: boolean } | undefined> {
  const used = await q.query<CodeRow>(
    `UPDATE auth_codes SET used_at = now() WHERE code_hash = $1 AND used_at IS NULL
     RETURNING client_id, user_id, redirect_uri, scope, code_challenge, nonce, auth_time, expires_at, used_at, family_id`,
    [codeHash],
  );
  if (used.rows[0]) return { row: used.rows[0], firstUse: true };
  const again = await q.query<CodeRow>(
    'SELECT client_id, user_id, redirect_uri, scope, code_challenge, nonce, auth_time, expires_at, used_at, family_id FROM auth_codes WHERE code_hash = $1',
    [codeHash],
  );
  return again.rows[0] ? { row: again.rows[0], firstUse: false } : undefined;
}

export async function setCodeFamily(q: Queryable, codeHash: string, familyId: string): Promise<void> {
  await q.query('UPDATE auth_codes SET family_id = $2 WHERE code_hash = $1', [codeHash, familyId]);
}

// ---- token families and refresh tokens ----

export interface FamilyRow {
  id: string;
  client_id: string;
  user_id: string;
  scope: string;
  auth_time: Date;
  expires_at: Date;
  revoked_at: Date | null;
}

export async function insertFamily(
  q: Queryable,
  f: { id: string; clientId: string; userId: string; scope: string; authTime: Date },
  ttlSeconds: number,
): Promise<void> {
  // Sign-ins past their lifetime go, with their refresh tokens (ON DELETE CASCADE).
  await q.query("DELETE FROM auth_token_families WHERE expires_at < now() - interval '1 day'");
  await q.query(
    `INSERT INTO auth_token_families (id, client_id, user_id, scope, auth_time, expires_at)
     VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))`,
    [f.id, f.clientId, f.userId, f.scope, f.authTime, ttlSeconds],
  );
}

/**
 * Moves on every revocation this process makes, so cached token checks (bearer.ts) are redone at once.
 */
let epoch = 0;
export const revocationEpoch = () => epoch;

export async function revokeFamily(q: Queryable, familyId: string): Promise<void> {
  await q.query('UPDATE auth_token_families SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL', [familyId]);
  epoch++;
}

export async function revokeUserFamilies(q: Queryable, userId: string): Promise<void> {
  await q.query('UPDATE auth_token_families SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL', [userId]);
  epoch++;
}

export async function insertRefreshToken(q: Queryable, tokenHash: string, familyId: string): Promise<void> {
  await q.query('INSERT INTO auth_refresh_tokens (token_hash, family_id) VALUES ($1, $2)', [tokenHash, familyId]);
}

export interface RefreshRow {
  family: FamilyRow;
  used: boolean;
}

/** Looks a refresh token up with its family. */
export async function findRefreshToken(q: Queryable, tokenHash: string): Promise<RefreshRow | undefined> {
  const r = await q.query<FamilyRow & { used_at: Date | null }>(
    `SELECT f.id, f.client_id, f.user_id, f.scope, f.auth_time, f.expires_at, f.revoked_at, t.used_at
       FROM auth_refresh_tokens t JOIN auth_token_families f ON f.id = t.family_id WHERE t.token_hash = $1`,
    [tokenHash],
  );
  const row = r.rows[0];
  if (!row) return undefined;
  const { used_at, ...family } = row;
  return { family, used: used_at !== null };
}

/** Marks a refresh token used; false when it already was (a concurrent or replayed use). */
export async function useRefreshToken(q: Queryable, tokenHash: string): Promise<boolean> {
  const r = await q.query('UPDATE auth_refresh_tokens SET used_at = now() WHERE token_hash = $1 AND used_at IS NULL', [tokenHash]);
  return r.rowCount === 1;
}

// ---- access token revocation ----

export async function revokeAccessToken(q: Queryable, jti: string, expiresAt: Date): Promise<void> {
  await q.query('DELETE FROM auth_revoked_tokens WHERE expires_at < now()');
  await q.query('INSERT INTO auth_revoked_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING', [jti, expiresAt]);
  epoch++;
}

/**
 * True when an access token was revoked: by its jti, or through its family. One indexed statement, run on
 * every authenticated request (prepared once per connection).
 */
export async function isAccessTokenRevoked(q: Queryable, jti: string, familyId: string | undefined): Promise<boolean> {
  const r = await q.query<{ revoked: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM auth_revoked_tokens WHERE jti = $1)
         OR EXISTS (SELECT 1 FROM auth_token_families WHERE id = $2::uuid AND revoked_at IS NOT NULL) AS revoked`,
    [jti, familyId ?? null],
    'auth_token_revoked',
  );
  return r.rows[0]?.revoked === true;
}

// ---- client assertion replay cache ----

/** Records a client assertion's jti until it expires; false when it was seen before (a replay). */
export async function rememberAssertionJti(q: Queryable, clientId: string, jti: string, expiresAt: Date): Promise<boolean> {
  await q.query('DELETE FROM auth_assertion_jtis WHERE expires_at < now()');
  const r = await q.query(
    'INSERT INTO auth_assertion_jtis (client_id, jti, expires_at) VALUES ($1, $2, $3) ON CONFLICT (client_id, jti) DO NOTHING',
    [clientId, jti, expiresAt],
  );
  return r.rowCount === 1;
}
