/**
 * HEAD is allowed wherever GET is (https://www.rfc-editor.org/rfc/rfc9110#name-head), with the same status and
 * headers and no body, and needs a token exactly where GET does.
 */
import { startServer, type TestServer } from '../helpers/server';

let s: TestServer;
beforeAll(async () => {
  s = await startServer();
});
afterAll(() => s.close());

const PUBLIC = ['/healthz', '/readyz', '/metrics', '/fhir/metadata', '/.well-known/smart-configuration', '/fhir/.well-known/smart-configuration', '/oauth2/jwks', '/.well-known/openid-configuration'];

test.each(PUBLIC)('HEAD %s answers as GET does, without a token and without a body', async (path) => {
  const get = await s.request('GET', path, undefined, { authorization: '' });
  const head = await s.request('HEAD', path, undefined, { authorization: '' });
  expect(get.status).toBe(200);
  expect(head.status).toBe(200);
  expect(head.text).toBe('');
  expect(head.headers.get('content-type')).toBe(get.headers.get('content-type'));
});

test('HEAD on a resource needs a token as GET does, and answers its version headers', async () => {
  const created = await s.request('POST', '/fhir/Patient', { resourceType: 'Patient', name: [{ family: 'Head' }] });
  expect(created.status).toBe(201);
  const anonymous = await s.request('HEAD', `/fhir/Patient/${created.body.id}`, undefined, { authorization: '' });
  expect(anonymous.status).toBe(401);
  expect(anonymous.headers.get('www-authenticate')).toMatch(/^Bearer/);
  const head = await s.request('HEAD', `/fhir/Patient/${created.body.id}`);
  expect(head.status).toBe(200);
  expect(head.headers.get('etag')).toBe('W/"1"');
  expect(head.text).toBe('');
  const search = await s.request('HEAD', `/fhir/Patient?_id=${created.body.id}`);
  expect(search.status).toBe(200);
});
