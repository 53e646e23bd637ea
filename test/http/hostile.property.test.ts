/**
 * Hostile input, generated (issue 16): fast-check builds paths, search queries, resources, Bundles, patches and raw
 * bytes around the shapes the server understands, and every answer must be a non-5xx with an OperationOutcome
 * for each refusal; refused writes store nothing. HOSTILE_RUNS raises the number of runs per property (default 150)
 * when hunting; a failure prints the seed and the shrunk counterexample.
 */
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { startServer, type TestServer } from '../helpers/server';

let s: TestServer;
let token: string;
let patientId: string;
const MARK = { system: 'urn:test:hostile-property', code: randomUUID() };
/** Writes the server acknowledged (2xx) with the marker: the stored count must equal it. */
const acknowledged = new Set<string>();

const RUNS = Number(process.env.HOSTILE_RUNS ?? 150);
jest.setTimeout(300_000);

beforeAll(async () => {
  s = await startServer();
  token = await s.adminToken();
  const created = await s.request('POST', '/fhir/Patient', { resourceType: 'Patient', name: [{ family: 'Target' }] });
  patientId = created.body.id;
});
afterAll(async () => {
  await s.close();
});

interface Answer {
  status: number;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

async function send(method: string, path: string, body?: string | Uint8Array, contentType = 'application/fhir+json'): Promise<Answer> {
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: 'application/fhir+json' };
  if (body !== undefined) headers['content-type'] = contentType;
  const res = await fetch(`${s.baseUrl}${path}`, { method, headers, body: typeof body === 'string' || body === undefined ? body : Buffer.from(body) });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: res.status, text, body: parsed };
}

/** The property every answer has: no 5xx, and a refusal is an OperationOutcome. */
function wellBehaved(what: string, a: Answer): boolean {
  if (a.status >= 500) throw new Error(`${what}: ${a.status} ${a.text.slice(0, 500)}`);
  if (a.status >= 400 && a.body?.resourceType !== 'OperationOutcome') throw new Error(`${what}: ${a.status} without an OperationOutcome: ${a.text.slice(0, 300)}`);
  return true;
}

/** Strings an attacker reaches for: control characters, surrogates, separators, encodings, long runs. */
const nasty = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.string({ unit: 'grapheme', maxLength: 30 }),
  fc.constantFrom('\u0000', '\ud800', '\udfff', '%', '%00', '%ZZ', '%E0%A4%A', ',', '|', '$', '\\', '/', '..', '../..', '?', '&', '=', '#', '\ufeff', 'javascript:x', 'urn:uuid:x'),
  fc.integer({ min: 1, max: 5000 }).map((n) => 'a'.repeat(n)),
  fc.integer({ min: 2, max: 400 }).map((n) => Array.from({ length: n }, (_, i) => `v${i}`).join(',')),
);

