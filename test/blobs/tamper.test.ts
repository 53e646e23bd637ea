/**
 * Tampering with what is at rest never yields wrong bytes (issue 13): a flipped byte in a stored object, a wrapped
 * data key swapped between two objects, an object moved to another patient's Binary, a row re-labelled to another
 * patient. Each download fails (500 before any byte, or a connection cut before the bytes of the tampered frame),
 * and what did arrive is a prefix of the true content.
 */
import { randomBytes } from 'node:crypto';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestServer } from '../helpers/server';
import { startBlobServer } from './support';

let s: TestServer & { dataDir: string };
beforeAll(async () => {
  s = await startBlobServer('tamper');
}, 120_000);
afterAll(() => s?.close());

async function upload(patient: string, bytes: Buffer): Promise<{ id: string; path: string }> {
  const res = await fetch(`${s.fhirBase}/Binary`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await s.adminToken()}`, 'content-type': 'text/plain', 'x-security-context': `Patient/${patient}` },
    body: new Uint8Array(bytes),
  });
  expect(res.status).toBe(201);
  const id = ((await res.json()) as { id: string }).id;
  const row = (await s.db.query<{ object_key: string }>('SELECT object_key FROM binary_content WHERE binary_id = $1', [id])).rows[0];
  return { id, path: join(s.dataDir, 'blobs', ...row.object_key.split('/')) };
}

async function patient(): Promise<string> {
  return (await s.request('POST', '/fhir/Patient', { resourceType: 'Patient', name: [{ family: 'Alves' }] })).body.id;
}

/** A download: its status and every byte that arrived, or that it failed mid-way. */
async function download(id: string): Promise<{ status: number; bytes: Buffer; cut: boolean }> {
  const res = await fetch(`${s.fhirBase}/Binary/${id}`, { headers: { authorization: `Bearer ${await s.adminToken()}`, accept: '*/*' } });
  const chunks: Buffer[] = [];
  try {
    for await (const c of res.body as unknown as AsyncIterable<Uint8Array>) chunks.push(Buffer.from(c));
  } catch {
    return { status: res.status, bytes: Buffer.concat(chunks), cut: true };
  }
  return { status: res.status, bytes: Buffer.concat(chunks), cut: false };
}

function expectFailedWithoutWrongBytes(r: { status: number; bytes: Buffer; cut: boolean }, truth: Buffer): void {
  const failed = r.status >= 500 || r.cut;
  expect(failed).toBe(true);
  if (r.status === 200) expect(truth.subarray(0, r.bytes.length).equals(r.bytes)).toBe(true);
}

const text = (n: number) => {
  const b = randomBytes(n);
  for (let i = 0; i < n; i++) b[i] = 0x61 + (b[i] % 26);
  return b;
};

test('a flipped byte anywhere in a stored object: the download fails, never with wrong bytes', async () => {
  const p = await patient();
  const bytes = text(3 * 1024 * 1024 + 100);
  const { id, path } = await upload(p, bytes);
  expect((await download(id)).bytes.equals(bytes)).toBe(true);
  const stored = readFileSync(path);
  for (const at of [10, 300, Math.floor(stored.length / 2), stored.length - 5]) {
    const tampered = Buffer.from(stored);
    tampered[at] ^= 0x01;
    writeFileSync(path, tampered);
    const r = await download(id);
    expect([at, r.status >= 500 || r.cut]).toEqual([at, true]);
    expectFailedWithoutWrongBytes(r, bytes);
  }
  writeFileSync(path, stored);
  expect((await download(id)).bytes.equals(bytes)).toBe(true);
});

test('a wrapped data key swapped between two objects: both downloads fail with 500', async () => {
  const a = await upload(await patient(), text(5000));
  const b = await upload(await patient(), text(5000));
  const key = async (id: string) => (await s.db.query<{ data_key: Buffer }>('SELECT data_key FROM binary_content WHERE binary_id = $1', [id])).rows[0].data_key;
  const [ka, kb] = [await key(a.id), await key(b.id)];
  await s.db.query('UPDATE binary_content SET data_key = $2 WHERE binary_id = $1', [a.id, kb]);
  await s.db.query('UPDATE binary_content SET data_key = $2 WHERE binary_id = $1', [b.id, ka]);
  for (const id of [a.id, b.id]) {
    const r = await download(id);
    expect(r.status).toBe(500);
    expect(JSON.parse(r.bytes.toString()).issue[0].code).toBe('exception');
  }
});

test("an object moved to another patient's Binary, or its row re-labelled to another patient: the download fails", async () => {
  const alice = await patient();
  const bob = await patient();
  const aliceBytes = text(6000);
  const a = await upload(alice, aliceBytes);
  const b = await upload(bob, text(6000));
  // Alice's object (key and all) put where Bob's Binary's object is.
  copyFileSync(a.path, b.path);
  const row = async (id: string) => (await s.db.query<{ data_key: Buffer; key_id: string }>('SELECT data_key, key_id FROM binary_content WHERE binary_id = $1', [id])).rows[0];
  const r1 = await download(b.id);
  expect(r1.status).toBe(500);
  // ... and with Alice's wrapped key moved along with it.
  const ra = await row(a.id);
  await s.db.query('UPDATE binary_content SET data_key = $2, key_id = $3 WHERE binary_id = $1', [b.id, ra.data_key, ra.key_id]);
  expect((await download(b.id)).status).toBe(500);
  // Alice's own Binary, claimed to be Bob's content.
  await s.db.query('UPDATE binary_content SET patient = $2 WHERE binary_id = $1', [a.id, bob]);
  expect((await download(a.id)).status).toBe(500);
  await s.db.query('UPDATE binary_content SET patient = $2 WHERE binary_id = $1', [a.id, alice]);
  expect((await download(a.id)).bytes.equals(aliceBytes)).toBe(true);
});
