/**
 * Signing in: password check (throttled, the same 401 for an unknown login and a wrong password), the
 * second factor when the account has one (or must: REQUIRE_PRACTITIONER_MFA), and the authorization code
 * that ends a sign-in (single use, 60 seconds, bound to the client, the PKCE challenge and the redirect URI).
 * The first-party JSON flow (`POST /auth/login`, `POST /auth/mfa`) lives here; the browser flow
 * (authorize.ts) uses the same steps.
 */
import { badRequest, unauthorized } from '../fhir/outcomes';
import type { AuthServices } from './context';
import { grantScopes } from './granting';
import { confirmEnrolment, newTotpSecret, otpauthUri, verifySecondFactor } from './mfa';
import { needsRehash, hashPassword, verifyPassword } from './passwords';
import { randomSecret, sha256 } from './secrets';
import { findClient } from './store/clients';
import { countPendingAttempt, deletePending, findPending, insertCode, insertPending } from './store/grants';
import { findUserById, setPendingTotpSecret, updatePasswordHash, type UserRow } from './store/users';
import { assertNotLocked, recordFailure, recordSuccess, throttleKeys } from './throttle';
import { findAccount } from './users';

const CODE_TTL_SECONDS = 60;
const MFA_TTL_SECONDS = 300;
const MAX_MFA_ATTEMPTS = 5;
/** RFC 7636 section 4.2: BASE64URL(SHA256(verifier)) is 43 characters; allow the whole unreserved range. */
const CODE_CHALLENGE = /^[A-Za-z0-9\-._~]{43,128}$/;

/** What an authorization code will carry. */
export interface CodeParams {
  clientId: string;
  scope: string[];
  redirectUri?: string;
  codeChallenge?: string;
  nonce?: string;
}

export const invalidCredentials = () => unauthorized('Invalid login or password');

/** Checks a login (e-mail, CPF or CRM) and password; 429 while locked, 401 otherwise on failure. */
export async function checkPassword(auth: AuthServices, login: string, password: string, address: string): Promise<UserRow> {
  const user = await findAccount(auth, login);
  const keys = throttleKeys(user?.id, login, address);
  await assertNotLocked(auth, keys);
  const ok = await verifyPassword(user?.password_hash, password);
  if (!user || !ok) {
    await recordFailure(auth, keys);
    throw invalidCredentials();
  }
  await recordSuccess(auth, keys);
  if (needsRehash(user.password_hash)) await updatePasswordHash(auth.db, user.id, await hashPassword(password));
  return user;
}

/** none: sign in now; verify: ask for the OTP; enrol: the account must set up TOTP first. */
export function secondFactor(auth: AuthServices, user: UserRow): 'none' | 'verify' | 'enrol' {
  if (user.totp_secret) return 'verify';
  if (user.role === 'practitioner' && auth.settings.requirePractitionerMfa) return 'enrol';
  return 'none';
}

export async function issueCode(auth: AuthServices, user: UserRow, p: CodeParams): Promise<string> {
  const code = randomSecret();
  await insertCode(
    auth.db,
    sha256(code),
    { clientId: p.clientId, userId: user.id, redirectUri: p.redirectUri, scope: p.scope.join(' '), codeChallenge: p.codeChallenge, nonce: p.nonce, authTime: new Date() },
    CODE_TTL_SECONDS,
  );
  return code;
}

/** Starts (or restarts) TOTP enrolment: a new pending secret and its otpauth URI. */
export async function startEnrolment(auth: AuthServices, user: UserRow): Promise<{ secret: string; otpauth_uri: string }> {
  const secret = newTotpSecret();
  await setPendingTotpSecret(auth.db, user.id, secret);
  return { secret, otpauth_uri: otpauthUri(secret, user.email) };
}

/**
 * Checks a second factor for a sign-in: the OTP or a recovery code, or, during enrolment, an OTP of the new
 * secret (which confirms it and yields recovery codes). Failures count toward the account's lockout.
 */
export async function checkSecondFactor(
  auth: AuthServices,
  user: UserRow,
  value: string,
  enrolment: boolean,
  address: string,
): Promise<{ ok: boolean; recoveryCodes?: string[] }> {
  const keys = throttleKeys(user.id, '', address);
  await assertNotLocked(auth, keys);
  if (enrolment) {
    const recoveryCodes = await confirmEnrolment(auth.db, user, value);
    if (recoveryCodes) return { ok: true, recoveryCodes };
  } else if (await verifySecondFactor(auth.db, user, value)) {
    return { ok: true };
  }
  await recordFailure(auth, keys);
  return { ok: false };
}

