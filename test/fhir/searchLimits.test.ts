/**
 * Hostile search input (issue 16; README "Limits"): a NUL anywhere in a search, a forged page cursor, and a
 * query past the search limits (SEARCH_MAX_OR_VALUES, SEARCH_MAX_REPEATS, SEARCH_MAX_CONDITIONS,
 * SEARCH_MAX_CHAIN_DEPTH) are each a 400 OperationOutcome answered at once, never a 5xx or a query that runs
 * for seconds; searches at the limits still work. https://hl7.org/fhir/R4/search.html#errors
 * Issue codes: https://hl7.org/fhir/R4/valueset-issue-type.html (`invalid`, `too-costly`).
 */
import { startServer, type TestServer, type TestResponse } from '../helpers/server';
import { create, link, newTag, ref, refs, search, type Json } from './search/helpers';

/** No request here may take longer than this (ms). */
const FAST = 5000;

/** The limits this file tests at, whatever the defaults are. */
const LIMITS = { SEARCH_MAX_REPEATS: '10', SEARCH_MAX_OR_VALUES: '100', SEARCH_MAX_CONDITIONS: '200', SEARCH_MAX_CHAIN_DEPTH: '4' };

let s: TestServer;
beforeAll(async () => {
  s = await startServer(LIMITS);
});
afterAll(async () => {
  await s.close();
});

