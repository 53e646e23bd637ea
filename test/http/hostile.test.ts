/**
 * Hostile input (issue 16), as a table: every case an attacker tried answers a 4xx OperationOutcome (never a 5xx,
 * never an empty body), nothing from a refused input is stored, and no request hangs. The raw-socket cases
 * (malformed request lines, bad chunking, huge headers, Expect, CONNECT) are in hostileProtocol.test.ts; random
 * inputs in hostile.property.test.ts.
 */
import { randomUUID } from 'node:crypto';
import { startServer, type TestServer } from '../helpers/server';

let s: TestServer;
/** Every resource a case tries to write carries this tag, so "nothing stored" is one search at the end. */
const MARK = { system: 'urn:test:hostile', code: randomUUID() };
const meta = { tag: [MARK] };
let patientId: string;

beforeAll(async () => {
  s = await startServer();
  const created = await s.request('POST', '/fhir/Patient', { resourceType: 'Patient', name: [{ family: 'Target' }] });
  expect(created.status).toBe(201);
  patientId = created.body.id;
});
afterAll(async () => {
  await s.close();
});

/** A request must be answered well inside this (a hang detector, not a performance assertion). */
const HANG_MS = 15_000;

interface Case {
  method: string;
  path: string;
  body?: unknown;
  headers?: Record<string, string>;
  status: number | number[];
  /** A substring of some issue's diagnostics. */
  says?: RegExp;
}

let refused = 0;