// ---- the first-party JSON flow (CONTRACT section 4) ----

export type LoginResponse = { code: string } | { mfa_required: true; login: string; mfa_enrollment_required?: true };

interface PendingMfa {
  params: CodeParams;
  enrolment: boolean;
}

function field(body: Record<string, unknown>, name: string): string {
  const v = body[name];
  if (typeof v !== 'string' || v === '') throw badRequest(`${name} is required`, name);
  return v;
}

/** POST /auth/login: `{login, password, client_id, scope, code_challenge, code_challenge_method: "S256"}`. */
export async function firstPartyLogin(auth: AuthServices, body: Record<string, unknown>, address: string): Promise<LoginResponse> {
  const login = field(body, 'login');
  const password = field(body, 'password');
  const clientId = field(body, 'client_id');
  const scope = field(body, 'scope');
  const codeChallenge = field(body, 'code_challenge');
  if (body.code_challenge_method !== 'S256') throw badRequest('code_challenge_method must be S256', 'code_challenge_method');
  if (!CODE_CHALLENGE.test(codeChallenge)) throw badRequest('code_challenge is not a valid S256 challenge', 'code_challenge');
  if (body.nonce !== undefined && typeof body.nonce !== 'string') throw badRequest('nonce must be a string', 'nonce');
  const client = await findClient(auth.db, clientId);
  // Collecting passwords is for the project's own apps; other clients use the browser flow (OAuth 2.1 section 10.4).
  if (!client || !client.first_party) throw badRequest('This client may not use the first-party login', 'client_id');

  const user = await checkPassword(auth, login, password, address);
  const granted = grantScopes(scope, client.scope, user.role);
  if (granted.length === 0) throw badRequest('None of the requested scopes can be granted', 'scope');
  const params: CodeParams = { clientId, scope: granted, codeChallenge, nonce: body.nonce as string | undefined };
  const factor = secondFactor(auth, user);
  if (factor === 'none') return { code: await issueCode(auth, user, params) };
  const handle = randomSecret();
  await insertPending(auth.db, sha256(handle), 'mfa', { params, enrolment: factor === 'enrol' } satisfies PendingMfa, MFA_TTL_SECONDS, user.id);
  return factor === 'enrol' ? { mfa_required: true, login: handle, mfa_enrollment_required: true } : { mfa_required: true, login: handle };
}

async function pendingMfa(auth: AuthServices, handle: unknown): Promise<{ pending: PendingMfa; user: UserRow; hash: string }> {
  if (typeof handle !== 'string' || handle === '') throw badRequest('login is required', 'login');
  const hash = sha256(handle);
  const row = await findPending<PendingMfa>(auth.db, hash, 'mfa');
  const user = row?.user_id ? await findUserById(auth.db, row.user_id) : undefined;
  if (!row || !user) throw unauthorized('The sign-in has expired; sign in again');
  return { pending: row.params, user, hash };
}

/** POST /auth/mfa/enroll `{login}`: the TOTP secret for an account that must enrol before signing in. */
export async function enrolDuringLogin(auth: AuthServices, body: Record<string, unknown>): Promise<{ secret: string; otpauth_uri: string }> {
  const { pending, user } = await pendingMfa(auth, body.login);
  if (!pending.enrolment) throw badRequest('This account already has a second factor', 'login');
  return startEnrolment(auth, user);
}

/** POST /auth/mfa `{login, otp}` (or `recovery_code`) -> `{code}` (and `recovery_codes` after an enrolment). */
export async function completeMfa(auth: AuthServices, body: Record<string, unknown>, address: string): Promise<{ code: string; recovery_codes?: string[] }> {
  const { pending, user, hash } = await pendingMfa(auth, body.login);
  const value = typeof body.otp === 'string' ? body.otp : typeof body.recovery_code === 'string' ? body.recovery_code : undefined;
  if (!value) throw badRequest('otp is required', 'otp');
  const result = await checkSecondFactor(auth, user, value, pending.enrolment, address);
  if (!result.ok) {
    if ((await countPendingAttempt(auth.db, hash)) >= MAX_MFA_ATTEMPTS) await deletePending(auth.db, hash);
    throw unauthorized('Invalid one-time code');
  }
  // The sign-in is consumed once, even if two correct codes race.
  if (!(await deletePending(auth.db, hash))) throw unauthorized('The sign-in has expired; sign in again');
  const code = await issueCode(auth, user, pending.params);
  return result.recoveryCodes ? { code, recovery_codes: result.recoveryCodes } : { code };
}
