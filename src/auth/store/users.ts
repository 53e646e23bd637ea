/**
 * SQL for accounts (auth_users) and their second factor. Parameterized statements only, through the
 * storage layer's Queryable.
 */
import type { Queryable } from '../../storage/database';

export type Role = 'patient' | 'practitioner';

export interface UserRow {
  id: string;
  role: Role;
  email: string;
  cpf: string | null;
  crm: string | null;
  fhir_user: string;
  password_hash: string;
  totp_secret: string | null;
  totp_pending_secret: string | null;
  totp_last_step: number | null;
}

const COLUMNS = 'id, role, email, cpf, crm, fhir_user, password_hash, totp_secret, totp_pending_secret, totp_last_step';

export interface NewUser {
  id: string;
  role: Role;
  email: string;
  cpf?: string;
  crm?: string;
  fhirUser: string;
  passwordHash: string;
}

export async function insertUser(q: Queryable, u: NewUser): Promise<void> {
  await q.query(
    'INSERT INTO auth_users (id, role, email, cpf, crm, fhir_user, password_hash) VALUES ($1, $2, $3, $4, $5, $6, $7)',
    [u.id, u.role, u.email, u.cpf ?? null, u.crm ?? null, u.fhirUser, u.passwordHash],
  );
}

/** Which of e-mail, CPF and CRM an account already uses (for a 409 that names the field). */
export async function takenIdentifiers(q: Queryable, email: string, cpf?: string, crm?: string): Promise<string[]> {
  const r = await q.query<{ email: string; cpf: string | null; crm: string | null }>(
    'SELECT email, cpf, crm FROM auth_users WHERE email = $1 OR cpf = $2 OR crm = $3',
    [email, cpf ?? null, crm ?? null],
  );
  const taken = new Set<string>();
  for (const row of r.rows) {
    if (row.email === email) taken.add('email');
    if (cpf && row.cpf === cpf) taken.add('cpf');
    if (crm && row.crm === crm) taken.add('crm');
  }
  return [...taken];
}

/**
 * The account a login names: e-mail, CPF or CRM (already normalized by the caller). A deactivated account is
 * not found (it signs in no more), here and by findUserById; registration still sees its identifiers as taken.
 */
export async function findUserByLogin(q: Queryable, login: { email?: string; cpf?: string; crm?: string }): Promise<UserRow | undefined> {
  const r = await q.query<UserRow>(
    `SELECT ${COLUMNS} FROM auth_users WHERE (email = $1 OR cpf = $2 OR crm = $3) AND deactivated_at IS NULL LIMIT 1`,
    [login.email ?? null, login.cpf ?? null, login.crm ?? null],
  );
  return r.rows[0];
}

export async function findUserById(q: Queryable, id: string): Promise<UserRow | undefined> {
  const r = await q.query<UserRow>(`SELECT ${COLUMNS} FROM auth_users WHERE id = $1 AND deactivated_at IS NULL`, [id]);
  return r.rows[0];
}

/** The account of a FHIR user ("Patient/<id>"), deactivated or not, with when it was deactivated. */
export async function findAccountOf(q: Queryable, fhirUser: string): Promise<(UserRow & { deactivated_at: Date | null }) | undefined> {
  const r = await q.query<UserRow & { deactivated_at: Date | null }>(`SELECT ${COLUMNS}, deactivated_at FROM auth_users WHERE fhir_user = $1`, [fhirUser]);
  return r.rows[0];
}

export async function setDeactivated(q: Queryable, id: string, deactivated: boolean): Promise<void> {
  await q.query(`UPDATE auth_users SET deactivated_at = CASE WHEN $2 THEN now() END WHERE id = $1`, [id, deactivated]);
}

export async function updatePasswordHash(q: Queryable, id: string, hash: string): Promise<void> {
  await q.query('UPDATE auth_users SET password_hash = $2, password_changed_at = now() WHERE id = $1', [id, hash]);
}

export async function setPendingTotpSecret(q: Queryable, id: string, secret: string): Promise<void> {
  await q.query('UPDATE auth_users SET totp_pending_secret = $2 WHERE id = $1', [id, secret]);
}

/** Confirms enrolment: the pending secret becomes the secret, and `step` its first used time step. */
export async function activateTotp(q: Queryable, id: string, step: number): Promise<boolean> {
  const r = await q.query(
    `UPDATE auth_users SET totp_secret = totp_pending_secret, totp_pending_secret = NULL, totp_last_step = $2
      WHERE id = $1 AND totp_pending_secret IS NOT NULL`,
    [id, step],
  );
  return r.rowCount === 1;
}

export async function disableTotp(q: Queryable, id: string): Promise<void> {
  await q.query('UPDATE auth_users SET totp_secret = NULL, totp_pending_secret = NULL, totp_last_step = NULL WHERE id = $1', [id]);
  await q.query('DELETE FROM auth_recovery_codes WHERE user_id = $1', [id]);
}

/** Records a used time step, only if it is later than the last one (so one OTP works once, even in a race). */
export async function useTotpStep(q: Queryable, id: string, step: number): Promise<boolean> {
  const r = await q.query(
    'UPDATE auth_users SET totp_last_step = $2 WHERE id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)',
    [id, step],
  );
  return r.rowCount === 1;
}

export async function replaceRecoveryCodes(q: Queryable, id: string, codeHashes: string[]): Promise<void> {
  await q.query('DELETE FROM auth_recovery_codes WHERE user_id = $1', [id]);
  for (const h of codeHashes) {
    await q.query('INSERT INTO auth_recovery_codes (user_id, code_hash) VALUES ($1, $2)', [id, h]);
  }
}

/** Spends a recovery code: true once per code. */
export async function useRecoveryCode(q: Queryable, id: string, codeHash: string): Promise<boolean> {
  const r = await q.query(
    'UPDATE auth_recovery_codes SET used_at = now() WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL',
    [id, codeHash],
  );
  return r.rowCount === 1;
}

export async function insertPasswordReset(q: Queryable, tokenHash: string, userId: string, ttlSeconds: number): Promise<void> {
  await q.query('DELETE FROM auth_password_resets WHERE expires_at < now()');
  await q.query(
    "INSERT INTO auth_password_resets (token_hash, user_id, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3))",
    [tokenHash, userId, ttlSeconds],
  );
}

/** Spends a reset token: the user id once, if it exists, is unused and has not expired. */
export async function usePasswordReset(q: Queryable, tokenHash: string): Promise<string | undefined> {
  const r = await q.query<{ user_id: string }>(
    `UPDATE auth_password_resets SET used_at = now()
      WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now() RETURNING user_id`,
    [tokenHash],
  );
  return r.rows[0]?.user_id;
}
