/**
 * Failed-login limiting (OWASP Authentication Cheat Sheet, "Protect against automated attacks"): per
 * account and per client address, state in the database so every server shares it. A login that names no
 * account is counted under a hash of what was typed, so an unknown login locks exactly as a known one does
 * (a lockout tells nothing about whether an account exists). Locked: 429 with Retry-After.
 */
import { OperationOutcomeError, outcome } from '../fhir/outcomes';
import type { AuthServices } from './context';
import { sha256 } from './secrets';
import { clearFailures, countFailure, lockedFor } from './store/throttle';

export interface ThrottleKeys {
  account: string;
  address: string;
}

export function throttleKeys(accountId: string | undefined, login: string, address: string): ThrottleKeys {
  return {
    account: accountId ? `account:${accountId}` : `login:${sha256(login.trim().toLowerCase())}`,
    address: `address:${address}`,
  };
}

export function tooManyAttempts(retryAfterSeconds: number): OperationOutcomeError {
  return new OperationOutcomeError(
    429,
    outcome('error', 'throttled', 'Too many failed sign-in attempts; try again later'),
    { 'Retry-After': String(Math.max(1, retryAfterSeconds)) },
  );
}

export async function assertNotLocked(auth: AuthServices, keys: ThrottleKeys): Promise<void> {
  const seconds = await lockedFor(auth.db, [keys.account, keys.address]);
  if (seconds > 0) throw tooManyAttempts(seconds);
}

export async function recordFailure(auth: AuthServices, keys: ThrottleKeys): Promise<void> {
  const s = auth.settings;
  await countFailure(auth.db, keys.account, s.loginMaxFailures, s.loginLockoutSeconds, s.loginLockoutSeconds);
  await countFailure(auth.db, keys.address, s.loginMaxFailuresPerAddress, s.loginLockoutSeconds, s.loginLockoutSeconds);
}

/** A good login clears the account's count (not the address's: one valid account must not reset it). */
export async function recordSuccess(auth: AuthServices, keys: ThrottleKeys): Promise<void> {
  await clearFailures(auth.db, keys.account);
}
