/**
 * Where a rest-hook may point (CONTRACT section 1, SUBSCRIPTION_ENDPOINT_ALLOWLIST; issue 12): `https` to a public
 * address, or a host the operator listed (`host` or `host:port`), which may then use plain `http` and loopback or
 * private addresses. The server would otherwise POST wherever a client asks: to its own metadata service
 * (169.254.169.254), its database, an admin port on localhost (server-side request forgery). Checked three times:
 *
 * 1. on every client write of a Subscription (`checkEndpoint`, no network, so nothing waits inside the write's
 *    transaction): the scheme, no credentials in the URL, IP literals outside public unicast space, and names that
 *    are local by definition (`localhost`, single labels, `.local`, `.internal`, `.home.arpa`);
 * 2. when the server activates it (`assertResolvesPublicly`): every address the name resolves to must be public;
 * 3. at every connection (`agentFor`): request-filtering-agent judges the address the socket really connects to,
 *    after DNS resolution, so a name that resolved publicly at activation and resolves to 127.0.0.1 later (DNS
 *    rebinding) is still refused.
 * Public means what both this module and the agent call it: ipaddr.js's `unicast` range, nothing reserved.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import ipaddr from 'ipaddr.js';

// request-filtering-agent 3 ships ES modules only: Node >= 20.19 require()s them natively (what production
// runs), and through Node's own require Jest's module registry, which cannot, is not involved.
const filtering = process.getBuiltinModule('node:module').createRequire(__filename)('request-filtering-agent') as typeof import('request-filtering-agent');

/** A refused endpoint; the message says why and is safe to show and log (it names at most the host). */
export class EndpointRefused extends Error {
  override readonly name = 'EndpointRefused';
}

export interface CheckedEndpoint {
  url: URL;
  /** The host is in SUBSCRIPTION_ENDPOINT_ALLOWLIST: plain http and non-public addresses are allowed. */
  allowListed: boolean;
}

const LOCAL_SUFFIXES = ['.localhost', '.local', '.internal', '.home.arpa'];

/** The host without IPv6 brackets, lowercased. */
const bareHost = (url: URL) => url.hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();

function effectivePort(url: URL): string {
  return url.port || (url.protocol === 'https:' ? '443' : '80');
}

/** Whether the allow-list names the endpoint's host, or its host and port. */
export function isAllowListed(url: URL, allowlist: readonly string[]): boolean {
  const host = url.hostname.toLowerCase();
  const candidates = new Set([host, bareHost(url), `${host}:${effectivePort(url)}`]);
  return allowlist.some((entry) => candidates.has(entry.toLowerCase()));
}

/** ipaddr.js's range of an IP literal ("unicast" = public), or undefined for a name. */
function ipRange(host: string): string | undefined {
  return ipaddr.isValid(host) ? ipaddr.parse(host).range() : undefined;
}

/** ipaddr.js's range names in words. */
const RANGE_WORDS: Record<string, string> = {
  linkLocal: 'link-local',
  uniqueLocal: 'unique local',
  carrierGradeNat: 'carrier-grade NAT',
  ipv4Mapped: 'IPv4-mapped',
};
const rangeWords = (range: string) => RANGE_WORDS[range] ?? range;
const ALLOWED_ONLY_LISTED = 'allowed only for hosts in SUBSCRIPTION_ENDPOINT_ALLOWLIST';

/**
 * The write-time policy (1 above): throws EndpointRefused with a message for the client, else the parsed URL and
 * whether its host is allow-listed.
 */