async function expectRefused(c: Case): Promise<{ issue: { diagnostics?: string }[] }> {
  refused++;
  const started = performance.now();
  const res = await s.request(c.method, c.path, c.body, c.headers);
  const ms = performance.now() - started;
  expect(ms).toBeLessThan(HANG_MS);
  const statuses = Array.isArray(c.status) ? c.status : [c.status];
  if (!statuses.includes(res.status)) throw new Error(`${c.method} ${c.path.slice(0, 80)}: expected ${statuses.join('|')}, got ${res.status} ${res.text.slice(0, 300)}`);
  expect(res.body?.resourceType).toBe('OperationOutcome');
  expect(res.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
  if (c.says) expect(res.body.issue.map((i: { diagnostics?: string }) => i.diagnostics ?? '').join('\n')).toMatch(c.says);
  return res.body;
}

const patient = (extra: Record<string, unknown> = {}) => ({ resourceType: 'Patient', meta, ...extra });
const observation = (extra: Record<string, unknown> = {}) => ({ resourceType: 'Observation', meta, status: 'final', code: { text: 'x' }, ...extra });
const transaction = (entry: unknown[]) => ({ resourceType: 'Bundle', type: 'transaction', entry });
const batch = (entry: unknown[]) => ({ resourceType: 'Bundle', type: 'batch', entry });
const post = (resource: unknown, fullUrl?: string) => ({ ...(fullUrl ? { fullUrl } : {}), resource, request: { method: 'POST', url: (resource as { resourceType: string }).resourceType } });

describe('paths and search values', () => {
  test.each<[string, Case]>([
    ['a malformed percent-encoding in the path', { method: 'GET', path: '/fhir/Patient/%', status: 400 }],
    ['a truncated UTF-8 percent-encoding', { method: 'GET', path: '/fhir/Patient/%E0%A4%A', status: 400 }],
    ['a NUL in a search value', { method: 'GET', path: '/fhir/Patient?name=%00', status: 400 }],
    ['a NUL in a token search value', { method: 'GET', path: '/fhir/Patient?identifier=a%7C%00', status: 400 }],
    ['a NUL in a cursor', { method: 'GET', path: '/fhir/Patient?_cursor=%00', status: 400 }],
    ['a cursor of the wrong length', { method: 'GET', path: `/fhir/Patient?_cursor=${Buffer.from('[1]').toString('base64url')}`, status: 400 }],
    ['a history cursor of the wrong length', { method: 'GET', path: `/fhir/Patient/_history?_cursor=${Buffer.from('[1,2,3,4,5]').toString('base64url')}`, status: 400 }],
    ['200 repeats of one parameter', { method: 'GET', path: `/fhir/Patient?${Array.from({ length: 200 }, () => 'name=a').join('&')}`, status: 400, says: /SEARCH_MAX_REPEATS/ }],
    ['a chain 100 deep', { method: 'GET', path: `/fhir/Observation?subject:Patient.${Array.from({ length: 100 }, () => 'organization').join('.')}.name=x`, status: 400 }],
  ])('%s', async (_what, c) => {
    await expectRefused(c);
  });

  test('a 50,000-value comma list (POSTed search: the URL would be too long)', async () => {
    const values = Array.from({ length: 50_000 }, (_, i) => `id${i}`).join(',');
    await expectRefused({ method: 'POST', path: '/fhir/Patient/_search', body: `_id=${values}`, headers: { 'content-type': 'application/x-www-form-urlencoded' }, status: 400, says: /SEARCH_MAX_OR_VALUES/ });
  });
});

describe('bodies that are not what they claim', () => {
  test.each<[string, Case]>([
    ['a lone surrogate in a string', { method: 'POST', path: '/fhir/Patient', body: '{"resourceType":"Patient","meta":{"tag":[' + JSON.stringify(MARK) + ']},"name":[{"family":"\\ud800"}]}', status: 400, says: /unpaired surrogate/ }],
    ['a NUL in a string', { method: 'POST', path: '/fhir/Patient', body: patient({ name: [{ family: 'a\u0000b' }] }), status: 400 }],
    ['a code outside a required value set (gender)', { method: 'POST', path: '/fhir/Patient', body: patient({ gender: 'nope' }), status: 400, says: /administrative-gender/ }],
    ['a code outside a required value set (Observation.status)', { method: 'POST', path: '/fhir/Observation', body: observation({ status: 'bogus' }), status: 400, says: /observation-status/ }],
    ['an update with a bad code', { method: 'PUT', path: `/fhir/Patient/${randomUUID()}`, body: patient({ gender: 'nope' }), status: 400 }],
  ])('%s', async (_what, c) => {
    await expectRefused(c);
  });

  test('invalid UTF-8 is refused, not stored with U+FFFD', async () => {
    const json = Buffer.from('{"resourceType":"Patient","meta":{"tag":[' + JSON.stringify(MARK) + ']},"name":[{"family":"Jo\u00e3o"}]}');
    const at = json.indexOf(0xc3);
    const bad = Buffer.concat([json.subarray(0, at), Buffer.from([0xc3, 0x28]), json.subarray(at + 2)]);
    const res = await fetch(`${s.fhirBase}/Patient`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await s.adminToken()}`, 'content-type': 'application/fhir+json' },
      body: bad,
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { resourceType: string }).resourceType).toBe('OperationOutcome');
  });

  test('the OAuth endpoints decode strictly too (an OAuth error, RFC 6749 section 5.2)', async () => {
    const bad = Buffer.concat([Buffer.from('grant_type=client_credentials&scope=system%2F*.*&x='), Buffer.from([0xc3, 0x28])]);
    const res = await fetch(`${s.baseUrl}/oauth2/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from('test-admin:test-admin-secret-0123456789abcdef').toString('base64')}` },
      body: bad,
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_request', error_description: expect.stringMatching(/UTF-8/) });
  });

  test('one BOM is accepted, two are not', async () => {
    const body = JSON.stringify(patient({ name: [{ family: 'Bom' }] }));
    const once = await s.request('POST', '/fhir/Patient', `\ufeff${body}`);
    expect(once.status).toBe(201);
    await s.request('DELETE', `/fhir/Patient/${once.body.id}`);
    await expectRefused({ method: 'POST', path: '/fhir/Patient', body: `\ufeff\ufeff${body}`, status: 400 });
  });

  test('a 2 MB body of 1,000,000 bad extensions gets a short OperationOutcome', async () => {
    const body = `{"resourceType":"Patient","meta":{"tag":[${JSON.stringify(MARK)}]},"extension":[${Array.from({ length: 1_000_000 }, () => '1').join(',')}]}`;
    const res = await s.request('POST', '/fhir/Patient', body);
    expect(res.status).toBe(400);
    expect(res.body.issue.length).toBeLessThanOrEqual(101);
    expect(res.body.issue[res.body.issue.length - 1].diagnostics).toMatch(/more issue\(s\) not listed/);
    expect(res.text.length).toBeLessThan(100_000);
  });
});

describe('references', () => {
  test.each<[string, unknown, RegExp]>([
    ['a path that climbs', { reference: 'Patient/../../x' }, /Invalid reference/],
    ['javascript:', { reference: 'javascript:alert(1)' }, /Invalid reference/],
    ['file:', { reference: 'file:///etc/passwd' }, /Invalid reference/],
    ['an id of 100 KB', { reference: `Patient/${'a'.repeat(100_000)}` }, /Invalid reference/],
    ['an unknown type', { reference: 'Nope/1' }, /unknown resource type/],
    ['a type the element does not allow', { reference: 'Practitioner/1' }, /may refer to Patient, Group, Device, Location, not Practitioner/],
    ['Reference.type contradicting the reference', { reference: 'Patient/1', type: 'Group' }, /Reference.type says Group/],
  ])('%s', async (_what, subject, says) => {
    await expectRefused({ method: 'POST', path: '/fhir/Observation', body: observation({ subject }), status: 400, says });
  });

  test('urn:uuid outside a transaction', async () => {
    await expectRefused({ method: 'POST', path: '/fhir/Observation', body: observation({ subject: { reference: `urn:uuid:${randomUUID()}` } }), status: 400, says: /not in a transaction/ });
  });

  test('two contained resources with one id', async () => {
    const body = observation({ subject: { reference: '#p' }, contained: [{ resourceType: 'Patient', id: 'p' }, { resourceType: 'Patient', id: 'p' }] });
    await expectRefused({ method: 'POST', path: '/fhir/Observation', body, status: 400, says: /Two contained resources have the id 'p'/ });
  });
});

describe('batch and transaction Bundles', () => {
  test.each<[string, unknown]>([
    ['a null entry', { resourceType: 'Bundle', type: 'batch', entry: [null] }],
    ['entry as an object', { resourceType: 'Bundle', type: 'batch', entry: {} }],
    ['entry as a string', { resourceType: 'Bundle', type: 'transaction', entry: 'x' }],
    ['a number for method', batch([{ resource: patient(), request: { method: 123, url: 'Patient' } }])],
    ['a number for url', transaction([{ resource: patient(), request: { method: 'POST', url: 123 } }])],
    ['a string for request', batch([{ request: 'GET Patient' }])],
    ['an array for resource', transaction([{ resource: [], request: { method: 'POST', url: 'Patient' } }])],
    ['a number for fullUrl', transaction([{ fullUrl: 1, resource: patient(), request: { method: 'POST', url: 'Patient' } }])],
    ['a method that is a prototype member', batch([{ request: { method: 'constructor', url: 'Patient' } }])],
    ['two entries sharing a fullUrl (bdl-7)', transaction([post(patient(), 'urn:uuid:8c8b5a4e-0000-4000-8000-000000000001'), post(patient(), 'urn:uuid:8c8b5a4e-0000-4000-8000-000000000001')])],
    ['a nested batch', batch([{ resource: batch([post(patient())]), request: { method: 'POST', url: '/' } }])],
    ['a nested transaction', transaction([{ resource: transaction([post(patient())]), request: { method: 'POST', url: '' } }])],
  ])('%s', async (_what, body) => {
    await expectRefused({ method: 'POST', path: '/fhir', body, status: 400 });
  });

  test('more entries than BUNDLE_MAX_ENTRIES', async () => {
    const entries = Array.from({ length: s.config.limits.bundleMaxEntries + 1 }, () => post(patient()));
    await expectRefused({ method: 'POST', path: '/fhir', body: transaction(entries), status: 400, says: /BUNDLE_MAX_ENTRIES/ });
  });

  test('a large transaction with a bad last entry is refused before anything is written, and the server stays responsive', async () => {
    const entries = [...Array.from({ length: 3000 }, () => post(patient({ name: [{ family: 'Many' }] }))), post(patient({ gender: 'nope' }))];
    const during = (async () => {
      await new Promise((r) => setTimeout(r, 50));
      return (await fetch(`${s.baseUrl}/healthz`)).status;
    })();
    const body = await expectRefused({ method: 'POST', path: '/fhir', body: transaction(entries), status: 400, says: /Bundle.entry\[3000\]/ });
    expect(body.issue).toHaveLength(1);
    expect(await during).toBe(200);
  });

  test('a stored Bundle resource (a document) is not run as a batch', async () => {
    const doc = { resourceType: 'Bundle', meta, type: 'collection', entry: [{ fullUrl: `urn:uuid:${randomUUID()}`, resource: { resourceType: 'Patient' } }] };
    const res = await s.request('POST', '/fhir/Bundle', doc);
    expect(res.status).toBe(201);
    await s.request('DELETE', `/fhir/Bundle/${res.body.id}`);
  });
});

describe('patches', () => {
  test('a JSON Patch array index with a leading zero', async () => {
    await expectRefused({
      method: 'PATCH',
      path: `/fhir/Patient/${patientId}`,
      body: [{ op: 'replace', path: '/name/00', value: { family: 'x' } }],
      headers: { 'content-type': 'application/json-patch+json' },
      status: 400,
      says: /leading zero/,
    });
  });
});

test('$validate reports what a write refuses', async () => {
  const res = await s.request('POST', '/fhir/Patient/$validate', { resourceType: 'Patient', gender: 'nope' });
  expect(res.status).toBe(200);
  expect(res.body.issue).toEqual([expect.objectContaining({ severity: 'error', code: 'code-invalid', expression: ['Patient.gender'] })]);
});

test('nothing from a refused input was stored (runs last)', async () => {
  expect(refused).toBeGreaterThan(30);
  // The marker finds what carries it
  const control = await s.request('POST', '/fhir/Patient', patient());
  expect(control.status).toBe(201);
  await s.request('DELETE', `/fhir/Patient/${control.body.id}`);
  for (const type of ['Patient', 'Observation', 'Bundle']) {
    const res = await s.request('GET', `/fhir/${type}?_tag=${encodeURIComponent(`${MARK.system}|${MARK.code}`)}&_total=accurate&_count=0`);
    expect(res.status).toBe(200);
    expect(res.body.total).toBe(0);
  }
});
