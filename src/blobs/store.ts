/**
 * Where encrypted objects live: one interface, files under DATA_DIR by default (this file), S3 with S3_BUCKET
 * (s3.ts). A store only ever sees ciphertext: src/blobs/index.ts encrypts before `put` and decrypts after `get`.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export interface ObjectStore {
  /** Stores the whole stream under `key`, or nothing (a failed or aborted put leaves no object). */
  put(key: string, body: Readable): Promise<void>;
  /** The stored bytes; rejects when there is no such object. */
  get(key: string): Promise<Readable>;
  delete(key: string): Promise<void>;
  /** Every object, with when it was written (the orphan sweep, tests). */
  list(): AsyncIterable<{ key: string; modified: Date }>;
}

const KEY = /^[A-Za-z0-9][A-Za-z0-9._-]*(\/[A-Za-z0-9][A-Za-z0-9._-]*)*$/;

export function assertKey(key: string): void {
  if (!KEY.test(key) || key.includes('..')) throw new Error(`Invalid object key ${key}`);
}

/** Files under `root`, written to a temporary name and renamed when complete (mode 0600). */
export function localStore(root: string): ObjectStore {
  const path = (key: string) => {
    assertKey(key);
    return join(root, ...key.split('/'));
  };
  return {
    async put(key, body) {
      const target = path(key);
      await mkdir(dirname(target), { recursive: true, mode: 0o700 });
      const partial = `${target}.partial-${randomBytes(6).toString('hex')}`;
      try {
        await pipeline(body, createWriteStream(partial, { flags: 'wx', mode: 0o600 }));
        await rename(partial, target);
      } catch (err) {
        await rm(partial, { force: true });
        throw err;
      }
    },
    async get(key) {
      const p = path(key);
      await stat(p);
      return createReadStream(p, { highWaterMark: 256 * 1024 });
    },
    async delete(key) {
      await rm(path(key), { force: true });
    },
    async *list() {
      let entries: string[];
      try {
        entries = (await readdir(root, { recursive: true })) as string[];
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw err;
      }
      for (const entry of entries) {
        const full = join(root, entry);
        const s = await stat(full).catch(() => undefined);
        if (!s?.isFile() || entry.includes('.partial-')) continue;
        yield { key: relative(root, full).split(sep).join('/'), modified: s.mtime };
      }
    },
  };
}
