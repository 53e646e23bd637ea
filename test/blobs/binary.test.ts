/**
 * Binary upload and download over HTTP (https://hl7.org/fhir/R4/binary.html#rest, CONTRACT section 6): raw
 * bytes and FHIR JSON both ways, the allow-list and signatures (415), the size limit (413), Range (206, 416),
 * ETag and If-None-Match.
 */
import { randomBytes, randomUUID, createHash } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { Readable } from 'node:stream';
import { createBlobs } from '../../src/blobs';
import { join } from 'node:path';
import type { TestServer } from '../helpers/server';
import { PNG_HEAD, pdfWithMarker, raw, startBlobServer } from './support';

let s: TestServer & { dataDir: string };

beforeAll(async () => {
  s = await startBlobServer('binary', { MAX_UPLOAD_MB: '1' });
}, 120_000);
afterAll(() => s?.close());

async function patient(): Promise<string> {
  const res = await s.request('POST', '/fhir/Patient', { resourceType: 'Patient', name: [{ family: `Souza-${randomUUID()}` }] });
  expect(res.status).toBe(201);
  return res.body.id;
}

test('a raw upload reads back as the same bytes (raw) and as a Binary with data (FHIR JSON)', async () => {
  const pid = await patient();
  const bytes = pdfWithMarker(`roundtrip-${randomUUID()}`, 300_000);
  const up = await raw(s, 'POST', '/fhir/Binary', bytes, { 'content-type': 'application/pdf', 'x-security-context': `Patient/${pid}` });
  expect(up.status).toBe(201);
  expect(up.headers.get('location')).toMatch(/\/fhir\/Binary\/[^/]+\/_history\/1$/);
  expect(up.json.resourceType).toBe('Binary');
  expect(up.json.data).toBeUndefined();
  expect(up.json.securityContext).toEqual({ reference: `Patient/${pid}` });
  const id = up.json.id;

  const down = await raw(s, 'GET', `/fhir/Binary/${id}`, undefined, { accept: '*/*' });
  expect(down.status).toBe(200);
  expect(down.headers.get('content-type')).toBe('application/pdf');
  expect(down.headers.get('content-length')).toBe(String(bytes.length));
  expect(down.headers.get('etag')).toBe('"1"');
  expect(down.headers.get('accept-ranges')).toBe('bytes');
  expect(down.bytes.equals(bytes)).toBe(true);

  const asPdf = await raw(s, 'GET', `/fhir/Binary/${id}`, undefined, { accept: 'application/pdf' });
  expect(asPdf.bytes.equals(bytes)).toBe(true);

  const json = await raw(s, 'GET', `/fhir/Binary/${id}`, undefined, { accept: 'application/fhir+json' });
  expect(json.status).toBe(200);
  expect(json.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
  expect(json.headers.get('etag')).toBe('W/"1"');
  expect(Number(json.headers.get('content-length'))).toBe(json.bytes.length);
  expect(json.json).toMatchObject({ resourceType: 'Binary', id, contentType: 'application/pdf', meta: { versionId: '1' } });
  expect(Buffer.from(json.json.data, 'base64').equals(bytes)).toBe(true);

  const summary = await s.request('GET', `/fhir/Binary/${id}?_summary=true`);
  expect(summary.status).toBe(200);
  expect(summary.body.data).toBeUndefined();

  const vread = await raw(s, 'GET', `/fhir/Binary/${id}/_history/1`, undefined, { accept: '*/*' });
  expect(vread.bytes.equals(bytes)).toBe(true);
});

test('a Binary as FHIR JSON with data is stored encrypted like a raw one and reads back raw', async () => {
  const pid = await patient();
  const text = `exam ${randomUUID()}`;
  const up = await s.request('POST', '/fhir/Binary', {
    resourceType: 'Binary',
    contentType: 'text/plain',
    securityContext: { reference: `Patient/${pid}` },
    data: Buffer.from(text).toString('base64'),
  });
  expect(up.status).toBe(201);
  expect(up.body.data).toBeUndefined();
  const down = await raw(s, 'GET', `/fhir/Binary/${up.body.id}`, undefined, { accept: 'text/plain' });
  expect(down.status).toBe(200);
  expect(down.headers.get('content-type')).toMatch(/^text\/plain/);
  expect(down.bytes.toString()).toBe(text);
});

test('types outside the allow-list and first bytes that do not match the type are 415, and nothing is stored', async () => {
  const before = await s.db.query<{ n: string }>('SELECT count(*) AS n FROM binary_content');
  const cases: [string, Buffer][] = [
    ['text/html', Buffer.from('<html><script>alert(1)</script></html>')],
    ['application/pdf', Buffer.from('not a pdf at all, just text')],
    ['image/png', Buffer.from('%PDF-1.7 pretending to be a png')],
    ['image/jpeg', PNG_HEAD],
    ['application/dicom', Buffer.concat([Buffer.alloc(128), Buffer.from('NOPE')])],
  ];
  for (const [type, body] of cases) {
    const res = await raw(s, 'POST', '/fhir/Binary', body, { 'content-type': type });
    expect([type, res.status]).toEqual([type, 415]);
    expect(res.json.resourceType).toBe('OperationOutcome');
    expect(res.json.issue[0].code).toBe('not-supported');
  }
  const json = await s.request('POST', '/fhir/Binary', { resourceType: 'Binary', contentType: 'application/pdf', data: Buffer.from('GIF89a').toString('base64') });
  expect(json.status).toBe(415);
  const after = await s.db.query<{ n: string }>('SELECT count(*) AS n FROM binary_content');
  expect(after.rows[0].n).toBe(before.rows[0].n);

  const dicom = await raw(s, 'POST', '/fhir/Binary', Buffer.concat([randomBytes(128), Buffer.from('DICM'), randomBytes(64)]), { 'content-type': 'application/dicom' });
  expect(dicom.status).toBe(201);
  const png = await raw(s, 'POST', '/fhir/Binary', Buffer.concat([PNG_HEAD, randomBytes(64)]), { 'content-type': 'image/png' });
  expect(png.status).toBe(201);
  const jpeg = await raw(s, 'POST', '/fhir/Binary', Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), randomBytes(64)]), { 'content-type': 'image/jpeg' });
  expect(jpeg.status).toBe(201);
});

