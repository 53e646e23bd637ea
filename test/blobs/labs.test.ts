/**
 * Labs push results (issue 13, CONTRACT section 6): a confidential backend client with
 * `system/DocumentReference.c system/Binary.c` pushes documents for any patient, as a raw Binary and then a
 * DocumentReference naming it, or as one DocumentReference with inline data; re-pushing the same lab identifier
 * with If-None-Exist never duplicates, also when five pushes arrive at once (and their uploads are discarded:
 * no object without its row); the lab reads nothing, the patient reads both document and bytes.
 */
import { randomUUID } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { clientToken } from '../access/oracleCallers';
import { signUp, tokensFor } from '../auth/helpers';
import type { TestServer } from '../helpers/server';
import { pdfWithMarker, raw, startBlobServer } from './support';

const LAB = 'http://lab.example.com.br/fhir/sid/accession';
let s: TestServer & { dataDir: string };
let lab: string;

beforeAll(async () => {
  s = await startBlobServer('labs');
  lab = await clientToken(s, 'system/DocumentReference.c system/Binary.c');
}, 120_000);
afterAll(() => s?.close());

const asLab = (method: string, path: string, body?: Buffer | string, headers: Record<string, string> = {}) => raw(s, method, path, body, { authorization: `Bearer ${lab}`, ...headers });
const docFor = (patient: string, accession: string, attachment: Record<string, unknown>) =>
  JSON.stringify({
    resourceType: 'DocumentReference',
    status: 'current',
    identifier: [{ system: LAB, value: accession }],
    subject: { reference: patient },
    category: [{ coding: [{ system: 'http://loinc.org', code: '11502-2', display: 'Laboratory report' }] }],
    content: [{ attachment }],
  });
const fhirJson = { 'content-type': 'application/fhir+json' };

test('a lab pushes a raw Binary and its DocumentReference; a re-push does not duplicate; the lab reads nothing', async () => {
  const ana = await signUp(s);
  const bytes = pdfWithMarker(`lab-${randomUUID()}`, 50_000);
  const up = await asLab('POST', '/fhir/Binary', bytes, { 'content-type': 'application/pdf', 'x-security-context': ana.patient });
  expect(up.status).toBe(201);
  const accession = randomUUID();
  const body = docFor(ana.patient, accession, { contentType: 'application/pdf', url: `Binary/${up.json.id}` });
  const first = await asLab('POST', '/fhir/DocumentReference', body, { ...fhirJson, 'if-none-exist': `identifier=${LAB}|${accession}` });
  expect(first.status).toBe(201);
  const again = await asLab('POST', '/fhir/DocumentReference', body, { ...fhirJson, 'if-none-exist': `identifier=${LAB}|${accession}` });
  expect(again.status).toBe(200);
  // The lab may create but not read: it learns its identifier is known, nothing of the document.
  expect(again.headers.get('location')).toBeNull();
  expect(again.bytes.length).toBe(0);

  const docId = first.headers.get('location')?.split('/')[5] as string;
  for (const path of [`/fhir/DocumentReference/${docId}`, `/fhir/Binary/${up.json.id}`, '/fhir/DocumentReference', `/fhir/${ana.patient}`]) {
    const r = await asLab('GET', path, undefined, { accept: '*/*' });
    expect([path, r.status]).toEqual([path, 403]);
  }

  const patient = (await tokensFor(s, ana.email)).access_token;
  const mine = await raw(s, 'GET', `/fhir/Binary/${up.json.id}`, undefined, { authorization: `Bearer ${patient}`, accept: 'application/pdf' });
  expect(mine.status).toBe(200);
  expect(mine.bytes.equals(bytes)).toBe(true);
  const docs = await raw(s, 'GET', `/fhir/DocumentReference?identifier=${encodeURIComponent(`${LAB}|${accession}`)}`, undefined, { authorization: `Bearer ${patient}`, accept: 'application/fhir+json' });
  expect(docs.json.entry).toHaveLength(1);
});

test('five pushes of one document with inline data at once: one DocumentReference, one Binary, no stray object', async () => {
  const ana = await signUp(s);
  const accession = randomUUID();
  const bytes = pdfWithMarker(`lab-inline-${randomUUID()}`, 30_000);
  const body = docFor(ana.patient, accession, { contentType: 'application/pdf', data: bytes.toString('base64'), title: 'hemograma.pdf' });
  const pushes = await Promise.all(
    Array.from({ length: 5 }, () => asLab('POST', '/fhir/DocumentReference', body, { ...fhirJson, 'if-none-exist': `identifier=${LAB}|${accession}` })),
  );
  expect(pushes.map((p) => p.status).sort()).toEqual([200, 200, 200, 200, 201]);
  expect(pushes.filter((p) => p.headers.get('location')).length).toBe(1);

  const found = await s.request('GET', `/fhir/DocumentReference?identifier=${encodeURIComponent(`${LAB}|${accession}`)}`);
  expect(found.body.entry).toHaveLength(1);
  const attachment = found.body.entry[0].resource.content[0].attachment;
  expect(attachment).toMatchObject({ contentType: 'application/pdf', size: bytes.length, url: expect.stringMatching(/^Binary\//) });
  const binary = await s.request('GET', `/fhir/${attachment.url}`);
  expect(binary.body.securityContext).toEqual({ reference: `DocumentReference/${found.body.entry[0].resource.id}` });

  const patient = (await tokensFor(s, ana.email)).access_token;
  const mine = await raw(s, 'GET', `/fhir/${attachment.url}`, undefined, { authorization: `Bearer ${patient}`, accept: '*/*' });
  expect(mine.bytes.equals(bytes)).toBe(true);
  expect((await asLab('GET', `/fhir/${attachment.url}`, undefined, { accept: '*/*' })).status).toBe(403);

  // every object under DATA_DIR is some version's content: the four duplicates' uploads were discarded
  const files = (readdirSync(join(s.dataDir, 'blobs'), { recursive: true }) as string[]).filter((f) => statSync(join(s.dataDir, 'blobs', f)).isFile());
  const keys = new Set((await s.db.query<{ object_key: string }>('SELECT DISTINCT object_key FROM binary_content')).rows.map((r) => r.object_key));
  expect(files.length).toBeGreaterThan(0);
  expect(files.map((f) => f.split(/[\\/]/).join('/')).filter((f) => !keys.has(f))).toEqual([]);
});