/** encodeURIComponent, except that an unpaired surrogate (which it refuses) goes as the bytes of U+FFFD. */
function encode(v: string): string {
  try {
    return encodeURIComponent(v);
  } catch {
    return [...Buffer.from(v, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
  }
}

/** A path segment, sometimes percent-encoded, sometimes raw. */
const segment = fc.oneof(
  fc.constantFrom('Patient', 'Observation', 'Bundle', 'Binary', '_history', '_search', '$validate', '$reindex', 'metadata', 'Nope', '1', '_history'),
  fc.constant('PATIENT_ID'),
  nasty.map((v) => encode(v)),
  nasty.map((v) => v.replace(/[/?#]/g, '')),
);

const PARAMS = ['name', 'family', 'given', 'identifier', 'birthdate', 'gender', '_id', '_lastUpdated', '_tag', '_sort', '_count', '_total', '_include', '_revinclude', '_has:Observation:subject:code', 'subject', 'subject:Patient.name', 'organization.name', 'code', 'value-quantity', 'date', 'near', '_elements', '_summary', '_cursor', '_text', '_content', 'general-practitioner', '_type'];
const MODIFIERS = ['', ':exact', ':contains', ':missing', ':not', ':text', ':above', ':below', ':in', ':identifier', ':of-type', ':Patient', ':nope'];
const PREFIXES = ['', 'eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap', 'zz'];
const searchValue = fc.oneof(
  nasty,
  fc.tuple(fc.constantFrom(...PREFIXES), fc.oneof(fc.date({ noInvalidDate: true }).map((d) => d.toISOString()), fc.double().map(String), fc.constantFrom('2020', '2020-13', '2020-02-30T25:00'))).map(([p, v]) => p + v),
  fc.tuple(nasty, nasty).map(([a, b]) => `${a}|${b}`),
  fc.tuple(fc.double(), fc.constantFrom('', '|http://unitsofmeasure.org|mg', '||km')).map(([n, u]) => `${n}${u}`),
);
const plain = fc.oneof(fc.stringMatching(/^[a-zA-Z0-9 ]{1,12}$/), fc.constantFrom('Target', 'male', 'final', '2020-01-01', 'gt2000', 'Patient/PATIENT_ID', 'PATIENT_ID', 'urn:test|x', '-_lastUpdated', 'Observation:subject', '5', 'true', 'count'));
// Mostly plausible parameters, so that the hostile part reaches the search code rather than the first check.
const query = fc.array(
  fc.tuple(
    fc.constantFrom(...PARAMS),
    fc.oneof({ arbitrary: fc.constant(''), weight: 4 }, { arbitrary: fc.constantFrom(...MODIFIERS), weight: 1 }),
    fc.oneof({ arbitrary: plain, weight: 2 }, { arbitrary: searchValue, weight: 1 }),
    fc.boolean(),
  ),
  { maxLength: 6 },
).map((pairs) =>
  pairs.map(([name, modifier, value, raw]) => `${encode(name + modifier)}=${raw ? value.replace(/[&#\s]/g, '') : encode(value)}`).join('&'),
);

/** A Patient with some of its elements replaced by anything JSON can hold. */
const PATIENT_KEYS = ['id', 'text', 'contained', 'extension', 'identifier', 'active', 'name', 'telecom', 'gender', 'birthDate', '_birthDate', 'deceasedBoolean', 'deceasedDateTime', 'address', 'maritalStatus', 'photo', 'contact', 'communication', 'generalPractitioner', 'managingOrganization', 'link', 'unknownThing'];
const jsonish = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  nasty,
  fc.constantFrom({ reference: 'Patient/../../x' }, [{ reference: 'javascript:alert(1)' }], [{ reference: `Patient/${'x'.repeat(70)}` }], [{ resourceType: 'Patient', id: 'a' }, { resourceType: 'Patient', id: 'a' }], [{ family: '\ud800' }], [null], []),
);
const patient = fc.dictionary(fc.constantFrom(...PATIENT_KEYS), jsonish, { maxKeys: 4 }).map((fields) => ({ resourceType: 'Patient', ...fields, meta: { tag: [MARK] } }));

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'get', 'TRACE', 'constructor', '__proto__'];
const goodPatient = fc.record({ gender: fc.constantFrom('male', 'female'), name: fc.constant([{ family: 'Generated' }]) }).map((p) => ({ resourceType: 'Patient', ...p, meta: { tag: [MARK] } }));
const goodEntry = fc.oneof(
  goodPatient.map((resource) => ({ fullUrl: `urn:uuid:${randomUUID()}`, resource, request: { method: 'POST', url: 'Patient' } })),
  fc.constant({ request: { method: 'GET', url: 'Patient/PATIENT_ID' } }),
  fc.constant({ request: { method: 'GET', url: 'Patient?name=Target' } }),
  goodPatient.map((resource) => ({ resource, request: { method: 'POST', url: 'Patient', ifNoneExist: 'identifier=urn:test|none' } })),
);
const entry = fc.oneof(
  { arbitrary: goodEntry, weight: 3 },
  fc.jsonValue({ maxDepth: 2 }),
  fc.record(
    {
      fullUrl: fc.oneof(fc.constant(`urn:uuid:${randomUUID()}`), fc.constant('urn:uuid:11111111-1111-4111-8111-111111111111'), nasty, fc.integer()),
      resource: fc.oneof(patient, fc.jsonValue({ maxDepth: 2 }), fc.constant({ resourceType: 'Bundle', type: 'batch', entry: [] })),
      request: fc.oneof(
        fc.record({ method: fc.oneof(fc.constantFrom(...METHODS), fc.jsonValue({ maxDepth: 1 })), url: fc.oneof(fc.constantFrom('Patient', `Patient/${randomUUID()}`, 'Patient?identifier=a|b', '', '/', 'Nope', 'Patient/PATIENT_ID'), nasty, fc.integer()) }, { requiredKeys: [] }),
        fc.jsonValue({ maxDepth: 1 }),
      ),
    },
    { requiredKeys: [] },
  ),
);
const bundle = fc.record({ type: fc.constantFrom('batch', 'transaction', 'batch', 'transaction', 'collection'), entry: fc.oneof(fc.array(entry, { maxLength: 6 }), fc.jsonValue({ maxDepth: 1 })) }, { requiredKeys: ['type'] });

const pointer = fc.oneof(
  fc.constantFrom('', '/', '/name', '/name/0', '/name/01', '/name/-', '/name/0/family', '/id', '/resourceType', '/meta', '/__proto__/x', '/gender', '/birthDate', '/extension/0', '/a~2b', '/a~1b'),
  nasty,
);
const jsonPatch = fc.oneof(
  fc.array(fc.record({ op: fc.oneof(fc.constantFrom('add', 'remove', 'replace', 'move', 'copy', 'test'), nasty), path: pointer, from: pointer, value: jsonish }, { requiredKeys: ['op'] }), { maxLength: 4 }),
  fc.jsonValue({ maxDepth: 2 }),
);

const fill = (text: string) => text.replaceAll('PATIENT_ID', patientId);

test('any path', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(segment, { minLength: 1, maxLength: 5 }), fc.constantFrom('GET', 'DELETE', 'HEAD'), async (segments, method) => {
      const path = fill(`/fhir/${segments.join('/')}`);
      // DELETE only where it cannot remove the test's own patient
      if (method === 'DELETE' && path.includes(patientId)) return true;
      const a = await send(method, path);
      return method === 'HEAD' ? a.status < 500 : wellBehaved(`${method} ${path}`, a);
    }),
    { numRuns: RUNS * 2 },
  );
});

