/**
 * The optional second factor: TOTP (RFC 6238: HMAC-SHA1, 6 digits, 30-second steps, one step of clock
 * drift either way) through the `otpauth` package, and single-use recovery codes. An OTP is accepted once:
 * the last used time step is stored and a code for that step or an earlier one is refused (RFC 6238
 * section 5.2).
 */
import { randomInt } from 'node:crypto';
import { Secret, TOTP } from 'otpauth';
import type { Queryable } from '../storage/database';
import { sha256 } from './secrets';
import { activateTotp, replaceRecoveryCodes, useRecoveryCode, useTotpStep, type UserRow } from './store/users';

const ISSUER = 'Health&Med';
const PERIOD = 30;
const RECOVERY_CODES = 10;
/** Recovery codes are printed for people: no 0/O, 1/I/L. */
const RECOVERY_ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';

function totp(secret: string, label = ''): TOTP {
  return new TOTP({ issuer: ISSUER, label, algorithm: 'SHA1', digits: 6, period: PERIOD, secret: Secret.fromBase32(secret) });
}

export function newTotpSecret(): string {
  return new Secret({ size: 20 }).base32;
}

/** The `otpauth://` URI an authenticator app imports (as a QR code or typed in). */
export function otpauthUri(secret: string, label: string): string {
  return totp(secret, label).toString();
}

/** The time step an OTP matches (within one step of drift), or undefined. */
export function matchTotp(secret: string, otp: string): number | undefined {
  const token = otp.replace(/\s+/g, '');
  if (!/^\d{6}$/.test(token)) return undefined;
  const delta = totp(secret).validate({ token, window: 1 });
  return delta === null ? undefined : Math.floor(Date.now() / 1000 / PERIOD) + delta;
}

function normalizeRecoveryCode(code: string): string {
  return code.toUpperCase().replace(/[^A-Z0-9]/g, '');
}

export function newRecoveryCodes(): string[] {
  const codes: string[] = [];
  for (let i = 0; i < RECOVERY_CODES; i++) {
    const chars = Array.from({ length: 10 }, () => RECOVERY_ALPHABET[randomInt(RECOVERY_ALPHABET.length)]).join('');
    codes.push(`${chars.slice(0, 5)}-${chars.slice(5)}`);
  }
  return codes;
}

/**
 * Checks a second factor of an enrolled user: an OTP (once per time step) or an unused recovery code
 * (`XXXXX-XXXXX`, spent by its use).
 */
export async function verifySecondFactor(q: Queryable, user: UserRow, value: string): Promise<boolean> {
  if (!user.totp_secret) return false;
  const step = matchTotp(user.totp_secret, value);
  if (step !== undefined) return useTotpStep(q, user.id, step);
  const recovery = normalizeRecoveryCode(value);
  if (recovery.length !== 10) return false;
  return useRecoveryCode(q, user.id, sha256(recovery));
}

/** Confirms a pending enrolment with an OTP from the new secret; returns fresh recovery codes, or undefined. */
export async function confirmEnrolment(q: Queryable, user: UserRow, otp: string): Promise<string[] | undefined> {
  if (!user.totp_pending_secret) return undefined;
  const step = matchTotp(user.totp_pending_secret, otp);
  if (step === undefined || !(await activateTotp(q, user.id, step))) return undefined;
  const codes = newRecoveryCodes();
  await replaceRecoveryCodes(q, user.id, codes.map((c) => sha256(normalizeRecoveryCode(c))));
  return codes;
}
