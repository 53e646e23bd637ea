/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com/, the `standardwebhooks` package) on every
 * rest-hook POST: `webhook-id`, `webhook-timestamp` and `webhook-signature` = `v1,` base64 HMAC-SHA256 of
 * `<id>.<timestamp>.<body>` under the Subscription's secret. A receiver that checks the signature and refuses
 * timestamps older than a few minutes (the package's `verify` does both) cannot be fed a forged or a replayed
 * notification; the id stays the same on every retry of one notification, so it can also drop duplicates.
 *
 * The secret: 32 random bytes as `whsec_<base64>`, made when the Subscription is created and shown to its owner
 * once, in the create's response (extension SECRET_EXTENSION); or chosen by the client, sent in that extension on
 * a create or an update (rotation). It is never part of the stored resource, its history or any read: it lives in
 * subscription_owner (migrations/0009_subscriptions.sql), readable by the server alone.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';

export const SECRET_EXTENSION = 'http://fhir.healthmed.com.br/StructureDefinition/subscription-secret';

const PREFIX = 'whsec_';

export function newSecret(): string {
  return `${PREFIX}${randomBytes(32).toString('base64')}`;
}

/** A client-chosen secret: `whsec_` and the base64 of 24 to 64 bytes (Standard Webhooks asks for 24 to 64). */
export function isAcceptableSecret(secret: string): boolean {
  const m = /^whsec_([A-Za-z0-9+/]+={0,2})$/.exec(secret);
  if (!m) return false;
  const bytes = Buffer.from(m[1], 'base64').length;
  return bytes >= 24 && bytes <= 64;
}

/**
 * The notification's id, the same on every retry: derived from the Subscription and the version it is about, so
 * a notification enqueued twice (an event processed again after a crash) also carries one id. A hash, so that
 * an empty notification names no resource.
 */
export function messageId(subscription: string, type: string, id: string, version: number): string {
  return `msg_${createHash('sha256').update(`${subscription}\n${type}/${id}/_history/${version}`).digest('base64url').slice(0, 32)}`;
}

/** The three signature headers for one attempt (a new timestamp each time). */
export function signatureHeaders(secret: string, msgId: string, body: string, now = new Date()): Record<string, string> {
  return {
    'webhook-id': msgId,
    'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
    'webhook-signature': new Webhook(secret).sign(msgId, now, body),
  };
}