test('any search', async () => {
  await fc.assert(
    fc.asyncProperty(fc.constantFrom('Patient', 'Observation', ''), query, fc.boolean(), async (type, q, post) => {
      q = fill(q);
      const a = post ? await send('POST', `/fhir/${type ? `${type}/` : ''}_search`, q, 'application/x-www-form-urlencoded') : await send('GET', `/fhir/${type}?${q}`);
      wellBehaved(`search ${type}?${q.slice(0, 300)}`, a);
      if (a.status === 200 && a.body?.resourceType !== 'Bundle') throw new Error(`search ${type}?${q}: 200 without a Bundle`);
      return true;
    }),
    { numRuns: RUNS * 2 },
  );
});

test('any resource, created or updated', async () => {
  await fc.assert(
    fc.asyncProperty(patient, fc.boolean(), async (resource, update) => {
      const id = update ? randomUUID() : undefined;
      const a = update ? await send('PUT', `/fhir/Patient/${id}`, JSON.stringify({ ...resource, id })) : await send('POST', '/fhir/Patient', JSON.stringify(resource));
      wellBehaved('write Patient', a);
      if (a.status === 200 || a.status === 201) acknowledged.add(a.body.id);
      return true;
    }),
    { numRuns: RUNS * 2 },
  );
});

test('any batch or transaction', async () => {
  await fc.assert(
    fc.asyncProperty(bundle, async (b) => {
      const a = await send('POST', '/fhir', fill(JSON.stringify({ resourceType: 'Bundle', ...b })));
      wellBehaved('Bundle', a);
      for (const e of (a.status === 200 && Array.isArray(a.body?.entry) ? a.body.entry : []) as { response?: { status?: string; location?: string }; resource?: { resourceType?: string; id?: string; meta?: { tag?: { code?: string }[] } } }[]) {
        if (e.response?.status && Number.parseInt(e.response.status, 10) >= 500) throw new Error(`Bundle entry answered ${e.response.status}`);
        if (e.resource?.resourceType === 'Patient' && e.resource.meta?.tag?.some((t) => t.code === MARK.code) && e.resource.id) acknowledged.add(e.resource.id);
      }
      return true;
    }),
    { numRuns: RUNS },
  );
});

test('any JSON Patch', async () => {
  await fc.assert(
    fc.asyncProperty(jsonPatch, async (p) => {
      const a = await send('PATCH', `/fhir/Patient/${patientId}`, JSON.stringify(p), 'application/json-patch+json');
      return wellBehaved('PATCH', a);
    }),
    { numRuns: RUNS },
  );
});

test('any bytes, as any content type', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(fc.uint8Array({ maxLength: 200 }), patient.map((p) => new TextEncoder().encode(JSON.stringify(p)))),
      fc.constantFrom('application/fhir+json', 'application/json', 'application/x-www-form-urlencoded', 'application/json-patch+json', 'text/plain', 'application/fhir+json; charset=latin1'),
      fc.constantFrom('/fhir/Patient', '/fhir', '/fhir/Patient/_search', '/fhir/Patient/$validate'),
      async (bytes, contentType, path) => {
        const a = await send('POST', path, bytes, contentType);
        wellBehaved(`POST ${path} (${contentType})`, a);
        if (path === '/fhir/Patient' && a.status === 201) acknowledged.add(a.body.id);
        return true;
      },
    ),
    { numRuns: RUNS },
  );
});

test('what was stored is exactly what was acknowledged (runs last)', async () => {
  const stored = new Set<string>();
  let next: string | undefined = `/fhir/Patient?_tag=${encodeURIComponent(`${MARK.system}|${MARK.code}`)}&_count=100&_elements=id`;
  while (next) {
    const res = await s.request('GET', next);
    expect(res.status).toBe(200);
    for (const e of res.body.entry ?? []) stored.add(e.resource.id);
    next = res.body.link?.find((l: { relation: string }) => l.relation === 'next')?.url;
  }
  expect([...stored].sort()).toEqual([...acknowledged].sort());
  // The server is still up
  expect((await fetch(`${s.baseUrl}/healthz`)).status).toBe(200);
});