export function checkEndpoint(endpoint: unknown, allowlist: readonly string[]): CheckedEndpoint {
  if (typeof endpoint !== 'string' || endpoint === '') throw new EndpointRefused('Subscription.channel.endpoint is required for a rest-hook');
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new EndpointRefused('Subscription.channel.endpoint must be an absolute http(s) URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new EndpointRefused('Subscription.channel.endpoint must be an absolute http(s) URL');
  // Anyone who may read the Subscription would see them: credentials go in Subscription.channel.header.
  if (url.username || url.password) throw new EndpointRefused('Subscription.channel.endpoint must not carry credentials: send them in Subscription.channel.header');
  const allowListed = isAllowListed(url, allowlist);
  if (allowListed) return { url, allowListed };
  const host = bareHost(url);
  if (url.protocol !== 'https:') {
    throw new EndpointRefused(`Subscription.channel.endpoint must use https (plain http only for hosts in SUBSCRIPTION_ENDPOINT_ALLOWLIST; ${host} is not)`);
  }
  const range = ipRange(host);
  if (range !== undefined && range !== 'unicast') {
    throw new EndpointRefused(`Subscription.channel.endpoint ${host} is not a public address (${rangeWords(range)}; ${ALLOWED_ONLY_LISTED})`);
  }
  if (range === undefined && (host === 'localhost' || !host.includes('.') || LOCAL_SUFFIXES.some((s) => host.endsWith(s)))) {
    throw new EndpointRefused(`Subscription.channel.endpoint ${host} is a local host name, not a public one (${ALLOWED_ONLY_LISTED})`);
  }
  return { url, allowListed };
}

/** node:dns `lookup` with `{ all: true }`, or a stand-in (tests resolve made-up names). */
export type LookupFunction = typeof dnsLookup;

/** A DNS failure that may pass (the resolver timed out or was unreachable), as opposed to a name that does not exist. */
export class TransientLookupError extends Error {
  override readonly name = 'TransientLookupError';
}

/** Activation (2 above): every address the endpoint's name resolves to must be public. */
export async function assertResolvesPublicly(url: URL, lookup: LookupFunction = dnsLookup): Promise<void> {
  const host = bareHost(url);
  if (ipRange(host) !== undefined) return; // a literal: judged by checkEndpoint
  const addresses = await new Promise<LookupAddress[]>((resolve, reject) =>
    lookup(host, { all: true }, (err, found) => (err ? reject(err) : resolve(found as LookupAddress[]))),
  ).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOTFOUND' || err.code === 'ENODATA') throw new EndpointRefused(`Subscription.channel.endpoint ${host} does not resolve`);
    throw new TransientLookupError(`could not resolve ${host} (${err.code ?? 'error'})`);
  });
  const local = addresses.find((a) => ipRange(a.address) !== 'unicast');
  if (addresses.length === 0) throw new EndpointRefused(`Subscription.channel.endpoint ${host} does not resolve`);
  if (local) {
    const range = rangeWords(ipRange(local.address) ?? 'unknown');
    throw new EndpointRefused(`Subscription.channel.endpoint ${host} resolves to ${local.address}, not a public address (${range}; ${ALLOWED_ONLY_LISTED})`);
  }
}

/** The agents deliveries use: filtering ones for every host not allow-listed (3 above), plain ones for the others. */
export interface Agents {
  agentFor(endpoint: CheckedEndpoint): HttpAgent;
}

export function createAgents(): Agents {
  const filteringHttp = new filtering.RequestFilteringHttpAgent();
  const filteringHttps = new filtering.RequestFilteringHttpsAgent();
  const plainHttp = new HttpAgent();
  const plainHttps = new HttpsAgent();
  return {
    agentFor: ({ url, allowListed }) => {
      const https = url.protocol === 'https:';
      if (allowListed) return https ? plainHttps : plainHttp;
      return https ? filteringHttps : filteringHttp;
    },
  };
}

/** Whether a connection failed because request-filtering-agent refused the address (it has no error code of its own). */
export function isFilteredAddress(err: unknown): boolean {
  // not `instanceof Error`: the agent may live in another realm than its caller (Jest's sandbox)
  const message = (err as { message?: unknown } | null)?.message;
  return typeof message === 'string' && /^DNS lookup .* is not allowed/.test(message);
}
