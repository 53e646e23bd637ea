/**
 * One rest-hook POST (never inside a database transaction): through the agent the endpoint policy picks
 * (endpoint.ts), bounded by a timeout, no redirect followed (a 3xx is a failed delivery: following one would lead
 * the request past the policy). The answer's body is read and dropped.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Agents, CheckedEndpoint, LookupFunction } from './endpoint';
import { isFilteredAddress } from './endpoint';

export interface PostOptions {
  agents: Agents;
  timeoutMs: number;
  /** DNS lookup for the connection (tests resolve made-up names); default node:dns. */
  lookup?: LookupFunction;
}

/** Why a POST failed, in words safe to store and log: the host, a status or an error code, never the URL's path or query. */
export class PostFailed extends Error {
  override readonly name = 'PostFailed';
  constructor(
    message: string,
    /** The address was refused by the filtering agent (not a public one). */
    readonly refusedAddress = false,
  ) {
    super(message);
  }
}

/** POSTs and resolves with the HTTP status of the answer; rejects with PostFailed when no answer came. */
export function post(endpoint: CheckedEndpoint, headers: Record<string, string>, body: string, opts: PostOptions): Promise<number> {
  const { url } = endpoint;
  const host = url.host;
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  const bytes = Buffer.from(body, 'utf8');
  return new Promise<number>((resolve, reject) => {
    const req = send(url, {
      method: 'POST',
      agent: opts.agents.agentFor(endpoint),
      headers: { ...headers, 'content-length': String(bytes.length) },
      ...(opts.lookup ? { lookup: opts.lookup } : {}),
      signal: AbortSignal.timeout(opts.timeoutMs),
    });
    req.on('response', (res) => {
      // the answer's body is not needed; reading it off ends with the timeout at the latest (which destroys it)
      res.on('error', () => undefined);
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (isFilteredAddress(err)) reject(new PostFailed(`${host} resolves to an address that is not public (not in SUBSCRIPTION_ENDPOINT_ALLOWLIST)`, true));
      else if (err.name === 'AbortError' || err.name === 'TimeoutError') reject(new PostFailed(`${host} did not answer within ${opts.timeoutMs} ms`));
      else reject(new PostFailed(`could not reach ${host} (${/^[A-Z0-9_]{2,40}$/.test(err.code ?? '') ? err.code : 'connection error'})`));
    });
    req.end(bytes);
  });
}
