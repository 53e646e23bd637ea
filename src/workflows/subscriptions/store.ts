/**
 * The rows the server keeps beside each Subscription (migrations/0009_subscriptions.sql): its owner and secret
 * (subscription_owner), and, while it is requested or active, the resource type it watches (subscription_topic,
 * which the history trigger reads to decide which writes are events).
 */
import type { Subscription } from '@medplum/fhirtypes';
import type { Caller } from '../../access/context';
import type { Queryable } from '../../storage/database';

export interface Owner {
  caller: Caller;
  scopes: string[];
  secret: string;
}

export async function recordOwner(q: Queryable, subscriptionId: string, owner: Owner): Promise<void> {
  await q.query(
    `INSERT INTO subscription_owner (subscription_id, caller, scopes, secret) VALUES ($1, $2::jsonb, $3::text[], $4)
     ON CONFLICT (subscription_id) DO UPDATE SET caller = EXCLUDED.caller, scopes = EXCLUDED.scopes, secret = EXCLUDED.secret, created_at = now()`,
    [subscriptionId, JSON.stringify(owner.caller), owner.scopes, owner.secret],
  );
}

export async function replaceSecret(q: Queryable, subscriptionId: string, secret: string): Promise<void> {
  await q.query('UPDATE subscription_owner SET secret = $2 WHERE subscription_id = $1', [subscriptionId, secret]);
}

export async function ownerOf(q: Queryable, subscriptionId: string): Promise<Owner | undefined> {
  const r = await q.query<{ caller: Caller | string; scopes: string[]; secret: string }>(
    'SELECT caller, scopes, secret FROM subscription_owner WHERE subscription_id = $1',
    [subscriptionId],
  );
  const row = r.rows[0];
  if (!row) return undefined;
  return { caller: typeof row.caller === 'string' ? (JSON.parse(row.caller) as Caller) : row.caller, scopes: row.scopes, secret: row.secret };
}

/** A deleted Subscription leaves nothing behind. */
export async function forget(q: Queryable, subscriptionId: string): Promise<void> {
  await q.query('DELETE FROM subscription_topic WHERE subscription_id = $1', [subscriptionId]);
  await q.query('DELETE FROM subscription_owner WHERE subscription_id = $1', [subscriptionId]);
}

/** Statuses whose Subscriptions make events: requested ones too, so that nothing written while activation runs is missed. */
const WATCHING = new Set(['requested', 'active']);

/** Keeps subscription_topic in step with the Subscription about to be stored. */
export async function keepTopic(q: Queryable, subscriptionId: string, subscription: Subscription, resourceType: string | undefined): Promise<void> {
  if (resourceType && WATCHING.has(subscription.status ?? '')) {
    await q.query(
      `INSERT INTO subscription_topic (subscription_id, resource_type) VALUES ($1, $2)
       ON CONFLICT (subscription_id) DO UPDATE SET resource_type = EXCLUDED.resource_type`,
      [subscriptionId, resourceType],
    );
  } else {
    await q.query('DELETE FROM subscription_topic WHERE subscription_id = $1', [subscriptionId]);
  }
}

export interface Watcher {
  id: string;
  subscription: Subscription;
  owner: Owner;
}

/** The live Subscriptions watching a type (requested or active, with their owner). */
export async function watchersOf(q: Queryable, resourceType: string): Promise<Watcher[]> {
  const r = await q.query<{ id: string; content: Subscription | string; caller: Caller | string; scopes: string[]; secret: string }>(
    `SELECT r.id, r.content, o.caller, o.scopes, o.secret
       FROM subscription_topic t
       JOIN resources r ON r.resource_type = 'Subscription' AND r.id = t.subscription_id AND NOT r.deleted
       JOIN subscription_owner o ON o.subscription_id = t.subscription_id
      WHERE t.resource_type = $1`,
    [resourceType],
  );
  return r.rows.map((row) => ({
    id: row.id,
    subscription: typeof row.content === 'string' ? (JSON.parse(row.content) as Subscription) : row.content,
    owner: {
      caller: typeof row.caller === 'string' ? (JSON.parse(row.caller) as Caller) : row.caller,
      scopes: row.scopes,
      secret: row.secret,
    },
  }));
}
