/**
 * Before measuring a search, check that both servers answer the same questions with the same resources:
 * a ratio means nothing if ours returns less (or more). Also how the run tells that search has landed.
 */
import type { Bundle } from '@medplum/fhirtypes';
import type { BenchData, Scenario, Target } from '../scenarios';

export interface Answer {
  status: number;
  /** `Type/id` of the matches, in order. */
  matches: string[];
  /** `Type/id` of included resources, sorted. */
  includes: string[];
  /** Diagnostics of OperationOutcome entries (ignored parameters and the like). */
  outcomes: string[];
  error?: string;
}

export async function answer(target: Target, path: string): Promise<Answer> {
  const response = await fetch(target.origin + path, {
    headers: { accept: 'application/fhir+json', ...target.headers },
    signal: AbortSignal.timeout(30_000),
  });
  const text = await response.text();
  const result: Answer = { status: response.status, matches: [], includes: [], outcomes: [] };
  if (response.status !== 200) {
    result.error = text.slice(0, 300);
    return result;
  }
  const bundle = JSON.parse(text) as Bundle;
  for (const entry of bundle.entry ?? []) {
    const r = entry.resource;
    if (!r) continue;
    const mode = entry.search?.mode ?? 'match';
    if (mode === 'outcome' || r.resourceType === 'OperationOutcome') {
      const issues = (r as { issue?: { diagnostics?: string }[] }).issue ?? [];
      result.outcomes.push(...issues.map((i) => i.diagnostics ?? ''));
    } else if (mode === 'include') {
      result.includes.push(`${r.resourceType}/${r.id}`);
    } else {
      result.matches.push(`${r.resourceType}/${r.id}`);
    }
  }
  result.includes.sort();
  return result;
}

export interface Agreement {
  scenario: string;
  samples: number;
  agree: number;
  /** Mean matches and includes per baseline answer: how much each request returns. */
  meanMatches: number;
  meanIncludes: number;
  /** The first few disagreements, described. */
  problems: string[];
}

function describe(path: string, ours: Answer, base: Answer): string | undefined {
  if (ours.status !== 200 || base.status !== 200) {
    return `${path}: ours ${ours.status}${ours.error ? ' ' + ours.error : ''}, baseline ${base.status}${base.error ? ' ' + base.error : ''}`;
  }
  const notes: string[] = [];
  if (ours.outcomes.length) notes.push(`ours warns: ${ours.outcomes.join('; ').slice(0, 200)}`);
  if (ours.matches.join() !== base.matches.join()) {
    const same = new Set(ours.matches);
    const common = base.matches.filter((m) => same.has(m)).length;
    const sameSet = common === base.matches.length && common === ours.matches.length;
    notes.push(
      sameSet
        ? `same ${common} matches in another order`
        : `matches ours ${ours.matches.length}, baseline ${base.matches.length}, in common ${common}`,
    );
  }
  if (ours.includes.join() !== base.includes.join()) {
    notes.push(`includes ours ${ours.includes.length}, baseline ${base.includes.length}`);
  }
  return notes.length ? `${path}: ${notes.join('; ')}` : undefined;
}

/** Sends the first `samples` requests of the scenario to both servers and compares the answers. */
export async function verify(scenario: Scenario, targets: [Target, Target], data: BenchData, samples: number): Promise<Agreement> {
  const [ours, baseline] = targets;
  const nextOurs = scenario.requests(ours, data);
  const nextBase = scenario.requests(baseline, data);
  const result: Agreement = { scenario: scenario.name, samples, agree: 0, meanMatches: 0, meanIncludes: 0, problems: [] };
  for (let i = 0; i < samples; i++) {
    const oursPath = nextOurs().path;
    const [a, b] = await Promise.all([answer(ours, oursPath), answer(baseline, nextBase().path)]);
    result.meanMatches += b.matches.length / samples;
    result.meanIncludes += b.includes.length / samples;
    const problem = describe(oursPath, a, b);
    if (!problem) result.agree++;
    else if (result.problems.length < 3) result.problems.push(problem);
  }
  return result;
}

export function printAgreement(a: Agreement): void {
  console.log(
    `  ${a.scenario.padEnd(14)} ours agrees with the baseline on ${a.agree}/${a.samples} requests ` +
      `(baseline returns ${a.meanMatches.toFixed(1)} matches + ${a.meanIncludes.toFixed(1)} includes per request)`,
  );
  for (const p of a.problems) console.log(`      ${p}`);
}