const objects = () => readdirSync(join(s.dataDir, 'blobs'), { recursive: true }).filter((f) => statSync(join(s.dataDir, 'blobs', String(f))).isFile()).length;

test('more than MAX_UPLOAD_MB is 413, declared or streamed, and nothing is stored', async () => {
  const before = await s.db.query<{ n: string }>('SELECT count(*) AS n FROM binary_content');
  const files = objects();
  const big = pdfWithMarker('too-big', 1024 * 1024 + 1);
  const declared = await raw(s, 'POST', '/fhir/Binary', big, { 'content-type': 'application/pdf' });
  expect(declared.status).toBe(413);
  expect(declared.json.issue[0].code).toBe('too-costly');

  // chunked, no Content-Length: refused once the limit is passed
  let sent = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent >= big.length) return controller.close();
      controller.enqueue(big.subarray(sent, sent + 64 * 1024));
      sent += 64 * 1024;
    },
  });
  const streamed = await raw(s, 'POST', '/fhir/Binary', stream, { 'content-type': 'application/pdf' });
  expect(streamed.status).toBe(413);
  const after = await s.db.query<{ n: string }>('SELECT count(*) AS n FROM binary_content');
  expect(after.rows[0].n).toBe(before.rows[0].n);
  expect(objects()).toBe(files);

  const exact = await raw(s, 'POST', '/fhir/Binary', pdfWithMarker('exactly', 1024 * 1024), { 'content-type': 'application/pdf' });
  expect(exact.status).toBe(201);
});

test('Range: 206 with Content-Range for a part, 416 past the end, the whole for If-Range of another version', async () => {
  const bytes = randomBytes(3 * 1024 * 1024 + 17);
  bytes.write('%PDF-', 0, 'latin1');
  const up = await raw(s, 'POST', '/fhir/Binary', bytes.subarray(0, 1024 * 1024), { 'content-type': 'application/pdf' });
  expect(up.status).toBe(201);
  const id = up.json.id;
  const content = bytes.subarray(0, 1024 * 1024);
  const size = content.length;
  for (const [header, start, end] of [
    ['bytes=0-99', 0, 99],
    ['bytes=1048000-', 1048000, size - 1],
    ['bytes=-10', size - 10, size - 1],
    [`bytes=500000-${size + 1000}`, 500000, size - 1],
  ] as [string, number, number][]) {
    const part = await raw(s, 'GET', `/fhir/Binary/${id}`, undefined, { accept: '*/*', range: header });
    expect([header, part.status]).toEqual([header, 206]);
    expect(part.headers.get('content-range')).toBe(`bytes ${start}-${end}/${size}`);
    expect(part.headers.get('content-length')).toBe(String(end - start + 1));
    expect(part.bytes.equals(content.subarray(start, end + 1))).toBe(true);
  }
  const past = await raw(s, 'GET', `/fhir/Binary/${id}`, undefined, { accept: '*/*', range: `bytes=${size}-` });
  expect(past.status).toBe(416);
  expect(past.headers.get('content-range')).toBe(`bytes */${size}`);
  const ifRange = await raw(s, 'GET', `/fhir/Binary/${id}`, undefined, { accept: '*/*', range: 'bytes=0-9', 'if-range': '"2"' });
  expect(ifRange.status).toBe(200);
  expect(ifRange.bytes.length).toBe(size);
  const matching = await raw(s, 'GET', `/fhir/Binary/${id}`, undefined, { accept: '*/*', range: 'bytes=0-9', 'if-range': '"1"' });
  expect(matching.status).toBe(206);
});

