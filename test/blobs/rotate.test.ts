/**
 * `npm run rotate-keys` (src/blobs/rotate.ts, rotateCli.ts): after changing the master key, every data key and
 * signing key is re-wrapped under the new one without re-encrypting content (the objects are byte for byte the
 * same); a run that stops half-way is finished by the next; then a server with only the new key reads every
 * object and still verifies the tokens signed before.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createAuth } from '../../src/auth';
import { createBlobs, type ContentRow } from '../../src/blobs';
import { rotateDataKeys } from '../../src/blobs/rotate';
import { rewrapSigningKeys } from '../../src/auth/keys';
import type { FhirServices } from '../../src/fhir/context';
import { projectRoot } from '../../src/config';
import type { TestServer } from '../helpers/server';
import { privateDatabase, raw, startBlobServer } from './support';

const K1 = randomBytes(32).toString('base64');
const K2 = randomBytes(32).toString('base64');
const K3 = randomBytes(32).toString('base64');
let s: TestServer & { dataDir: string };
let db: { url?: string; drop(): Promise<void> };

beforeAll(async () => {
  db = await privateDatabase('rotate');
  s = await startBlobServer('rotate', { LOCAL_MASTER_KEY: K1, ...(db.url ? { DATABASE_URL: db.url } : {}) });
}, 120_000);
afterAll(async () => {
  await s?.close();
  await db?.drop();
});

const rows = async () => (await s.db.query<ContentRow>('SELECT binary_id, version_id, object_key, patient, size, sha1, key_id, data_key FROM binary_content ORDER BY binary_id')).rows;
const blobsWith = (key: string, previous: string[] = []) => createBlobs({ ...s.config.blobs, dataDir: s.dataDir, localMasterKey: key, localPreviousKeys: previous });

test('rotation re-wraps every key under the new master key, resumably, and leaves the objects as they were', async () => {
  const token = await s.adminToken();
  const contents = new Map<string, Buffer>();
  for (let i = 0; i < 5; i++) {
    const bytes = randomBytes(100_000 + i);
    const up = await raw(s, 'POST', '/fhir/Binary', Buffer.concat([Buffer.from('%PDF-'), bytes]), { 'content-type': 'application/pdf' });
    expect(up.status).toBe(201);
    contents.set(up.json.id, Buffer.concat([Buffer.from('%PDF-'), bytes]));
  }
  const before = await rows();
  const objects = new Map(before.map((r) => [r.object_key, readFileSync(join(s.dataDir, 'blobs', ...r.object_key.split('/')))]));
  const k1 = before[0].key_id;

  // A run that stops after two rows (as if killed) ...
  const next = blobsWith(K2, [K1]);
  let seen = 0;
  await expect(
    rotateDataKeys(s.db, next, ({ done }) => {
      seen = done;
      if (done === 2) throw new Error('stopped');
    }),
  ).rejects.toThrow('stopped');
  expect(seen).toBe(2);
  const k2 = await next.keys.currentId();
  expect((await rows()).filter((r) => r.key_id === k2)).toHaveLength(2);
  // ... is finished by the next one, which does only what is left.
  const progress: number[] = [];
  const result = await rotateDataKeys(s.db, next, ({ done, total }) => progress.push(total - done));
  expect(result).toEqual({ done: 3, total: 3 });
  expect(progress[progress.length - 1]).toBe(0);
  expect(await rewrapSigningKeys(s.db, next)).toBeGreaterThan(0);
  expect(await rewrapSigningKeys(s.db, next)).toBe(0);

  const after = await rows();
  expect(after.every((r) => r.key_id === k2 && r.key_id !== k1)).toBe(true);
  for (const r of after) {
    // the content was not re-encrypted: same object, same bytes
    expect(before.find((b) => b.binary_id === r.binary_id)?.object_key).toBe(r.object_key);
    expect(readFileSync(join(s.dataDir, 'blobs', ...r.object_key.split('/'))).equals(objects.get(r.object_key) as Buffer)).toBe(true);
  }

  // Only the new key now: every object reads, and tokens signed before still verify.
  const only = blobsWith(K2);
  for (const r of after) {
    const chunks: Buffer[] = [];
    for await (const c of await only.open(r)) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).equals(contents.get(r.binary_id) as Buffer)).toBe(true);
  }
  const restarted = createAuth({ config: s.config, db: s.db, fhir: {} as FhirServices, secrets: only });
  expect((await restarted.authenticate(`Bearer ${token}`)).scopes).toEqual(['system/*.*']);
  await expect(blobsWith(K1).open(after[0])).rejects.toThrow();
});

test('npm run rotate-keys: the command re-wraps with a progress bar and says how many', async () => {
  const up = await raw(s, 'POST', '/fhir/Binary', Buffer.from('%PDF-1.4 rotate me'), { 'content-type': 'application/pdf' });
  expect(up.status).toBe(201);
  const out = execFileSync(
    process.execPath,
    ['-r', 'ts-node/register/transpile-only', join(projectRoot(), 'src/blobs/rotateCli.ts')],
    {
      cwd: projectRoot(),
      env: {
        ...process.env,
        DATA_DIR: s.dataDir,
        LOCAL_MASTER_KEY: K3,
        LOCAL_MASTER_KEYS_PREVIOUS: `${K1},${K2}`,
        ...(db.url ? { DATABASE_URL: db.url } : {}),
      },
    },
  ).toString();
  if (!db.url) {
    // PGlite in memory: the command saw its own empty database
    expect(out).toMatch(/re-wrapped 0 data keys/);
    return;
  }
  expect(out).toMatch(/re-wrapped \d+ data keys and \d+ signing keys/);
  const k3 = await blobsWith(K3).keys.currentId();
  expect((await rows()).every((r) => r.key_id === k3)).toBe(true);
}, 120_000);
