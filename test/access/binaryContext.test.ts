/**
 * A Binary whose securityContext is a resource has that resource's access (issue 11 item 5), for writes as for
 * reads: the patient whose DocumentReference it belongs to creates, reads, updates, patches and deletes it;
 * another patient gets what an id never used gets, and writes nothing.
 */
import { randomUUID } from 'node:crypto';
import { startServer, type TestServer } from '../helpers/server';
import { adminCreate, documentReference, setUpCallers, type Caller } from './oracleCallers';

let s: TestServer;
let a: Caller;
let b: Caller;

beforeAll(async () => {
  s = await startServer();
  const { callers } = await setUpCallers(s);
  a = callers.find((c) => c.name === 'patientA[*.cruds]') as Caller;
  b = callers.find((c) => c.name === 'patientB[*.cruds]') as Caller;
}, 120_000);
afterAll(() => s?.close());

const as = (c: Caller, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
  s.request(method, path, body, { authorization: `Bearer ${c.token}`, ...headers });
const binary = (docId: string, text: string) => ({
  resourceType: 'Binary',
  contentType: 'text/plain',
  data: Buffer.from(text).toString('base64'),
  securityContext: { reference: `DocumentReference/${docId}` },
});

test("the owner of the DocumentReference writes its Binary; another patient cannot tell it exists", async () => {
  const doc = await as(a, 'POST', '/fhir/DocumentReference', documentReference(a.self as string, randomUUID()));
  expect(doc.status).toBe(201);
  const created = await as(a, 'POST', '/fhir/Binary', binary(doc.body.id, 'exam v1'));
  expect(created.status).toBe(201);
  const id = created.body.id;
  expect((await as(a, 'GET', `/fhir/Binary/${id}`)).status).toBe(200);
  expect((await as(a, 'PUT', `/fhir/Binary/${id}`, { ...binary(doc.body.id, 'exam v2'), id })).status).toBe(200);
  const patched = await as(a, 'PATCH', `/fhir/Binary/${id}`, [{ op: 'replace', path: '/contentType', value: 'application/pdf' }], {
    'content-type': 'application/json-patch+json',
  });
  expect(patched.status).toBe(200);

  // Patient B: the same answers as for an id never used
  const never = randomUUID();
  for (const [method, body, headers] of [
    ['GET', undefined, {}],
    ['PATCH', [{ op: 'test', path: '/contentType', value: 'application/pdf' }], { 'content-type': 'application/json-patch+json' }],
    ['DELETE', undefined, {}],
  ] as [string, unknown, Record<string, string>][]) {
    const theirs = await as(b, method, `/fhir/Binary/${id}`, body, headers);
    const none = await as(b, method, `/fhir/Binary/${never}`, body, headers);
    expect([method, theirs.status]).toEqual([method, none.status]);
    expect(theirs.text.replace(id, never)).toBe(none.text);
  }
  // B cannot attach a Binary to A's document either
  const foreign = await as(b, 'POST', '/fhir/Binary', binary(doc.body.id, 'planted'));
  expect(foreign.status).toBeGreaterThanOrEqual(400);
  expect(foreign.status).toBeLessThan(500);

  const stored = await s.request('GET', `/fhir/Binary/${id}`);
  expect(Buffer.from(stored.body.data, 'base64').toString()).toBe('exam v2');
  expect(stored.body.meta.versionId).toBe('3');

  expect((await as(a, 'DELETE', `/fhir/Binary/${id}`)).status).toBe(200);
});

test("a Binary of another patient's document is refused on create, even by a patient with Binary.c", async () => {
  const theirs = await adminCreate(s, documentReference(b.self as string, randomUUID()));
  const res = await as(a, 'POST', '/fhir/Binary', binary(theirs.id, 'x'));
  expect(res.status).toBeGreaterThanOrEqual(400);
  expect(res.status).toBeLessThan(500);
  expect(res.body.resourceType).toBe('OperationOutcome');
});
