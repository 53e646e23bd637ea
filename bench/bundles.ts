/**
 * Bulk loading through the FHIR API: batch and transaction Bundles posted to the FHIR base, several in
 * flight, with progress and load rate. https://hl7.org/fhir/R4/http.html#transaction
 */
import type { Bundle, BundleEntry } from '@medplum/fhirtypes';

/** `Type/id` out of a batch or transaction response entry's location (relative or absolute). */
export function referenceFrom(entry: BundleEntry | undefined): string | undefined {
  const location = entry?.response?.location ?? '';
  const m = /(?:^|\/)([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/.exec(location);
  if (m) return `${m[1]}/${m[2]}`;
  const r = entry?.resource;
  return r?.id ? `${r.resourceType}/${r.id}` : undefined;
}

/** Prints `label done/total (rate/s)` at most every few seconds, and the total rate at the end. */
export class Progress {
  private done = 0;
  private lastPrint = 0;
  private readonly started = process.hrtime.bigint();

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly everyMs = 5000,
  ) {}

  get seconds(): number {
    return Number(process.hrtime.bigint() - this.started) / 1e9;
  }

  add(n: number): void {
    this.done += n;
    const now = Date.now();
    if (now - this.lastPrint >= this.everyMs && this.done < this.total) {
      this.lastPrint = now;
      console.log(`  ${this.label} ${this.done}/${this.total} (${(this.done / this.seconds).toFixed(0)}/s)`);
    }
  }

  finish(failed = 0): number {
    const seconds = this.seconds;
    console.log(
      `  ${this.label} ${this.done}/${this.total} in ${seconds.toFixed(1)} s (${(this.done / seconds).toFixed(0)} resources/s)` +
        (failed ? `, ${failed} failed` : ''),
    );
    return seconds;
  }
}

export interface Work<T> {
  bundle: Bundle;
  /** What the caller needs to make sense of the response (which resources the entries were). */
  context: T;
}

/**
 * Posts every Bundle of `work` (pulled lazily, so large data sets are never all in memory) to `fhirBase`,
 * `concurrency` at a time; `onResponse` gets each response Bundle. A non-200 answer stops the load: a
 * transaction is all-or-nothing, and a refused batch means the data set is wrong.
 */
export async function postBundles<T>(
  fhirBase: string,
  work: Iterator<Work<T>>,
  concurrency: number,
  onResponse: (context: T, response: Bundle) => void,
  headers: Record<string, string> = {},
): Promise<void> {
  let failure: Error | undefined;
  const worker = async (): Promise<void> => {
    for (;;) {
      if (failure) return;
      const next = work.next();
      if (next.done) return;
      const { bundle, context } = next.value;
      const response = await fetch(fhirBase, {
        method: 'POST',
        headers: { 'content-type': 'application/fhir+json', accept: 'application/fhir+json', prefer: 'return=minimal', ...headers },
        body: JSON.stringify(bundle),
        signal: AbortSignal.timeout(600_000),
      });
      const text = await response.text();
      if (response.status !== 200) {
        failure = new Error(`POST ${fhirBase} ${bundle.type} of ${bundle.entry?.length ?? 0} answered ${response.status}: ${text.slice(0, 2000)}`);
        return;
      }
      onResponse(context, JSON.parse(text) as Bundle);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  if (failure) throw failure;
}
