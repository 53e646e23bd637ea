/**
 * token search: https://hl7.org/fhir/R4/search.html#token
 * code, system|code, |code, system|, :not, :text, :of-type, :missing, _id, _tag, _security, comma = OR,
 * repeated = AND.
 */
import { startServer, type TestServer } from '../../helpers/server';
import { create, matchIds, newTag, search, sorted } from './helpers';

let s: TestServer;
beforeAll(async () => {
  s = await startServer();
});
afterAll(async () => {
  await s.close();
});

const LOINC = 'http://loinc.org';

function observation(code: { system?: string; code?: string; display?: string }[], extra: Record<string, unknown> = {}) {
  return { resourceType: 'Observation', status: 'final', code: { coding: code }, ...extra };
}

describe('token forms', () => {
  test('code, system|code, |code and system| match as specified', async () => {
    const t = newTag();
    const withLoinc = await create(s, t, observation([{ system: LOINC, code: '8480-6' }]));
    const noSystem = await create(s, t, observation([{ code: '8480-6' }]));
    const otherCode = await create(s, t, observation([{ system: LOINC, code: '8462-4' }]));
    expect(await matchIds(s, `Observation?${t.q}&code=8480-6`)).toEqual(sorted([withLoinc, noSystem]));
    expect(await matchIds(s, `Observation?${t.q}&code=${LOINC}|8480-6`)).toEqual(sorted([withLoinc]));
    expect(await matchIds(s, `Observation?${t.q}&code=|8480-6`)).toEqual(sorted([noSystem]));
    expect(await matchIds(s, `Observation?${t.q}&code=${LOINC}|`)).toEqual(sorted([withLoinc, otherCode]));
    expect(await matchIds(s, `Observation?${t.q}&code=nope`)).toEqual([]);
  });

  test('comma is OR, a repeated parameter is AND', async () => {
    const t = newTag();
    const a = await create(s, t, observation([{ system: LOINC, code: 'A' }]));
    const b = await create(s, t, observation([{ system: LOINC, code: 'B' }]));
    const ab = await create(s, t, observation([{ system: LOINC, code: 'A' }, { system: LOINC, code: 'B' }]));
    expect(await matchIds(s, `Observation?${t.q}&code=A,B`)).toEqual(sorted([a, b, ab]));
    expect(await matchIds(s, `Observation?${t.q}&code=A&code=B`)).toEqual(sorted([ab]));
  });

  test('a long comma list (hundreds of values, several systems and forms) matches exactly the resources with one of them', async () => {
    const t = newTag();
    const mrn = (i: number) => ({ resourceType: 'Patient', identifier: [{ system: 'urn:mrn', value: `M${i}` }] });
    const list: Record<string, unknown>[] = [];
    for (let i = 0; i < 12; i++) list.push(await create(s, t, mrn(i)));
    const other = await create(s, t, { resourceType: 'Patient', identifier: [{ system: 'urn:other', value: 'M3' }] });
    const bare = await create(s, t, { resourceType: 'Patient', identifier: [{ value: 'X1' }] });
    // 300 pairs of urn:mrn (of which 6 exist), one pair of urn:other, one |code and one code of any system
    const values = Array.from({ length: 300 }, (_, i) => `urn:mrn|M${i * 2}`);
    const q = `identifier=${encodeURIComponent([...values, 'urn:other|M3', '|X1', 'M5'].join(','))}`;
    const expected = [...list.filter((_, i) => i % 2 === 0 || i === 5), other, bare];
    const res = await s.request('POST', '/fhir/Patient/_search', `${t.q}&${q}`, { 'content-type': 'application/x-www-form-urlencoded' });
    expect(res.status).toBe(200);
    expect(res.body.entry.map((e: { resource: { id: string } }) => `Patient/${e.resource.id}`).sort()).toEqual(sorted(expected));
    // the same list under :not
    const not = await s.request('POST', '/fhir/Patient/_search', `${t.q}&${q.replace('identifier=', 'identifier:not=')}`, {
      'content-type': 'application/x-www-form-urlencoded',
    });
    expect(not.body.entry.map((e: { resource: { id: string } }) => `Patient/${e.resource.id}`).sort()).toEqual(
      sorted(list.filter((_, i) => i % 2 === 1 && i !== 5)),
    );
  });

  test('an escaped comma is part of the value', async () => {
    const t = newTag();
    const o = await create(s, t, observation([{ code: 'x,y' }]));
    expect(await matchIds(s, `Observation?${t.q}&code=x%5C,y`)).toEqual(sorted([o]));
  });

  test('boolean and code elements are tokens', async () => {
    const t = newTag();
    const active = await create(s, t, { resourceType: 'Patient', active: true, gender: 'female' });
    const inactive = await create(s, t, { resourceType: 'Patient', active: false, gender: 'male' });
    expect(await matchIds(s, `Patient?${t.q}&active=true`)).toEqual(sorted([active]));
    expect(await matchIds(s, `Patient?${t.q}&active=false`)).toEqual(sorted([inactive]));
    expect(await matchIds(s, `Patient?${t.q}&gender=male`)).toEqual(sorted([inactive]));
  });

  test('identifier system|value, and telecom (ContactPoint) values', async () => {
    const t = newTag();
    const p = await create(s, t, {
      resourceType: 'Patient',
      identifier: [{ system: 'urn:mrn', value: 'MRN-1' }],
      telecom: [{ system: 'email', value: 'ana@example.com' }],
    });
    await create(s, t, { resourceType: 'Patient', identifier: [{ system: 'urn:other', value: 'MRN-1' }] });
    expect(await matchIds(s, `Patient?${t.q}&identifier=urn:mrn|MRN-1`)).toEqual(sorted([p]));
    expect(await matchIds(s, `Patient?${t.q}&email=ana@example.com`)).toEqual(sorted([p]));
    expect(await matchIds(s, `Patient?${t.q}&telecom=email|ana@example.com`)).toEqual(sorted([p]));
  });
});

