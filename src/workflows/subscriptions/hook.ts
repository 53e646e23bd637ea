/**
 * The rules of a Subscription (https://hl7.org/fhir/R4/subscription.html; CONTRACT section 5; issue 12), run in
 * the transaction of every write of one (src/fhir/context.ts `Workflows`).
 *
 * What a client may write: a `rest-hook` channel (other channel types: 422 not-supported); `criteria` a search
 * `Type?params` on a type the writer may search (422 / 403); `payload` absent (a notification without body) or
 * `application/fhir+json`; an endpoint the policy allows (endpoint.ts; 422 saying why); `header` lines
 * `Name: value`, none of the headers the server sets itself.
 *
 * Status is the server's ("the server is responsible for managing the status", R4 Subscription.status): a created
 * Subscription is `requested` (also when the client sent `active`), and the activation job ('subscription.activate',
 * notify.ts) makes it `active`, or `error` with `Subscription.error` saying why. A client may turn it `off`, and
 * ask again with `requested` (or `active`), e.g. after an error; changing the criteria or the channel of an active
 * one asks again too. A client never writes `error` or `Subscription.error`. The server's own status writes
 * (`byWorkflow`) pass through.
 *
 * On create the writer becomes the owner (their caller and scopes, subscription_owner): what a notification may
 * carry is decided by what the owner may read at delivery. The create's response, and it alone, carries the signing
 * secret (signing.ts) in extension SECRET_EXTENSION; a client may send its own there instead, on create or update.
 */
import type { Extension, Subscription } from '@medplum/fhirtypes';
import type { TypeHook } from '..';
import type { FhirContext, WriteEvent } from '../../fhir/context';
import { forbidden, OperationOutcomeError, outcome, unprocessable } from '../../fhir/outcomes';
import type { Queryable } from '../../storage/database';
import { enqueue } from '../outbox/enqueue';
import { criteriaType, parseSubscriptionCriteria } from './criteria';
import { checkEndpoint, EndpointRefused } from './endpoint';
import { isAcceptableSecret, newSecret, SECRET_EXTENSION } from './signing';
import { forget, keepTopic, ownerOf, recordOwner, replaceSecret } from './store';

export interface SubscriptionSettings {
  /** SUBSCRIPTION_ENDPOINT_ALLOWLIST: `host` or `host:port` that may use http and non-public addresses. */
  endpointAllowlist: readonly string[];
}

export const ACTIVATE_KIND = 'subscription.activate';
/** Attempts of an activation whose DNS lookups keep failing before the Subscription becomes `error`. */
export const ACTIVATE_MAX_ATTEMPTS = 10;

const FHIR_JSON = 'application/fhir+json';

/** Headers the server sets on every notification: a channel.header may not replace them. */
const RESERVED_HEADERS = /^(content-.*|host|connection|keep-alive|transfer-encoding|te|trailer|upgrade|expect|proxy-.*|webhook-.*)$/i;
/** A header name (an RFC 9110 token) and a value of visible ASCII, spaces and tabs (no line breaks: no header injection). */
const HEADER_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([\t\x20-\x7e]*)$/;
const MAX_HEADERS = 20;

const notSupported = (diagnostics: string, expression: string) => new OperationOutcomeError(422, outcome('error', 'not-supported', diagnostics, expression));

export function subscriptionHook(settings: SubscriptionSettings): TypeHook {
  return {
    async beforeWrite(ctx: FhirContext, q: Queryable, event: WriteEvent): Promise<void> {
      const next = event.next as Subscription | undefined;
      if (!next) {
        await forget(q, event.id);
        return;
      }
      if (!ctx.byWorkflow) await clientWrite(ctx, q, settings, event.id, event.previous as Subscription | undefined, next);
      await keepTopic(q, event.id, next, criteriaType(next.criteria));
    },
    async afterWrite(ctx: FhirContext, q: Queryable, event: WriteEvent): Promise<void> {
      // The create's answer is the one place the secret is shown (storeVersion answers with this very object).
      if (ctx.byWorkflow || event.previous || !event.next) return;
      const owner = await ownerOf(q, event.id);
      const created = event.next as Subscription;
      if (owner) created.extension = [...(created.extension ?? []), { url: SECRET_EXTENSION, valueString: owner.secret }];
    },
  };
}

