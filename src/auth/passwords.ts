/**
 * Password hashing with argon2id (RFC 9106) through the `argon2` package (node-argon2: the reference C
 * implementation, prebuilt binaries shipped in the npm package). Its defaults (64 MiB, t=3, p=4) are above
 * the OWASP minimums. A login for an account that does not exist verifies against a dummy hash made with
 * the same parameters, so both cost the same (no account enumeration by timing).
 */
import argon2 from 'argon2';
import { badRequest } from '../fhir/outcomes';

/** CONTRACT section 4: fewer than 10 characters is weak. The upper bound keeps hashing cost bounded. */
export const MIN_PASSWORD_LENGTH = 10;
const MAX_PASSWORD_LENGTH = 1024;

const OPTIONS = { type: argon2.argon2id } as const;

let dummy: Promise<string> | undefined;

/** Makes the dummy hash ahead of the first unknown login (so that login costs what a known one does). */
export function prepareDummyHash(): Promise<string> {
  dummy ??= argon2.hash(`dummy-${Math.random()}`, OPTIONS);
  return dummy;
}

export function assertStrongPassword(password: unknown, field = 'password'): asserts password is string {
  if (typeof password !== 'string' || [...password].length < MIN_PASSWORD_LENGTH) {
    throw badRequest(`The password must have at least ${MIN_PASSWORD_LENGTH} characters`, field);
  }
  if (password.length > MAX_PASSWORD_LENGTH) throw badRequest(`The password must have at most ${MAX_PASSWORD_LENGTH} characters`, field);
  if (password.trim() === '') throw badRequest('The password must not be blank', field);
}

export function hashPassword(password: string): Promise<string> {
  return argon2.hash(password, OPTIONS);
}

/** Verifies a password; with no hash (unknown account) it spends the same work on a dummy and fails. */
export async function verifyPassword(hash: string | undefined, password: string): Promise<boolean> {
  const bounded = password.slice(0, MAX_PASSWORD_LENGTH);
  if (hash === undefined) {
    await argon2.verify(await prepareDummyHash(), bounded).catch(() => false);
    return false;
  }
  try {
    return await argon2.verify(hash, bounded);
  } catch {
    return false;
  }
}

/** True when a stored hash was made with other parameters than today's (rehash it after a good login). */
export function needsRehash(hash: string): boolean {
  try {
    return argon2.needsRehash(hash);
  } catch {
    return false;
  }
}