async function timed(server: TestServer, method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<TestResponse> {
  const start = Date.now();
  const res = await server.request(method, path, body, headers);
  expect(Date.now() - start).toBeLessThan(FAST);
  return res;
}

const get = (path: string, server = s) => timed(server, 'GET', `/fhir/${path}`);
const postSearch = (type: string, form: string) => timed(s, 'POST', `/fhir/${type}/_search`, form, { 'content-type': 'application/x-www-form-urlencoded' });

function expectOutcome(res: TestResponse, code: string, diagnostics?: string | RegExp): void {
  expect(res.status).toBe(400);
  expect(res.body?.resourceType).toBe('OperationOutcome');
  expect(res.body.issue[0]).toMatchObject({ severity: 'error', code });
  if (typeof diagnostics === 'string') expect(res.body.issue[0].diagnostics).toBe(diagnostics);
  else if (diagnostics) expect(res.body.issue[0].diagnostics).toMatch(diagnostics);
}

const values = (n: number, prefix = 'v') => Array.from({ length: n }, (_, i) => `${prefix}${i}`);
const repeat = (n: number, param: (i: number) => string) => Array.from({ length: n }, (_, i) => param(i)).join('&');
const base64url = (json: unknown) => Buffer.from(typeof json === 'string' ? json : JSON.stringify(json)).toString('base64url');

describe('NUL characters', () => {
  test.each([
    ['a value', 'Patient?name=%00'],
    ['a value among others', 'Patient?name=a,b%00c'],
    ['a modifier', 'Patient?name:%00=x'],
    ['a parameter name', 'Patient?na%00me=x'],
    ['a chained parameter', 'Observation?subject:Patient.name=x%00'],
    ['a _has value', 'Patient?_has:Observation:subject:code=%00'],
    ['_sort', 'Patient?_sort=family%00'],
    ['_include', 'Patient?_include=Patient:organization%00'],
    ['_cursor', 'Patient?_cursor=%00'],
    ['_count', 'Patient?_count=1%00'],
    ['a system search', '?_type=Patient&name=%00'],
    ['a compartment search', 'Patient/x/Observation?code=%00'],
  ])('in %s is a 400 OperationOutcome', async (_where, path) => {
    const res = await get(path);
    expectOutcome(res, 'invalid', /NUL character/);
  });

  test('in a POST _search form body is a 400', async () => {
    expectOutcome(await postSearch('Patient', 'name=%00'), 'invalid', 'Search parameter name holds a NUL character or an unpaired surrogate');
  });

  test('in conditional create and update criteria is a 400, and nothing is written', async () => {
    const t = newTag();
    const body = { resourceType: 'Patient', meta: { tag: [t.tag] } };
    const created = await timed(s, 'POST', '/fhir/Patient', JSON.stringify(body), { 'if-none-exist': 'name=%00' });
    expectOutcome(created, 'invalid', /NUL character/);
    const updated = await timed(s, 'PUT', '/fhir/Patient?name=%00', JSON.stringify(body));
    expectOutcome(updated, 'invalid', /NUL character/);
    expect(refs(await search(s, `Patient?${t.q}`))).toEqual([]);
  });

  test('a percent-encoded lone surrogate arrives as U+FFFD: searched for, not refused, never a 5xx', async () => {
    const res = await get('Patient?name=%ED%A0%80');
    expect(res.status).toBe(200);
    expect(res.body.resourceType).toBe('Bundle');
  });
});

describe('page cursors', () => {
  /** A real cursor of `Patient?<tag>&_count=1<extra>`, decoded. */
  async function realCursor(extra = ''): Promise<{ path: string; decoded: unknown[] }> {
    const t = newTag();
    for (const birthDate of ['1990-01-01', '1991-01-01', '1992-01-01']) await create(s, t, { resourceType: 'Patient', birthDate });
    const path = `Patient?${t.q}&_count=1${extra}`;
    const next = new URL(link(await search(s, path), 'next')!);
    const decoded = JSON.parse(Buffer.from(next.searchParams.get('_cursor')!, 'base64url').toString('utf8')) as unknown[];
    return { path, decoded };
  }

  test.each([
    ['base64 of [1]', base64url([1])],
    ['base64 of five strings', base64url(['a', 'b', 'c', 'd', 'e'])],
    ['base64 of a string', base64url('x')],
    ['base64 of a JSON string', base64url(JSON.stringify('x'))],
    ['base64 of null', base64url('null')],
    ['base64 of an object', base64url({ values: [] })],
    ['not base64', '!!!not*base64'],
    ['not JSON', base64url('[1,')],
    ['empty', ''],
  ])('%s is a 400 invalid page cursor', async (_what, cursor) => {
    const res = await get(`Patient?_cursor=${encodeURIComponent(cursor)}`);
    expectOutcome(res, 'invalid', 'Invalid page cursor (_cursor): paging links are only valid for the search that made them');
  });

  test('a cursor of the right signature but the wrong shape or values is a 400', async () => {
    const { path, decoded } = await realCursor();
    const [sig, vals, id] = decoded;
    expect((await get(`${path}&_cursor=${base64url(decoded)}`)).status).toBe(200);
    for (const forged of [
      [sig, ['extra key'], id, 0],
      [sig, vals, 123, 0],
      [sig, vals, id, 'backward'],
      [sig, vals, 'x\u0000', 0],
      [sig, vals, 'x\ud800', 0],
      [sig, vals, id],
      [sig, vals, id, 0, 'more'],
    ]) {
      expectOutcome(await get(`${path}&_cursor=${base64url(forged)}`), 'invalid', /Invalid page cursor/);
    }
  });

  test.each([
    ['birthdate', ['not a date', '2024-02-30 00:00:00+00', '2024-01-01 25:00:00+00', '99999999-01-01 00:00:00+00', 'x\u0000']],
    ['_lastUpdated', ['yesterday', '2024-13-01 00:00:00+00', '2024-01-01 00:00:00+99']],
  ])('a cursor for _sort=%s holding a value its key cannot hold is a 400', async (sort, bad) => {
    const { path, decoded } = await realCursor(`&_sort=${sort}`);
    const [sig, vals, id, backward] = decoded;
    // the real one works, forward and backward
    expect((await get(`${path}&_cursor=${base64url(decoded)}`)).status).toBe(200);
    expect((await get(`${path}&_cursor=${base64url([sig, vals, id, 1])}`)).status).toBe(200);
    for (const value of bad) {
      expectOutcome(await get(`${path}&_cursor=${base64url([sig, [value], id, backward])}`), 'invalid', /Invalid page cursor/);
    }
    // values PostgreSQL writes for the key's type are accepted (a cursor at an open period's end is infinity)
    for (const value of ['2024-01-01 00:00:00+00', '2024-01-01 00:00:00.123456+05:30', '0001-12-31 10:00:00+00 BC', 'infinity', null]) {
      expect((await get(`${path}&_cursor=${base64url([sig, [value], id, backward])}`)).status).toBe(200);
    }
  });

  test.each([
    ['base64 of [1]', base64url([1])],
    ['a NUL in the type', base64url(['Pat\u0000ient', 'x', 1])],
    ['a lowercase type', base64url(['patient', 'x', 1])],
    ['a version past bigint', base64url(['Patient', 'x', 1e300])],
    ['not base64', '%%%'],
  ])('a history cursor with %s is a 400', async (_what, cursor) => {
    const res = await get(`Patient/_history?_cursor=${encodeURIComponent(cursor)}`);
    expectOutcome(res, 'invalid', /Invalid _cursor/);
  });
});

describe('SEARCH_MAX_OR_VALUES (100)', () => {
  test('a 50,000-value comma list, POSTed as a form, is a 400 at once', async () => {
    const res = await postSearch('Patient', `_id=${values(50_000).join(',')}`);
    expectOutcome(res, 'too-costly', '_id has 50000 comma-separated values; at most 100 are allowed (SEARCH_MAX_OR_VALUES=100)');
    expect(res.body.issue[0].expression).toEqual(['_id']);
  });

  test('POST _search with a form body searches as GET does', async () => {
    const t = newTag();
    const p = await create(s, t, { resourceType: 'Patient', gender: 'female' });
    const res = await postSearch('Patient', `${t.q}&gender=female`);
    expect(res.status).toBe(200);
    expect(refs(res.body)).toEqual([ref(p)]);
  });

  test('101 values of a token are a 400; 100 values work', async () => {
    expectOutcome(await get(`Patient?identifier=${values(101).join(',')}`), 'too-costly', /identifier has 101 comma-separated values.*SEARCH_MAX_OR_VALUES=100/);
    const t = newTag();
    const p = await create(s, t, { resourceType: 'Patient', identifier: [{ system: 'urn:x', value: 'v99' }] });
    const res = await get(`Patient?${t.q}&identifier=${values(100).join(',')}`);
    expect(res.status).toBe(200);
    expect(refs(res.body)).toEqual([ref(p)]);
  });

  test('with the limits raised, a statement past the 65,535 bind parameters PostgreSQL takes is still a 400', async () => {
    const raised = await startServer({ ...LIMITS, SEARCH_MAX_OR_VALUES: '1000000', SEARCH_MAX_CONDITIONS: '1000000' });
    try {
      // a date value is two parameters (its range)
      const dates = Array.from({ length: 40_000 }, (_, i) => `${1000 + (i % 9000)}-01-01`);
      const res = await timed(raised, 'POST', '/fhir/Patient/_search', `birthdate=${dates.join(',')}`, { 'content-type': 'application/x-www-form-urlencoded' });
      expectOutcome(res, 'too-costly', 'The search is too large for one database statement: narrow it with fewer values or parameters');
    } finally {
      await raised.close();
    }
  });

  test('a _sort of 101 keys is a 400', async () => {
    expectOutcome(await get(`Patient?_sort=${Array(101).fill('family').join(',')}`), 'too-costly', /_sort has 101 keys/);
  });
});

describe('SEARCH_MAX_REPEATS (10)', () => {
  test('200 x name=a is a 400 at once', async () => {
    const res = await get(`Patient?${repeat(200, () => 'name=a')}`);
    expectOutcome(res, 'too-costly', 'Search parameter name is repeated 200 times; at most 10 are allowed (SEARCH_MAX_REPEATS=10)');
  });

  test('modifiers count together; so do the links of one chain', async () => {
    expectOutcome(await get(`Patient?${repeat(6, (i) => `name=a${i}`)}&${repeat(5, (i) => `name:exact=b${i}`)}`), 'too-costly', /name is repeated 11 times/);
    const chained = `${repeat(6, (i) => `subject.name=a${i}`)}&${repeat(5, (i) => `subject:Patient.name:contains=b${i}`)}`;
    expectOutcome(await get(`Observation?${chained}`), 'too-costly', /subject\.name is repeated 11 times/);
    expectOutcome(await get(`Patient?${repeat(11, (i) => `_has:Observation:subject:code${i % 2 ? ':text' : ''}=c${i}`)}`), 'too-costly', /_has:Observation:subject:code is repeated 11 times/);
  });

  test('10 repeats work, and match as AND', async () => {
    const t = newTag();
    const given = values(10, 'G');
    const p = await create(s, t, { resourceType: 'Patient', name: [{ given }] });
    await create(s, t, { resourceType: 'Patient', name: [{ given: given.slice(1) }] });
    const res = await get(`Patient?${t.q}&${given.map((g) => `given=${g}`).join('&')}`);
    expect(res.status).toBe(200);
    expect(refs(res.body)).toEqual([ref(p)]);
  });

  test('Prefer: handling=lenient does not ignore a limit', async () => {
    const res = await timed(s, 'GET', `/fhir/Patient?${repeat(11, (i) => `name=a${i}`)}`, undefined, { prefer: 'handling=lenient' });
    expectOutcome(res, 'too-costly', /SEARCH_MAX_REPEATS=10/);
  });

  test('_include repeated past the limit is a 400', async () => {
    expectOutcome(await get(`Patient?${repeat(11, () => '_include=Patient:organization')}`), 'too-costly', /_include is repeated 11 times/);
  });

  test('the limit is configurable', async () => {
    const small = await startServer({ ...LIMITS, SEARCH_MAX_REPEATS: '3' });
    try {
      expect((await get(`Patient?${repeat(3, (i) => `name=a${i}`)}`, small)).status).toBe(200);
      expectOutcome(await get(`Patient?${repeat(4, (i) => `name=a${i}`)}`, small), 'too-costly', 'Search parameter name is repeated 4 times; at most 3 are allowed (SEARCH_MAX_REPEATS=3)');
    } finally {
      await small.close();
    }
  });
});

describe('SEARCH_MAX_CONDITIONS (200)', () => {
  test('201 values over all parameters is a 400', async () => {
    const res = await get(`Patient?_id=${values(100).join(',')}&family=${values(100).join(',')}&given=x`);
    expectOutcome(res, 'too-costly', 'The search has 201 conditions (values over all its parameters); at most 200 are allowed (SEARCH_MAX_CONDITIONS=200)');
  });

  test('chained and _has values count too', async () => {
    const res = await get(`Patient?_id=${values(100).join(',')}&general-practitioner.name=${values(100).join(',')}&_has:Observation:subject:code=x`);
    expectOutcome(res, 'too-costly', /201 conditions/);
  });

  test('a chain through a reference to any type counts each type it looks into', async () => {
    // Provenance.target may point at any type: the chain looks into every type with the next parameter
    expect((await get('Provenance?target._id=x')).status).toBe(200);
    const res = await get('Provenance?target._has:Provenance:target:target._id=x');
    expectOutcome(res, 'too-costly', /^The search expands to more than 200 conditions: target\._has:Provenance:target:target\._id chains through a reference to many types/);
    expect(res.body.issue[0].diagnostics).toMatch(/\(SEARCH_MAX_CONDITIONS=200\)$/);
    // naming the types keeps it small
    expect((await get('Provenance?target:Patient._has:Provenance:target:target:Patient._id=x')).status).toBe(200);
  });

  test('200 conditions work, as 2 x 100 values and as 20 parameters repeated 10 times', async () => {
    const t = newTag();
    const p = await create(s, t, { resourceType: 'Patient', name: [{ family: 'v99', given: ['v42'] }] });
    const lists = await get(`Patient?${t.q}&_id=${[...values(99), p.id].join(',')}&name=${values(99).join(',')}`);
    expect(lists.status).toBe(200);
    expect(refs(lists.body)).toEqual([ref(p)]);
    // 20 string parameters of Patient x 10 values each: 200 separate conditions (and the tag: 201 is refused)
    const strings = ['name', 'family', 'given', 'address', 'address-city', 'address-country', 'address-state', 'address-postalcode', 'phonetic'];
    const tokens = ['identifier', 'telecom', 'phone', 'email', 'language', 'gender', 'address-use', 'active', 'deceased', '_security', '_id'];
    expectOutcome(await get(`Patient?${t.q}&${[...strings, ...tokens].map((n) => repeat(10, (i) => `${n}=x${i}`)).join('&')}`), 'too-costly', /201 conditions/);
    const many = [...strings, ...tokens].map((n) => repeat(10, (i) => `${n}=x${i}`)).join('&');
    const res = await get(`Patient?${many}`);
    expect(res.status).toBe(200);
    expect(res.body.total).toBe(0);
  });
});

describe('SEARCH_MAX_CHAIN_DEPTH (4)', () => {
  const deep = (n: number) => `subject:Patient.organization${'.partof'.repeat(n - 2)}.name=x`;

  test('a chain 100 deep is a 400 at once', async () => {
    const res = await get(`Observation?${deep(100)}`);
    expectOutcome(res, 'too-costly', /follows 100 references \(chained links and nested _has\); at most 4 are allowed \(SEARCH_MAX_CHAIN_DEPTH=4\)/);
    expect(res.body.issue[0].expression).toEqual([deep(100).split('=')[0]]);
  });

  test('a chain 5 deep is a 400; 4 deep works and finds its match', async () => {
    expectOutcome(await get(`Observation?${deep(5)}`), 'too-costly', /follows 5 references/);
    const t = newTag();
    const top = await create(s, t, { resourceType: 'Organization', name: `Top${t.tag.code.slice(0, 8)}` });
    const mid = await create(s, t, { resourceType: 'Organization', name: 'Mid', partOf: { reference: `Organization/${top.id}` } });
    const org = await create(s, t, { resourceType: 'Organization', name: 'Clinic', partOf: { reference: `Organization/${mid.id}` } });
    const patient = await create(s, t, { resourceType: 'Patient', managingOrganization: { reference: `Organization/${org.id}` } });
    const obs = await create(s, t, { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: `Patient/${patient.id}` } });
    const res = await get(`Observation?${t.q}&subject:Patient.organization.partof.partof.name=${top.name}`);
    expect(res.status).toBe(200);
    expect(refs(res.body)).toEqual([ref(obs)]);
  });

  test('nested _has past the depth is a 400; at the depth it works', async () => {
    const has4 = '_has:Observation:subject:_has:Provenance:target:_has:AuditEvent:entity:_has:Provenance:target:agent=x';
    expect((await get(`Patient?${has4}`)).status).toBe(200);
    const has5 = '_has:Observation:subject:_has:Provenance:target:_has:AuditEvent:entity:_has:Provenance:target:_has:AuditEvent:entity:type=x';
    expectOutcome(await get(`Patient?${has5}`), 'too-costly', /follows 5 references/);
    expectOutcome(await get(`Patient?${'_has:Observation:subject:'.repeat(100)}code=x`), 'too-costly', /follows 100 references/);
  });

  test('chained links and _has add up', async () => {
    expectOutcome(await get('Patient?_has:Observation:subject:performer:Practitioner.organization.partof.partof.name=x'), 'too-costly', /follows 5 references/);
    expectOutcome(await get('Observation?subject:Patient.organization._has:Patient:organization:_has:Observation:subject:_has:Provenance:target:agent=x'), 'too-costly', /follows 5 references/);
  });
});

describe('conditional interactions parse their criteria under the same limits', () => {
  const nested = (n: number) => `${'_has:Observation:subject:'.repeat(n)}code=x`;

  test('If-None-Exist and a conditional delete past a limit are a 400, and nothing changes', async () => {
    const t = newTag();
    const body: Json = { resourceType: 'Patient', meta: { tag: [t.tag] } };
    const created = await timed(s, 'POST', '/fhir/Patient', JSON.stringify(body), { 'if-none-exist': repeat(11, (i) => `name=a${i}`) });
    expectOutcome(created, 'too-costly', /SEARCH_MAX_REPEATS=10/);
    const kept = await create(s, t, { resourceType: 'Patient' });
    const deleted = await timed(s, 'DELETE', `/fhir/Patient?${t.q}&${nested(5)}`);
    expectOutcome(deleted, 'too-costly', /SEARCH_MAX_CHAIN_DEPTH=4/);
    expect(refs(await search(s, `Patient?${t.q}`))).toEqual([ref(kept)]);
  });
});