async function clientWrite(ctx: FhirContext, q: Queryable, settings: SubscriptionSettings, id: string, previous: Subscription | undefined, next: Subscription): Promise<void> {
  const secret = takeSecret(next);
  checkChannel(next, settings);
  const { resourceType } = parseSubscriptionCriteria(next.criteria, { fhirBaseUrl: ctx.settings.fhirBaseUrl, limits: ctx.settings.limits });
  // A Subscription reports what its owner may search: nobody learns through one what they could not ask for.
  if (!ctx.access.can('search', resourceType)) throw forbidden(`Not allowed: search on ${resourceType} (a Subscription notifies of what its owner may search)`);
  const activate = decideStatus(previous, next);
  if (!previous) {
    await recordOwner(q, id, { caller: ctx.access.caller, scopes: [...ctx.access.scopes], secret: secret ?? newSecret() });
  } else if (secret) {
    await replaceSecret(q, id, secret);
  }
  if (activate) await enqueue(q, [{ kind: ACTIVATE_KIND, payload: { subscription: id }, maxAttempts: ACTIVATE_MAX_ATTEMPTS }]);
}

/** Removes a secret the client sent (it is never stored in the resource); undefined when it sent none. */
function takeSecret(next: Subscription): string | undefined {
  const sent = (next.extension ?? []).filter((e: Extension) => e.url === SECRET_EXTENSION);
  if (sent.length === 0) return undefined;
  next.extension = (next.extension ?? []).filter((e: Extension) => e.url !== SECRET_EXTENSION);
  if (next.extension.length === 0) delete next.extension;
  const value = sent[0].valueString;
  if (sent.length > 1 || typeof value !== 'string' || !isAcceptableSecret(value)) {
    throw unprocessable(`The ${SECRET_EXTENSION} extension takes one valueString: whsec_ and the base64 of 24 to 64 random bytes`, 'Subscription.extension');
  }
  return value;
}

function checkChannel(next: Subscription, settings: SubscriptionSettings): void {
  const channel = next.channel;
  if (channel?.type !== 'rest-hook') {
    throw notSupported(`Subscription.channel.type ${channel?.type ?? '(none)'} is not supported: this server notifies through rest-hook only`, 'Subscription.channel.type');
  }
  if (channel.payload !== undefined && channel.payload !== FHIR_JSON) {
    throw notSupported(`Subscription.channel.payload ${channel.payload} is not supported: leave it out (notifications without a body) or use ${FHIR_JSON}`, 'Subscription.channel.payload');
  }
  try {
    checkEndpoint(channel.endpoint, settings.endpointAllowlist);
  } catch (err) {
    if (err instanceof EndpointRefused) throw unprocessable(err.message, 'Subscription.channel.endpoint');
    throw err;
  }
  const headers = channel.header ?? [];
  if (headers.length > MAX_HEADERS) throw unprocessable(`Subscription.channel.header has ${headers.length} lines; at most ${MAX_HEADERS}`, 'Subscription.channel.header');
  headers.forEach((line, i) => {
    const m = HEADER_LINE.exec(line);
    const where = `Subscription.channel.header[${i}]`;
    if (!m || line.length > 4096) throw unprocessable(`${where} must be one HTTP header line, Name: value`, where);
    if (RESERVED_HEADERS.test(m[1])) throw unprocessable(`${where} sets ${m[1]}, which the server sets itself`, where);
  });
}

/**
 * Sets the status the server stores for a client's write, and tells whether the endpoint must be (re)checked:
 * `off` stays off; `error` only stays (never set by a client); `requested` and `active` are `requested`, unless it
 * was active and still is with the same criteria and channel.
 */
function decideStatus(previous: Subscription | undefined, next: Subscription): boolean {
  const was = previous?.status;
  // Not a status at all: left as it is for validation to refuse.
  if (!['requested', 'active', 'error', 'off'].includes(next.status)) return false;
  if (next.status === 'error') {
    if (was !== 'error') throw unprocessable('Subscription.status error is set by the server when notifications fail; a client sets requested or off', 'Subscription.status');
    next.error = previous?.error;
    return false;
  }
  const unchanged = was !== undefined && previous?.criteria === next.criteria && JSON.stringify(previous?.channel) === JSON.stringify(next.channel);
  if (next.status === 'off' || (next.status === 'active' && was === 'active' && unchanged)) {
    if (previous?.error) next.error = previous.error;
    else delete next.error;
    return false;
  }
  next.status = 'requested';
  delete next.error;
  return true;
}