test('ETag and If-None-Match: 304 for the current version; a new upload to the id is version 2', async () => {
  const up = await raw(s, 'POST', '/fhir/Binary', Buffer.from('first'), { 'content-type': 'text/plain' });
  const id = up.json.id;
  const same = await raw(s, 'GET', `/fhir/Binary/${id}`, undefined, { accept: '*/*', 'if-none-match': '"1"' });
  expect(same.status).toBe(304);
  expect(same.bytes.length).toBe(0);
  const put = await raw(s, 'PUT', `/fhir/Binary/${id}`, Buffer.from('second'), { 'content-type': 'text/plain' });
  expect(put.status).toBe(200);
  expect(put.json.meta.versionId).toBe('2');
  const now = await raw(s, 'GET', `/fhir/Binary/${id}`, undefined, { accept: '*/*', 'if-none-match': '"1"' });
  expect(now.status).toBe(200);
  expect(now.headers.get('etag')).toBe('"2"');
  expect(now.bytes.toString()).toBe('second');
  const old = await raw(s, 'GET', `/fhir/Binary/${id}/_history/1`, undefined, { accept: '*/*' });
  expect(old.bytes.toString()).toBe('first');
});

test('a DocumentReference with inline data keeps url, size and hash; the Binary follows it', async () => {
  const pid = await patient();
  const bytes = pdfWithMarker(`inline-${randomUUID()}`, 20_000);
  const doc = await s.request('POST', '/fhir/DocumentReference', {
    resourceType: 'DocumentReference',
    status: 'current',
    subject: { reference: `Patient/${pid}` },
    content: [{ attachment: { contentType: 'application/pdf', data: bytes.toString('base64'), title: 'exam.pdf' } }],
  });
  expect(doc.status).toBe(201);
  const attachment = doc.body.content[0].attachment;
  expect(attachment.data).toBeUndefined();
  expect(attachment.url).toMatch(/^Binary\/[A-Za-z0-9.-]+$/);
  expect(attachment.size).toBe(bytes.length);
  expect(attachment.hash).toBe(createHash('sha1').update(bytes).digest('base64'));
  const binary = await s.request('GET', `/fhir/${attachment.url}`);
  expect(binary.status).toBe(200);
  expect(binary.body.securityContext).toEqual({ reference: `DocumentReference/${doc.body.id}` });
  expect(Buffer.from(binary.body.data, 'base64').equals(bytes)).toBe(true);

  const stored = await s.request('GET', `/fhir/DocumentReference/${doc.body.id}`);
  expect(stored.body.content[0].attachment).toEqual({ contentType: 'application/pdf', title: 'exam.pdf', url: attachment.url, size: bytes.length, hash: attachment.hash });
});

test('a DocumentReference whose write is refused leaves no Binary behind', async () => {
  const before = await s.db.query<{ n: string }>('SELECT count(*) AS n FROM binary_content');
  const doc = await s.request('POST', '/fhir/DocumentReference', {
    resourceType: 'DocumentReference',
    status: 'current',
    subject: { reference: `Patient/${randomUUID()}` },
    content: [{ attachment: { contentType: 'text/plain', data: Buffer.from('orphan?').toString('base64') } }],
  });
  expect(doc.status).toBe(400);
  const after = await s.db.query<{ n: string }>('SELECT count(*) AS n FROM binary_content');
  expect(after.rows[0].n).toBe(before.rows[0].n);
});

