/**
 * Who may upload and download (issue 13, https://hl7.org/fhir/R4/binary.html#security): the raw routes go through
 * the same gate and visibility as every FHIR interaction. A patient's upload without X-Security-Context is theirs;
 * another patient gets, for it, exactly the answer of an id never used; nobody attaches bytes to someone else's
 * record (refused before any byte is stored); a token without a Binary scope gets 403; no token, 401.
 */
import { randomUUID } from 'node:crypto';
import { signUp, tokensFor } from '../auth/helpers';
import type { TestServer } from '../helpers/server';
import { raw, startBlobServer } from './support';

let s: TestServer & { dataDir: string };
beforeAll(async () => {
  s = await startBlobServer('access');
}, 120_000);
afterAll(() => s?.close());

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

test("a patient's own upload is theirs; another patient cannot tell it exists, nor attach to it", async () => {
  const ana = await signUp(s);
  const bia = await signUp(s);
  const scope = 'launch/patient openid fhirUser patient/*.cruds';
  const anaToken = (await tokensFor(s, ana.email, scope)).access_token;
  const biaToken = (await tokensFor(s, bia.email, scope)).access_token;

  const up = await raw(s, 'POST', '/fhir/Binary', Buffer.from('%PDF-1.7 exame da Ana'), { ...bearer(anaToken), 'content-type': 'application/pdf' });
  expect(up.status).toBe(201);
  expect(up.json.securityContext).toEqual({ reference: ana.patient });
  const id = up.json.id;
  const mine = await raw(s, 'GET', `/fhir/Binary/${id}`, undefined, { ...bearer(anaToken), accept: '*/*' });
  expect(mine.bytes.toString()).toBe('%PDF-1.7 exame da Ana');

  const never = randomUUID();
  for (const accept of ['*/*', 'application/fhir+json']) {
    const theirs = await raw(s, 'GET', `/fhir/Binary/${id}`, undefined, { ...bearer(biaToken), accept });
    const none = await raw(s, 'GET', `/fhir/Binary/${never}`, undefined, { ...bearer(biaToken), accept });
    expect([accept, theirs.status]).toEqual([accept, 404]);
    expect(theirs.bytes.toString().replace(id, never)).toBe(none.bytes.toString());
  }

  const rows = async () => (await s.db.query<{ n: string }>('SELECT count(*) AS n FROM binary_content')).rows[0].n;
  const before = await rows();
  const planted = await raw(s, 'POST', '/fhir/Binary', Buffer.from('%PDF-1.7 planted'), { ...bearer(biaToken), 'content-type': 'application/pdf', 'x-security-context': ana.patient });
  expect(planted.status).toBeGreaterThanOrEqual(400);
  expect(planted.status).toBeLessThan(500);
  const overwrite = await raw(s, 'PUT', `/fhir/Binary/${id}`, Buffer.from('%PDF-1.7 overwritten'), { ...bearer(biaToken), 'content-type': 'application/pdf' });
  expect(overwrite.status).toBeGreaterThanOrEqual(400);
  expect(overwrite.status).toBeLessThan(500);
  expect(await rows()).toBe(before);
  expect((await raw(s, 'GET', `/fhir/Binary/${id}`, undefined, { ...bearer(anaToken), accept: '*/*' })).bytes.toString()).toBe('%PDF-1.7 exame da Ana');
});

test('scopes are checked on every interaction: 403 without a Binary scope, 401 without a token, 400 for a foreign context', async () => {
  const ana = await signUp(s);
  const obsOnly = (await tokensFor(s, ana.email, 'launch/patient openid fhirUser patient/Observation.rs')).access_token;
  const admin = await raw(s, 'POST', '/fhir/Binary', Buffer.from('text'), { 'content-type': 'text/plain', 'x-security-context': ana.patient });
  expect(admin.status).toBe(201);
  expect((await raw(s, 'GET', `/fhir/Binary/${admin.json.id}`, undefined, { ...bearer(obsOnly), accept: '*/*' })).status).toBe(403);
  expect((await raw(s, 'POST', '/fhir/Binary', Buffer.from('text'), { ...bearer(obsOnly), 'content-type': 'text/plain' })).status).toBe(403);
  const anonymous = await raw(s, 'GET', `/fhir/Binary/${admin.json.id}`, undefined, { authorization: '', accept: '*/*' });
  expect(anonymous.status).toBe(401);
  expect(anonymous.headers.get('www-authenticate')).toMatch(/^Bearer/);
  expect((await raw(s, 'POST', '/fhir/Binary', Buffer.from('text'), { authorization: '', 'content-type': 'text/plain' })).status).toBe(401);
  const foreign = await raw(s, 'POST', '/fhir/Binary', Buffer.from('text'), { 'content-type': 'text/plain', 'x-security-context': 'http://elsewhere.example.com/fhir/Patient/1' });
  expect(foreign.status).toBe(400);
});
