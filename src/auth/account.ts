/**
 * A signed-in user's own account: password change, password reset by e-mail (single-use tokens that
 * expire), and TOTP enrolment. Account endpoints take the user's access token.
 * OWASP Forgot Password Cheat Sheet: the reset request answers the same whether or not the address has an
 * account; a reset or a change ends every sign-in of the account.
 */
import { badRequest, forbidden, unauthorized } from '../fhir/outcomes';
import { authenticate } from './bearer';
import type { AuthServices } from './context';
import { assertStrongPassword, hashPassword, verifyPassword } from './passwords';
import { confirmEnrolment } from './mfa';
import { randomSecret, sha256 } from './secrets';
import { revokeUserFamilies } from './store/grants';
import { clearFailures } from './store/throttle';
import { deactivateRecord, reactivateRecord, type DeactivationSummary } from '../workflows/records/deactivation';
import { logger } from '../logger';
import {
  disableTotp,
  findAccountOf,
  setDeactivated,
  findUserById,
  findUserByLogin,
  insertPasswordReset,
  updatePasswordHash,
  usePasswordReset,
  type UserRow,
} from './store/users';
import { assertNotLocked, recordFailure, throttleKeys } from './throttle';
import { startEnrolment } from './login';
import { normalizeEmail } from './users';

const RESET_TTL_SECONDS = 30 * 60;

/** The account behind a user's access token (patients and practitioners; clients have no account). */
export async function accountOf(auth: AuthServices, authorization: string | undefined): Promise<UserRow> {
  const grant = await authenticate(auth, authorization);
  if (grant.caller.kind !== 'patient' && grant.caller.kind !== 'practitioner') throw forbidden('This endpoint is for signed-in users');
  const user = await findUserById(auth.db, grant.subject);
  if (!user) throw unauthorized('The account no longer exists');
  return user;
}

async function assertPassword(auth: AuthServices, user: UserRow, password: unknown, address: string): Promise<void> {
  const keys = throttleKeys(user.id, '', address);
  await assertNotLocked(auth, keys);
  if (typeof password !== 'string' || !(await verifyPassword(user.password_hash, password))) {
    await recordFailure(auth, keys);
    throw unauthorized('The current password is not correct');
  }
}

async function setPassword(auth: AuthServices, userId: string, password: string): Promise<void> {
  const hash = await hashPassword(password);
  await auth.db.transaction(async (tx) => {
    await updatePasswordHash(tx, userId, hash);
    await revokeUserFamilies(tx, userId);
  });
}

/** POST /auth/password `{current_password, new_password}`. */
export async function changePassword(auth: AuthServices, user: UserRow, body: Record<string, unknown>, address: string): Promise<void> {
  assertStrongPassword(body.new_password, 'new_password');
  await assertPassword(auth, user, body.current_password, address);
  await setPassword(auth, user.id, body.new_password);
}

/** POST /auth/password/forgot `{email}`: mails a reset link when the address has an account; answers alike either way. */
export async function requestPasswordReset(auth: AuthServices, body: Record<string, unknown>): Promise<void> {
  const email = normalizeEmail(body.email);
  if (!email) throw badRequest('A valid e-mail address is required', 'email');
  const user = await findUserByLogin(auth.db, { email });
  if (!user) return;
  const token = randomSecret();
  await insertPasswordReset(auth.db, sha256(token), user.id, RESET_TTL_SECONDS);
  const link = `${auth.settings.issuer}/auth/password/reset?token=${encodeURIComponent(token)}`;
  await auth.mailer.send({
    kind: 'password-reset',
    to: user.email,
    subject: 'Health&Med: redefinição de senha',
    text:
      `Recebemos um pedido para redefinir a senha da sua conta Health&Med.\n\n` +
      `Para escolher uma nova senha, abra este link nos próximos 30 minutos:\n${link}\n\n` +
      `Se você não fez este pedido, ignore esta mensagem: sua senha continua a mesma.\n`,
  });
}

/** POST /auth/password/reset `{token, password}`: the token works once, within 30 minutes. */
export async function resetPassword(auth: AuthServices, body: Record<string, unknown>): Promise<void> {
  assertStrongPassword(body.password);
  if (typeof body.token !== 'string' || body.token === '') throw badRequest('token is required', 'token');
  const userId = await usePasswordReset(auth.db, sha256(body.token));
  if (!userId) throw badRequest('The reset link is invalid, expired or already used', 'token');
  await setPassword(auth, userId, body.password);
  await clearFailures(auth.db, `account:${userId}`);
}

