/**
 * The outbox handlers of Subscriptions (src/workflows/outbox/worker.ts runs them, outside any transaction):
 *
 * | kind                    | payload                                 | written by                                   |
 * | ----------------------- | --------------------------------------- | -------------------------------------------- |
 * | `subscription.activate` | `{ subscription }`                      | the Subscription workflow (hook.ts)          |
 * | `subscription.event`    | `{ type, id, version }`                 | the history trigger (0009_subscriptions.sql) |
 * | `subscription.notify`   | `{ subscription, type, id, version }`   | `subscription.event`, one per match          |
 *
 * - activate: a `requested` Subscription whose endpoint passes the policy and resolves to public addresses only
 *   (unless allow-listed) becomes `active`; otherwise `error`, with `Subscription.error` saying why.
 * - event: finds the active Subscriptions watching the type whose criteria the version matches, searched under each
 *   owner's access as it is now, and enqueues one notify row per match, so each endpoint is retried on its own. A
 *   version that is no longer the current one is skipped: the version that replaced it is an event of its own.
 * - notify: POSTs to the endpoint while the Subscription is still active (`off`, `error`, deleted or past its `end`:
 *   dropped): no body when `channel.payload` is absent; with `application/fhir+json`, the version as JSON if the
 *   owner may still read it, else no body either. Each `channel.header` line is sent, and the Standard Webhooks
 *   signature (signing.ts). Retries back off per NOTIFY_RETRY_MS, over more than 72 hours; when the last attempt
 *   fails, or the endpoint's address is refused at connect time (not public), the Subscription becomes `error`.
 *
 * Payloads hold ids only. Logs and stored errors name the endpoint's host at most, never its path, query or a body.
 */
import type { Subscription } from '@medplum/fhirtypes';
import { accessForGrant } from '../../access/fromToken';
import type { AccessContext } from '../../access/context';
import { findVisible } from '../../access/visible';
import type { FhirServices } from '../../fhir/context';
import { logger } from '../../logger';
import { readCurrent, readVersion } from '../../storage/repository';
import { enqueue, type OutboxRow } from '../outbox/enqueue';
import { DeliveryError, type OutboxHandlers, type OutboxJob } from '../outbox/worker';
import { matchesCriteria, parseSubscriptionCriteria } from './criteria';
import { assertResolvesPublicly, checkEndpoint, createAgents, EndpointRefused, TransientLookupError, type CheckedEndpoint, type LookupFunction } from './endpoint';
import { ACTIVATE_KIND, ACTIVATE_MAX_ATTEMPTS, type SubscriptionSettings } from './hook';
import { post, PostFailed } from './post';
import { messageId, signatureHeaders } from './signing';
import { changeStatus } from './status';
import { ownerOf, watchersOf, type Owner } from './store';

export const EVENT_KIND = 'subscription.event';
export const NOTIFY_KIND = 'subscription.notify';
export const SUBSCRIPTION_KINDS = [ACTIVATE_KIND, EVENT_KIND, NOTIFY_KIND] as const;

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

/**
 * Delay after the n-th failed attempt of a notification: 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 2 h, 4 h, 8 h, then
 * 12 h five times. 15 attempts over at least 75 h 42 min (each delay is stretched by up to 10%, so that
 * notifications that failed together spread out), before the Subscription becomes `error` (issue 12: "at least
 * 72 hours").
 */
export const NOTIFY_RETRY_MS = [5 * SECOND, 30 * SECOND, 2 * MINUTE, 10 * MINUTE, 30 * MINUTE, HOUR, 2 * HOUR, 4 * HOUR, 8 * HOUR, 12 * HOUR, 12 * HOUR, 12 * HOUR, 12 * HOUR, 12 * HOUR];
export const NOTIFY_MAX_ATTEMPTS = NOTIFY_RETRY_MS.length + 1;

export function notifyBackoffMs(attempt: number): number {
  const base = NOTIFY_RETRY_MS[Math.min(Math.max(attempt, 1), NOTIFY_RETRY_MS.length) - 1];
  return base * (1 + Math.random() * 0.1);
}

export interface SubscriptionDelivery {
  /** The FHIR services of the app: the status writes go through storeVersion. */
  services: FhirServices;
  settings: SubscriptionSettings;
  /** Per request (default 10 s). */
  timeoutMs?: number;
  /** DNS lookup for activation checks and connections; default node:dns (tests resolve made-up names). */
  lookup?: LookupFunction;
  /** Tests: fewer attempts and shorter delays than production's. */
  notifyMaxAttempts?: number;
  notifyBackoffMs?(attempt: number): number;
}

const FHIR_JSON = 'application/fhir+json';
const USER_AGENT = 'healthmed-fhir-server (FHIR R4 rest-hook)';

