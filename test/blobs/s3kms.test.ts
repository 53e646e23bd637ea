/**
 * S3 and KMS through the real @aws-sdk clients against moto (issue 13): with S3_BUCKET + S3_ENDPOINT (path-style)
 * the encrypted objects go to the bucket and nothing to DATA_DIR; with KMS_KEY_ID + KMS_ENDPOINT every data key
 * comes from KMS GenerateDataKey bound to its encryption context; rotation to another KMS key re-wraps by
 * ReEncrypt; a tampered S3 object fails its download; a refused upload leaves no object (the multipart upload
 * is aborted).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { createAuth } from '../../src/auth';
import { createBlobs, type ContentRow } from '../../src/blobs';
import { rotateDataKeys } from '../../src/blobs/rotate';
import { rewrapSigningKeys } from '../../src/auth/keys';
import type { FhirServices } from '../../src/fhir/context';
import type { TestServer } from '../helpers/server';
import { startMoto, type Moto } from './moto';
import { pdfWithMarker, privateDatabase, raw, startBlobServer } from './support';

let moto: Moto;
let s: TestServer & { dataDir: string };
let db: { url?: string; drop(): Promise<void> };
let s3: S3Client;
let kms: KMSClient;
const bucket = `attachments-${randomUUID()}`;
let keyId: string;

beforeAll(async () => {
  moto = await startMoto();
  // The SDK's own configuration (CONTRACT section 1: "the standard AWS variables").
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing', AWS_REGION: 'us-east-1' });
  s3 = new S3Client({ endpoint: moto.endpoint, forcePathStyle: true });
  kms = new KMSClient({ endpoint: moto.endpoint });
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  keyId = (await kms.send(new CreateKeyCommand({ Description: 'attachments' }))).KeyMetadata?.KeyId as string;
  db = await privateDatabase('s3kms');
  s = await startBlobServer('s3kms', {
    S3_BUCKET: bucket,
    S3_ENDPOINT: moto.endpoint,
    KMS_KEY_ID: keyId,
    KMS_ENDPOINT: moto.endpoint,
    MAX_UPLOAD_MB: '12',
    ...(db.url ? { DATABASE_URL: db.url } : {}),
  });
}, 120_000);
afterAll(async () => {
  await s?.close();
  await db?.drop();
  await moto?.stop();
});

const objects = async () => (await s3.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? [];
const rows = async () => (await s.db.query<ContentRow>('SELECT binary_id, version_id, object_key, patient, size, sha1, key_id, data_key FROM binary_content')).rows;
async function objectBytes(key: string): Promise<Buffer> {
  const r = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await (r.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
}

test('uploads go to S3 encrypted under a KMS data key, and read back whole and in ranges', async () => {
  const marker = `S3-MARKER-${randomUUID()}`;
  const bytes = pdfWithMarker(marker, 9 * 1024 * 1024 + 3); // more than one 8 MiB part
  const up = await raw(s, 'POST', '/fhir/Binary', bytes, { 'content-type': 'application/pdf' });
  expect(up.status).toBe(201);
  const down = await raw(s, 'GET', `/fhir/Binary/${up.json.id}`, undefined, { accept: '*/*' });
  expect(down.status).toBe(200);
  expect(down.bytes.equals(bytes)).toBe(true);
  const part = await raw(s, 'GET', `/fhir/Binary/${up.json.id}`, undefined, { accept: '*/*', range: 'bytes=5000000-5000099' });
  expect(part.status).toBe(206);
  expect(part.bytes.equals(bytes.subarray(5000000, 5000100))).toBe(true);

  const row = (await rows()).find((r) => r.binary_id === up.json.id) as ContentRow;
  expect(row.key_id).toMatch(/^kms:arn:aws:kms:us-east-1:\d+:key\//);
  const listed = await objects();
  expect(listed.map((o) => o.Key)).toContain(`binary/${row.object_key}`);
  const stored = await objectBytes(`binary/${row.object_key}`);
  expect(stored.length).toBeGreaterThan(bytes.length);
  expect(stored.includes(marker)).toBe(false);
  expect(stored.includes(Buffer.from(marker).toString('base64').slice(4, 40))).toBe(false);
  // nothing under DATA_DIR: no object, no key file
  expect(existsSync(join(s.dataDir, 'blobs')) ? readdirSync(join(s.dataDir, 'blobs')) : []).toEqual([]);
  expect(existsSync(join(s.dataDir, 'master.key'))).toBe(false);
});

test('a refused upload leaves no object in the bucket', async () => {
  const before = (await objects()).length;
  const big = pdfWithMarker('too-big', 12 * 1024 * 1024 + 1);
  let sent = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(c) {
      if (sent >= big.length) return c.close();
      c.enqueue(big.subarray(sent, sent + 256 * 1024));
      sent += 256 * 1024;
    },
  });
  const res = await raw(s, 'POST', '/fhir/Binary', stream, { 'content-type': 'application/pdf' });
  expect(res.status).toBe(413);
  expect((await raw(s, 'POST', '/fhir/Binary', Buffer.from('not a pdf'), { 'content-type': 'application/pdf' })).status).toBe(415);
  expect((await objects()).length).toBe(before);
});

test('a tampered S3 object fails its download', async () => {
  const bytes = Buffer.concat([Buffer.from('%PDF-'), randomBytes(3 * 1024 * 1024)]);
  const up = await raw(s, 'POST', '/fhir/Binary', bytes, { 'content-type': 'application/pdf' });
  const row = (await rows()).find((r) => r.binary_id === up.json.id) as ContentRow;
  const stored = await objectBytes(`binary/${row.object_key}`);
  stored[Math.floor(stored.length / 2)] ^= 0x80;
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `binary/${row.object_key}`, Body: stored }));
  let failed = false;
  try {
    const res = await raw(s, 'GET', `/fhir/Binary/${up.json.id}`, undefined, { accept: '*/*' });
    failed = res.status >= 500 || !res.bytes.equals(bytes);
    if (res.status === 200) expect(res.bytes.equals(bytes)).toBe(false);
  } catch {
    failed = true;
  }
  expect(failed).toBe(true);
});

test('rotation to another KMS key re-wraps every data and signing key; the new key alone reads everything', async () => {
  const token = await s.adminToken();
  const up = await raw(s, 'POST', '/fhir/Binary', Buffer.from('%PDF-1.7 rotate'), { 'content-type': 'application/pdf' });
  expect(up.status).toBe(201);
  const newKey = (await kms.send(new CreateKeyCommand({ Description: 'attachments 2' }))).KeyMetadata?.KeyId as string;
  const next = createBlobs({ ...s.config.blobs, dataDir: s.dataDir, kmsKeyId: newKey, s3: { bucket, endpoint: moto.endpoint } });
  const current = await next.keys.currentId();
  expect(current).toContain(newKey);
  const result = await rotateDataKeys(s.db, next);
  expect(result.done).toBe((await rows()).length - 0);
  expect(await rewrapSigningKeys(s.db, next)).toBeGreaterThan(0);
  expect((await rows()).every((r) => r.key_id === current)).toBe(true);
  const row = (await rows()).find((r) => r.binary_id === up.json.id) as ContentRow;
  const chunks: Buffer[] = [];
  for await (const c of await next.open(row)) chunks.push(c as Buffer);
  expect(Buffer.concat(chunks).toString()).toBe('%PDF-1.7 rotate');
  const restarted = createAuth({ config: s.config, db: s.db, fhir: {} as FhirServices, secrets: next });
  expect((await restarted.authenticate(`Bearer ${token}`)).scopes).toEqual(['system/*.*']);
});
