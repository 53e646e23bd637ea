/**
 * Opaque secrets the server hands out (authorization codes, refresh tokens, reset tokens, client secrets,
 * login handles) and how they are kept: only a SHA-256 hash is stored, and a presented secret is compared
 * by hash in constant time. 256 random bits make a brute-force or a precomputed table pointless.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export function randomSecret(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

export function sha256(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('base64url');
}

/** Constant-time comparison of two strings (by their hashes, so lengths leak nothing either). */
export function safeEqual(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}

/** A short, stable, non-reversible tag for logs (e.g. the recipient of a mail): never log the value itself. */
export function logTag(value: string): string {
  return createHash('sha256').update(value.toLowerCase(), 'utf8').digest('hex').slice(0, 16);
}
