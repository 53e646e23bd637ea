/**
 * Key rotation (`npm run rotate-keys`, issue 13): every data key not yet under the current master key is
 * re-wrapped under it, without touching the content it encrypts (the objects never change; only their rows'
 * wrapped keys do). Under KMS a key already in KMS is re-wrapped by ReEncrypt, so its plaintext never reaches
 * this process; from a local key (or to one) it is unwrapped and wrapped again here.
 *
 * Resumable by construction: each row is updated on its own, as soon as its new wrapping exists, and a run only
 * looks at rows not under the current key, so a run that stopped (killed, a KMS outage) is finished by the next.
 * Old master keys must stay configured until a run completes (LOCAL_MASTER_KEYS_PREVIOUS, or KMS keys left
 * enabled).
 */
import type { Queryable } from '../storage/database';
import type { Blobs } from '.';
import { countNotUnder, replaceKey, rowsNotUnder } from './rows';

export interface RotationProgress {
  done: number;
  total: number;
}

export async function rotateDataKeys(db: Queryable, blobs: Blobs, onProgress: (p: RotationProgress) => void = () => undefined, batchSize = 200): Promise<RotationProgress> {
  const current = await blobs.keys.currentId();
  const total = await countNotUnder(db, current);
  let done = 0;
  let after: { binaryId: string; versionId: number } | undefined;
  onProgress({ done, total });
  for (;;) {
    const rows = await rowsNotUnder(db, current, after, batchSize);
    if (rows.length === 0) break;
    for (const row of rows) {
      const next = await blobs.rewrapRow(row);
      await replaceKey(db, row, next.keyId, next.wrapped);
      done++;
      onProgress({ done, total: Math.max(total, done) });
    }
    const last = rows[rows.length - 1];
    after = { binaryId: last.binary_id, versionId: last.version_id };
  }
  return { done, total: Math.max(total, done) };
}