/** The handlers to give the outbox worker, each kind with its retry policy. */
export function subscriptionHandlers(opts: SubscriptionDelivery): OutboxHandlers {
  const { services } = opts;
  const { db } = services;
  const fhirBaseUrl = services.settings.fhirBaseUrl;
  const criteriaOptions = { fhirBaseUrl, limits: services.settings.limits };
  const allowlist = opts.settings.endpointAllowlist;
  const timeoutMs = opts.timeoutMs ?? 10 * SECOND;
  const maxAttempts = opts.notifyMaxAttempts ?? NOTIFY_MAX_ATTEMPTS;
  const agents = createAgents();

  const accessOf = (owner: Owner): Promise<AccessContext> => accessForGrant(db, { caller: owner.caller, scopes: owner.scopes }, fhirBaseUrl);

  async function activate(payload: Record<string, unknown>, job: OutboxJob): Promise<void> {
    const id = text(payload.subscription, 'subscription');
    const subscription = await currentSubscription(id);
    if (subscription?.status !== 'requested') return;
    let problem: string | undefined;
    try {
      const endpoint = checkEndpoint(subscription.channel?.endpoint, allowlist);
      if (!endpoint.allowListed) await assertResolvesPublicly(endpoint.url, opts.lookup);
    } catch (err) {
      if (err instanceof EndpointRefused) problem = err.message;
      else if (err instanceof TransientLookupError && job.attempts >= ACTIVATE_MAX_ATTEMPTS) problem = `Subscription.channel.endpoint: ${err.message}`;
      else if (err instanceof TransientLookupError) throw new DeliveryError(err.message);
      else throw err;
    }
    await changeStatus(services, id, 'requested', problem ? 'error' : 'active', { error: problem, endpoint: subscription.channel?.endpoint ?? '' });
  }

  async function event(payload: Record<string, unknown>): Promise<void> {
    const type = text(payload.type, 'type');
    const id = text(payload.id, 'id');
    const version = Number(payload.version);
    const current = await readCurrent(db, type, id);
    if (!current || current.deleted || current.versionId !== version) return;
    const rows: OutboxRow[] = [];
    for (const watcher of await watchersOf(db, type)) {
      if (!isLive(watcher.subscription)) continue;
      try {
        const criteria = parseSubscriptionCriteria(watcher.subscription.criteria, criteriaOptions);
        if (criteria.resourceType !== type) continue;
        if (!(await matchesCriteria(db, criteria, id, await accessOf(watcher.owner), criteriaOptions))) continue;
      } catch (err) {
        // A criteria that no longer parses (a search parameter removed since): it matches nothing.
        logger.warn({ subscription: watcher.id, err: err instanceof Error ? err.name : 'error' }, 'subscription: criteria could not be evaluated');
        continue;
      }
      rows.push({ kind: NOTIFY_KIND, payload: { subscription: watcher.id, type, id, version }, maxAttempts });
    }
    await enqueue(db, rows);
  }

  /** The body of a notification with a payload: the version, if the owner may still read the resource. */
  async function content(owner: Owner, type: string, id: string, version: number): Promise<string> {
    const access = await accessOf(owner);
    if (!access.can('read', type)) return '';
    const visible = await findVisible(access, db, 'read', type, id, { fhirBaseUrl });
    if (!visible || visible.deleted) return '';
    const v = visible.versionId === version ? visible : await readVersion(db, type, id, version);
    return v?.resource && access.can('read', type, v.resource) ? JSON.stringify(v.resource) : '';
  }

  async function notify(payload: Record<string, unknown>, job: OutboxJob): Promise<void> {
    const subscriptionId = text(payload.subscription, 'subscription');
    const type = text(payload.type, 'type');
    const id = text(payload.id, 'id');
    const version = Number(payload.version);
    const subscription = await currentSubscription(subscriptionId);
    if (!subscription || !isLive(subscription)) return;
    const owner = await ownerOf(db, subscriptionId);
    if (!owner) return;
    let endpoint: CheckedEndpoint;
    try {
      endpoint = checkEndpoint(subscription.channel?.endpoint, allowlist);
    } catch (err) {
      // The allow-list changed since the Subscription was written.
      if (err instanceof EndpointRefused) return giveUp(subscriptionId, err.message);
      throw err;
    }
    const body = subscription.channel?.payload === FHIR_JSON ? await content(owner, type, id, version) : '';
    const headers: Record<string, string> = { ...channelHeaders(subscription), 'user-agent': USER_AGENT };
    if (body) headers['content-type'] = FHIR_JSON;
    Object.assign(headers, signatureHeaders(owner.secret, messageId(subscriptionId, type, id, version), body));
    let failure: string;
    try {
      const status = await post(endpoint, headers, body, { agents, timeoutMs, lookup: opts.lookup });
      if (status >= 200 && status < 300) return;
      failure = `${endpoint.url.host} answered HTTP ${status}`;
    } catch (err) {
      if (!(err instanceof PostFailed)) throw err;
      if (err.refusedAddress) return giveUp(subscriptionId, `Subscription.channel.endpoint: ${err.message}`);
      failure = err.message;
    }
    if (job.attempts >= maxAttempts) {
      return giveUp(subscriptionId, `${job.attempts} attempts to deliver a notification failed; the last: ${failure}`);
    }
    throw new DeliveryError(failure);
  }

  /** The Subscription becomes `error` (no more notifications until its owner asks again), and this row is dead. */
  async function giveUp(subscriptionId: string, reason: string): Promise<never> {
    await changeStatus(services, subscriptionId, 'active', 'error', { error: reason });
    throw new DeliveryError(reason, { permanent: true });
  }

  async function currentSubscription(id: string): Promise<Subscription | undefined> {
    const current = await readCurrent(db, 'Subscription', id);
    return current && !current.deleted ? (current.resource as Subscription) : undefined;
  }

  return {
    [ACTIVATE_KIND]: { handle: activate },
    [EVENT_KIND]: { handle: event },
    [NOTIFY_KIND]: { handle: notify, backoffMs: opts.notifyBackoffMs ?? notifyBackoffMs },
  };
}

/** Active, and not past its `end` ("the time for the server to turn the subscription off"). */
function isLive(subscription: Subscription): boolean {
  if (subscription.status !== 'active') return false;
  return !subscription.end || Date.parse(subscription.end) > Date.now();
}

/** `channel.header` lines as headers (checked on write: `Name: value`, none the server sets). */
function channelHeaders(subscription: Subscription): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const line of subscription.channel?.header ?? []) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return headers;
}

function text(value: unknown, name: string): string {
  if (typeof value !== 'string' || value === '') throw new DeliveryError(`payload without ${name}`, { permanent: true });
  return value;
}