/** POST /auth/mfa/totp: a new TOTP secret to confirm with /auth/mfa/totp/activate. */
export function enrolTotp(auth: AuthServices, user: UserRow) {
  return startEnrolment(auth, user);
}

/** POST /auth/mfa/totp/activate `{otp}` -> `{recovery_codes}`. */
export async function activateTotp(auth: AuthServices, user: UserRow, body: Record<string, unknown>, address: string): Promise<{ recovery_codes: string[] }> {
  if (typeof body.otp !== 'string') throw badRequest('otp is required', 'otp');
  const keys = throttleKeys(user.id, '', address);
  await assertNotLocked(auth, keys);
  const codes = await confirmEnrolment(auth.db, user, body.otp);
  if (!codes) {
    await recordFailure(auth, keys);
    throw badRequest('The one-time code does not match the new secret (or no enrolment is in progress)', 'otp');
  }
  return { recovery_codes: codes };
}

/** POST /auth/mfa/totp/disable `{password}`; refused while REQUIRE_PRACTITIONER_MFA applies to the account. */
export async function removeTotp(auth: AuthServices, user: UserRow, body: Record<string, unknown>, address: string): Promise<void> {
  if (user.role === 'practitioner' && auth.settings.requirePractitionerMfa) throw forbidden('A second factor is required for practitioners');
  await assertPassword(auth, user, body.password, address);
  await disableTotp(auth.db, user.id);
}

/**
 * POST /auth/deactivate (LGPD): by the patient, `{password}` with their own token; or by an administrator
 * (system/*.* token), `{patient: "Patient/<id>"}`. In one transaction: the account signs in no more, every
 * token and refresh token of it is revoked, and the record is closed (src/workflows/records/deactivation.ts:
 * Consents inactive, future Appointments cancelled and their Slots freed, Patient.active false). The record is
 * kept; an administrator can reactivate the account.
 */
export async function deactivateAccount(
  auth: AuthServices,
  authorization: string | undefined,
  body: Record<string, unknown>,
  address: string,
  admin: boolean,
): Promise<DeactivationSummary & { patient: string }> {
  let user: UserRow;
  if (admin) {
    const account = typeof body.patient === 'string' && /^Patient\/[A-Za-z0-9\-.]{1,64}$/.test(body.patient) ? await findAccountOf(auth.db, body.patient) : undefined;
    if (!account) throw badRequest('patient must name the Patient/<id> of an account', 'patient');
    if (account.deactivated_at) throw badRequest('The account is already deactivated', 'patient');
    user = account;
  } else {
    user = await accountOf(auth, authorization);
    if (user.role !== 'patient') throw forbidden('Only a patient deactivates their own account here; an administrator deactivates others');
    await assertPassword(auth, user, body.password, address);
  }
  const patientId = user.fhir_user.replace(/^Patient\//, '');
  const summary = await auth.db.transaction(async (tx) => {
    await setDeactivated(tx, user.id, true);
    await revokeUserFamilies(tx, user.id);
    return deactivateRecord(auth.fhir, tx, patientId);
  });
  logger.info({ account: user.id, by: admin ? 'admin' : 'patient', ...summary }, 'account deactivated');
  return { patient: user.fhir_user, ...summary };
}

/** POST /auth/reactivate `{patient}` (administrator): the account signs in again and Patient.active is true. */
export async function reactivateAccount(auth: AuthServices, body: Record<string, unknown>): Promise<void> {
  const account = typeof body.patient === 'string' && /^Patient\/[A-Za-z0-9\-.]{1,64}$/.test(body.patient) ? await findAccountOf(auth.db, body.patient) : undefined;
  if (!account) throw badRequest('patient must name the Patient/<id> of an account', 'patient');
  if (!account.deactivated_at) throw badRequest('The account is not deactivated', 'patient');
  await auth.db.transaction(async (tx) => {
    await setDeactivated(tx, account.id, false);
    await reactivateRecord(auth.fhir, tx, account.fhir_user.replace(/^Patient\//, ''));
  });
  logger.info({ account: account.id }, 'account reactivated');
}
