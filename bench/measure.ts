/** One autocannon measurement of one scenario against one server, with our own latency percentiles. */
import autocannon from 'autocannon';
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

export function measure(
  scenario: Scenario,
  target: Target,
  data: BenchData,
  connections: number,
  duration: number,
): Promise<Measurement> {
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
