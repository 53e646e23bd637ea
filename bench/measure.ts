/**
 * One measurement of one scenario against one server, with our own latency percentiles: closed loop with
 * autocannon (each connection sends its next request when the previous answer arrives), or, given a rate,
 * open loop at that rate (see `atRate`).
 */
import { Agent, request, type OutgoingHttpHeaders } from 'node:http';
import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';
import { random } from './patients';
import type { BenchData, RequestSpec, Scenario, Target } from './scenarios';

export interface Measurement {
  requestsPerSecond: number;
  p50: number;
  p95: number;
  p99: number;
  non2xx: number;
  errors: number;
  total: number;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** Sends one request of the scenario with fetch; returns its status, or a description of what went wrong. */
export async function probe(scenario: Scenario, target: Target, data: BenchData): Promise<string | undefined> {
  const spec = scenario.requests(target, data)();
  try {
    const response = await fetch(target.origin + spec.path, {
      method: spec.method,
      headers: { ...(spec.headers as Record<string, string>), ...target.headers },
      body: spec.body,
    });
    const text = await response.text();
    if (response.status === scenario.expectStatus) return undefined;
    return `${spec.method} ${spec.path} -> ${response.status} (expected ${scenario.expectStatus}): ${text.slice(0, 300)}`;
  } catch (err) {
    return `${spec.method} ${spec.path} failed: ${(err as Error).message}`;
  }
}

/**
 * Without `rate`: as many requests as `connections` connections get answered in `duration` seconds.
 * With `rate` (requests per second, all connections together): requests arrive at that rate whatever the
 * server does, over at most `connections` connections; see `atRate`.
 */
export function measure(
  scenario: Scenario,
  target: Target,
  data: BenchData,
  connections: number,
  duration: number,
  rate?: number,
): Promise<Measurement> {
  if (rate !== undefined) return atRate(scenario, target, data, connections, duration, rate);
  const next = scenario.requests(target, data);
  const latencies: number[] = [];
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: target.origin,
        connections,
        duration,
        timeout: 30,
        requests: [
          {
            setupRequest: (request) => {
              const spec: RequestSpec = next();
              return { ...request, ...spec, headers: { ...request.headers, ...spec.headers, ...target.headers } };
            },
          },
        ],
      },
      (err, result) => {
        if (err) return reject(err);
        const sorted = Float64Array.from(latencies).sort();
        resolve({
          requestsPerSecond: result.requests.total / result.duration,
          p50: percentile(sorted, 50),
          p95: percentile(sorted, 95),
          p99: percentile(sorted, 99),
          non2xx: result.non2xx,
          errors: result.errors,
          total: result.requests.total,
        });
      },
    );
    instance.on('response', (_client: unknown, _status: number, _bytes: number, responseTime: number) => {
      latencies.push(responseTime);
    });
  });
}

/**
 * Open loop: rate x duration requests arrive at random times (a Poisson process given its count, from a
 * fixed seed, so both servers get the same arrival times and the same requests), sent over up to
 * `connections` keep-alive connections; when all are busy a request waits for one, and that wait counts in
 * its latency. Random arrivals, not evenly spaced ones: users do not take turns.
 *
 * Not autocannon's `overallRate`: autocannon gives each connection a budget of rate/connections requests per
 * second, which it spends back to back at the start of every second (every connection's second starting
 * together), then idles. At half the server's capacity that is full saturation for half of each second and
 * nothing the other half, so its latencies are those of a saturated server.
 */
function atRate(
  scenario: Scenario,
  target: Target,
  data: BenchData,
  connections: number,
  duration: number,
  rate: number,
): Promise<Measurement> {
  const next = scenario.requests(target, data);
  const { hostname, port } = new URL(target.origin);
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const rand = random(20_240_601);
  const arrivals = Float64Array.from({ length: Math.max(1, Math.round(rate * duration)) }, () => rand() * duration * 1000).sort();
  let arrived = 0;
  const latencies: number[] = [];
  let non2xx = 0;
  let errors = 0;
  let outstanding = 0;
  let scheduling = true;
  const start = performance.now();
  const end = start + duration * 1000;
  let last = start;

  return new Promise((resolve) => {
    const finish = (): void => {
      agent.destroy();
      const sorted = Float64Array.from(latencies).sort();
      resolve({
        // Answers per second, over the measurement or until the last answer if that came later.
        requestsPerSecond: latencies.length / (Math.max(end, last) - start) * 1000,
        p50: percentile(sorted, 50),
        p95: percentile(sorted, 95),
        p99: percentile(sorted, 99),
        non2xx,
        errors,
        total: latencies.length,
      });
    };
    const send = (): void => {
      const spec: RequestSpec = next();
      const headers: OutgoingHttpHeaders = { ...spec.headers, ...target.headers };
      if (spec.body !== undefined) headers['content-length'] = Buffer.byteLength(spec.body);
      const sent = performance.now();
      outstanding++;
      let settled = false;
      const settle = (status?: number): void => {
        if (settled) return;
        settled = true;
        last = performance.now();
        if (status === undefined) errors++;
        else {
          latencies.push(last - sent);
          if (status < 200 || status > 299) non2xx++;
        }
        if (--outstanding === 0 && !scheduling) finish();
      };
      const req = request({ agent, host: hostname, port, method: spec.method, path: spec.path, headers, timeout: 30_000 }, (res) => {
        res.on('error', () => settle());
        res.on('end', () => settle(res.statusCode ?? 0));
        res.resume();
      });
      req.on('timeout', () => req.destroy(new Error('request timed out')));
      req.on('error', () => settle());
      req.end(spec.body);
    };
    const tick = (): void => {
      const now = performance.now();
      // Timers fire late by a millisecond or so: send what is due, then wait for the next arrival.
      while (arrived < arrivals.length && start + arrivals[arrived] <= now) {
        send();
        arrived++;
      }
      if (arrived < arrivals.length) {
        setTimeout(tick, start + arrivals[arrived] - performance.now());
        return;
      }
      scheduling = false;
      if (outstanding === 0) finish();
    };
    tick();
  });
}