test('Binary data inside a Bundle, or a patch adding it, is refused, never stored in plaintext', async () => {
  const res = await s.request('POST', '/fhir', {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [{ request: { method: 'POST', url: 'Binary' }, resource: { resourceType: 'Binary', contentType: 'text/plain', data: Buffer.from('in a bundle').toString('base64') } }],
  });
  expect(res.status).toBe(422);
  const plain = await raw(s, 'POST', '/fhir/Binary', Buffer.from('patch me'), { 'content-type': 'text/plain' });
  const patched = await s.request('PATCH', `/fhir/Binary/${plain.json.id}`, [{ op: 'add', path: '/data', value: Buffer.from('in a patch').toString('base64') }], {
    'content-type': 'application/json-patch+json',
  });
  expect(patched.status).toBe(422);
});

test('a transaction Bundle with inline attachment data (a Synthea record): each note becomes an encrypted Binary', async () => {
  const note = `Clinical note ${randomUUID()}`;
  const res = await s.request('POST', '/fhir', {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      { fullUrl: 'urn:uuid:11111111-1111-4111-8111-111111111111', request: { method: 'POST', url: 'Patient' }, resource: { resourceType: 'Patient', name: [{ family: 'Nunes' }] } },
      {
        fullUrl: 'urn:uuid:22222222-2222-4222-8222-222222222222',
        request: { method: 'POST', url: 'DocumentReference' },
        resource: {
          resourceType: 'DocumentReference',
          status: 'current',
          subject: { reference: 'urn:uuid:11111111-1111-4111-8111-111111111111' },
          content: [{ attachment: { contentType: 'text/plain; charset=utf-8', data: Buffer.from(note).toString('base64') } }],
        },
      },
    ],
  });
  expect(res.status).toBe(200);
  const docUrl = res.body.entry[1].response.location.replace(/\/_history\/.*$/, '');
  const doc = await s.request('GET', docUrl);
  const attachment = doc.body.content[0].attachment;
  expect(attachment).toMatchObject({ url: expect.stringMatching(/^Binary\//), size: Buffer.byteLength(note), hash: createHash('sha1').update(note).digest('base64') });
  expect(attachment.data).toBeUndefined();
  const bytes = await raw(s, 'GET', `/fhir/${attachment.url}`, undefined, { accept: '*/*' });
  expect(bytes.status).toBe(200);
  expect(bytes.headers.get('content-type')).toBe('text/plain; charset=utf-8');
  expect(bytes.bytes.toString()).toBe(note);
});

test('the orphan sweep removes an object no row names (an upload whose write never committed) and nothing else', async () => {
  const kept = await raw(s, 'POST', '/fhir/Binary', Buffer.from('kept'), { 'content-type': 'text/plain' });
  const blobs = createBlobs({ ...s.config.blobs, dataDir: s.dataDir });
  const orphan = await blobs.upload(randomUUID(), '', 'text/plain', Readable.from([Buffer.from('never committed')]));
  const before = objects();
  expect(await blobs.sweepOrphans(s.db, 0)).toBe(1);
  expect(objects()).toBe(before - 1);
  await expect(blobs.store.get(orphan.objectKey)).rejects.toThrow();
  expect((await raw(s, 'GET', `/fhir/Binary/${kept.json.id}`, undefined, { accept: '*/*' })).bytes.toString()).toBe('kept');
});

test('a Binary stored before encryption (bytes still in its JSON) still downloads raw, whole and in ranges', async () => {
  const id = randomUUID();
  const legacy = { resourceType: 'Binary', id, contentType: 'text/plain', data: Buffer.from('legacy bytes').toString('base64') };
  // written as the server did before issue 13: straight into storage, not through the Binary workflow
  const { writeVersion } = await import('../../src/storage/repository');
  await writeVersion(s.db, { resourceType: 'Binary', id, versionId: 1, method: 'POST', lastUpdated: new Date().toISOString(), resource: { ...legacy, meta: { versionId: '1', lastUpdated: new Date().toISOString() } } as never }, s.fhirBase);
  const whole = await raw(s, 'GET', `/fhir/Binary/${id}`, undefined, { accept: '*/*' });
  expect(whole.status).toBe(200);
  expect(whole.bytes.toString()).toBe('legacy bytes');
  const part = await raw(s, 'GET', `/fhir/Binary/${id}`, undefined, { accept: '*/*', range: 'bytes=7-' });
  expect(part.status).toBe(206);
  expect(part.bytes.toString()).toBe('bytes');
});
