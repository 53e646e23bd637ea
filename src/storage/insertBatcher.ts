/**
 * Group commit for plain creates. A create outside any transaction is one atomic statement of its own;
 * when creates arrive faster than the database takes them, the ones waiting are written together, as one
 * statement and one commit, by the next free writer. Each statement, commit and WAL flush then serves many
 * resources, and so does each round trip and backend wake-up, which on a small machine cost as much CPU
 * as the rows themselves. No create waits for a batch to fill: with a writer free, it goes alone at once.
 *
 * Every create still commits before it is answered, and a failure stays its own: when a grouped statement
 * fails, its members are retried one by one, so only the resource that caused it fails.
 */
import { isConnectionError, type Queryable } from './database';
import { insertVersions, type NewVersion } from './repository';

interface Pending {
  version: NewVersion;
  resolve: (written: boolean) => void;
  reject: (err: unknown) => void;
}

export interface InsertBatcherOptions {
  /** How many statements may be in flight at once (database connections the creates may occupy). */
  writers: number;
  /** The most resources one statement writes. */
  maxBatch: number;
  /** Told the size of every statement written (for metrics). */
  onBatch?: (size: number) => void;
}

export class InsertBatcher {
  private readonly queue: Pending[] = [];
  private busy = 0;

  constructor(
    private readonly db: Queryable,
    private readonly fhirBaseUrl: string,
    private readonly options: InsertBatcherOptions,
  ) {}

  /** Writes a first version; resolves once committed, with false when its id already existed. */
  insert(version: NewVersion): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.queue.push({ version, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.busy < this.options.writers && this.queue.length > 0) {
      const batch = this.take();
      this.busy++;
      void this.write(batch).finally(() => {
        this.busy--;
        this.dispatch();
      });
    }
  }

  /** The oldest waiting creates, at most one per resource id (whose outcome must stay its own). */
  private take(): Pending[] {
    const batch: Pending[] = [];
    const keys = new Set<string>();
    for (let i = 0; i < this.queue.length && batch.length < this.options.maxBatch; ) {
      const { version } = this.queue[i];
      const key = `${version.resourceType}/${version.id}`;
      if (keys.has(key)) {
        i++;
        continue;
      }
      keys.add(key);
      batch.push(...this.queue.splice(i, 1));
    }
    return batch;
  }

  private async write(batch: Pending[]): Promise<void> {
    this.options.onBatch?.(batch.length);
    try {
      const written = await insertVersions(this.db, batch.map((p) => p.version), this.fhirBaseUrl);
      batch.forEach((p, i) => p.resolve(written[i]));
    } catch (err) {
      // One member alone, or the database gone: every member meets the same failure.
      if (batch.length === 1 || isConnectionError(err)) {
        for (const p of batch) p.reject(err);
        return;
      }
      // Nothing of the failed statement was written: each member now goes alone and meets its own outcome.
      for (const p of batch) {
        await insertVersions(this.db, [p.version], this.fhirBaseUrl).then(([written]) => p.resolve(written), p.reject);
      }
    }
  }
}