describe('token modifiers', () => {
  test(':not excludes matches, including resources without the element', async () => {
    const t = newTag();
    const final = await create(s, t, observation([{ code: 'x' }], { status: 'final' }));
    const prelim = await create(s, t, observation([{ code: 'x' }], { status: 'preliminary' }));
    const amended = await create(s, t, observation([{ code: 'x' }], { status: 'amended' }));
    expect(await matchIds(s, `Observation?${t.q}&status:not=final`)).toEqual(sorted([prelim, amended]));
    expect(await matchIds(s, `Observation?${t.q}&status:not=final,amended`)).toEqual(sorted([prelim]));
    expect(await matchIds(s, `Observation?${t.q}&status:not=final&status:not=amended`)).toEqual(sorted([prelim]));
    expect(final.id).toBeDefined();
  });

  test(':text matches display and text, case- and accent-insensitively, from the start of a word', async () => {
    const t = newTag();
    const bp = await create(s, t, observation([{ system: LOINC, code: '85354-9', display: 'Blood pressure panel' }]));
    const heart = { resourceType: 'Observation', status: 'final', code: { text: 'Frequência cardíaca' } };
    const hr = await create(s, t, heart);
    expect(await matchIds(s, `Observation?${t.q}&code:text=blood`)).toEqual(sorted([bp]));
    expect(await matchIds(s, `Observation?${t.q}&code:text=PRESSURE`)).toEqual(sorted([bp]));
    expect(await matchIds(s, `Observation?${t.q}&code:text=frequencia%20card`)).toEqual(sorted([hr]));
    expect(await matchIds(s, `Observation?${t.q}&code:text=ressure`)).toEqual([]);
  });

  test(':of-type matches an identifier by its type and value', async () => {
    const t = newTag();
    const v2 = 'http://terminology.hl7.org/CodeSystem/v2-0203';
    const mr = await create(s, t, { resourceType: 'Patient', identifier: [{ type: { coding: [{ system: v2, code: 'MR' }] }, value: '123' }] });
    await create(s, t, { resourceType: 'Patient', identifier: [{ type: { coding: [{ system: v2, code: 'DL' }] }, value: '123' }] });
    expect(await matchIds(s, `Patient?${t.q}&identifier:of-type=${v2}|MR|123`)).toEqual(sorted([mr]));
    expect(await matchIds(s, `Patient?${t.q}&identifier:of-type=${v2}|MR|999`)).toEqual([]);
    expect((await s.request('GET', `/fhir/Patient?identifier:of-type=MR|123`)).status).toBe(400);
  });

  test(':missing=true finds resources without the element, :missing=false those with it', async () => {
    const t = newTag();
    const withGender = await create(s, t, { resourceType: 'Patient', gender: 'other' });
    const without = await create(s, t, { resourceType: 'Patient' });
    expect(await matchIds(s, `Patient?${t.q}&gender:missing=true`)).toEqual(sorted([without]));
    expect(await matchIds(s, `Patient?${t.q}&gender:missing=false`)).toEqual(sorted([withGender]));
  });

  test(':in (terminology) answers 400 not-supported', async () => {
    const res = await s.request('GET', '/fhir/Observation?code:in=http://example.org/ValueSet/x');
    expect(res.status).toBe(400);
    expect(res.body.issue[0].code).toBe('not-supported');
  });
});

describe('resource-level token parameters', () => {
  test('_id with comma OR and :not', async () => {
    const t = newTag();
    const a = await create(s, t, { resourceType: 'Patient' });
    const b = await create(s, t, { resourceType: 'Patient' });
    const c = await create(s, t, { resourceType: 'Patient' });
    expect(await matchIds(s, `Patient?${t.q}&_id=${a.id},${b.id}`)).toEqual(sorted([a, b]));
    expect(await matchIds(s, `Patient?${t.q}&_id:not=${a.id}`)).toEqual(sorted([b, c]));
  });

  test('_tag and _security match meta.tag and meta.security', async () => {
    const t = newTag();
    const restricted = await create(s, t, {
      resourceType: 'Patient',
      meta: { security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R' }] },
    });
    await create(s, t, { resourceType: 'Patient' });
    const bundle = await search(s, `Patient?${t.q}&_security=http://terminology.hl7.org/CodeSystem/v3-Confidentiality|R`);
    expect(bundle.entry.map((e: { resource: { id: string } }) => e.resource.id)).toEqual([restricted.id]);
  });
});
