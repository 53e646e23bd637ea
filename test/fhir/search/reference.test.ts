/**
 * reference and uri search: https://hl7.org/fhir/R4/search.html#reference — #uri
 * id, Type/id, our absolute URL, another server's URL, canonicals with and without version, :Type,
 * :identifier, :missing; uri exact, :below, :above; _profile and _source.
 */
import { startServer, type TestServer } from '../../helpers/server';
import { create, matchIds, newTag, sorted } from './helpers';

let s: TestServer;
beforeAll(async () => {
  s = await startServer();
});
afterAll(async () => {
  await s.close();
});

const obs = (subject: Record<string, unknown> | undefined) => ({
  resourceType: 'Observation',
  status: 'final',
  code: { text: 'x' },
  ...(subject ? { subject } : {}),
});

describe('reference', () => {
  test('id, Type/id, :Type and our absolute URL find the same resources', async () => {
    const t = newTag();
    const p = await create(s, t, { resourceType: 'Patient' });
    const g = await create(s, t, { resourceType: 'Group', type: 'person', actual: true });
    const ofPatient = await create(s, t, obs({ reference: `Patient/${p.id}` }));
    const ofGroup = await create(s, t, obs({ reference: `Group/${g.id}` }));
    const q = (v: string) => matchIds(s, `Observation?${t.q}&${v}`);
    expect(await q(`subject=Patient/${p.id}`)).toEqual(sorted([ofPatient]));
    expect(await q(`subject=${p.id}`)).toEqual(sorted([ofPatient]));
    expect(await q(`subject:Patient=${p.id}`)).toEqual(sorted([ofPatient]));
    expect(await q(`subject:Group=${p.id}`)).toEqual([]);
    expect(await q(`subject=${encodeURIComponent(`${s.fhirBase}/Patient/${p.id}`)}`)).toEqual(sorted([ofPatient]));
    expect(await q(`patient=${p.id}`)).toEqual(sorted([ofPatient]));
    expect(await q(`subject=Patient/${p.id},Group/${g.id}`)).toEqual(sorted([ofPatient, ofGroup]));
  });

  test('a long comma list of targets (several types, ids and URLs) matches exactly the resources pointing at one of them', async () => {
    const t = newTag();
    const patients: Record<string, unknown>[] = [];
    for (let i = 0; i < 6; i++) patients.push(await create(s, t, { resourceType: 'Patient' }));
    const g = await create(s, t, { resourceType: 'Group', type: 'person', actual: true });
    const obsOf = [];
    for (const p of patients) obsOf.push(await create(s, t, obs({ reference: `Patient/${p.id}` })));
    const ofGroup = await create(s, t, obs({ reference: `Group/${g.id}` }));
    const remote = await create(s, t, obs({ reference: 'http://elsewhere.example/fhir/Patient/9' }));
    const unknown = Array.from({ length: 200 }, (_, i) => `Patient/missing-${i}`);
    const list = [...unknown, `Patient/${patients[0].id}`, `Patient/${patients[2].id}`, `${patients[4].id}`, `Group/${g.id}`, 'http://elsewhere.example/fhir/Patient/9'];
    const res = await s.request('POST', '/fhir/Observation/_search', `${t.q}&subject=${encodeURIComponent(list.join(','))}`, {
      'content-type': 'application/x-www-form-urlencoded',
    });
    expect(res.status).toBe(200);
    expect(res.body.entry.map((e: { resource: { id: string } }) => `Observation/${e.resource.id}`).sort()).toEqual(
      sorted([obsOf[0], obsOf[2], obsOf[4], ofGroup, remote]),
    );
  });

  test('a reference to another server is matched by its URL', async () => {
    const t = newTag();
    const url = 'http://other.example.org/fhir/Patient/77';
    const external = await create(s, t, obs({ reference: url }));
    expect(await matchIds(s, `Observation?${t.q}&subject=${encodeURIComponent(url)}`)).toEqual(sorted([external]));
    expect(await matchIds(s, `Observation?${t.q}&subject=77`)).toEqual([]);
  });

  test(':identifier matches a logical reference', async () => {
    const t = newTag();
    const logical = await create(s, t, obs({ identifier: { system: 'urn:cns', value: '700000000000005' } }));
    expect(await matchIds(s, `Observation?${t.q}&subject:identifier=urn:cns|700000000000005`)).toEqual(sorted([logical]));
    expect(await matchIds(s, `Observation?${t.q}&subject:identifier=urn:cns|1`)).toEqual([]);
  });

  test(':missing on a reference parameter', async () => {
    const t = newTag();
    const p = await create(s, t, { resourceType: 'Patient' });
    const withSubject = await create(s, t, obs({ reference: `Patient/${p.id}` }));
    const without = await create(s, t, obs(undefined));
    expect(await matchIds(s, `Observation?${t.q}&subject:missing=true`)).toEqual(sorted([without]));
    expect(await matchIds(s, `Observation?${t.q}&subject:missing=false`)).toEqual(sorted([withSubject]));
  });

  test('a canonical reference matches with or without its version', async () => {
    const t = newTag();
    const canonical = 'http://example.org/Questionnaire/phq9';
    const qr = await create(s, t, { resourceType: 'QuestionnaireResponse', status: 'completed', questionnaire: `${canonical}|1.0` });
    expect(await matchIds(s, `QuestionnaireResponse?${t.q}&questionnaire=${encodeURIComponent(canonical)}`)).toEqual(sorted([qr]));
    expect(await matchIds(s, `QuestionnaireResponse?${t.q}&questionnaire=${encodeURIComponent(`${canonical}|1.0`)}`)).toEqual(sorted([qr]));
    expect(await matchIds(s, `QuestionnaireResponse?${t.q}&questionnaire=${encodeURIComponent(`${canonical}|2.0`)}`)).toEqual([]);
  });

  test('an invalid :Type modifier is a 400', async () => {
    const res = await s.request('GET', '/fhir/Observation?subject:Nope=1');
    expect(res.status).toBe(400);
  });
});

describe('uri', () => {
  const valueSet = (url: string) => ({ resourceType: 'ValueSet', status: 'active', url });

  test('exact, :below and :above', async () => {
    const t = newTag();
    const root = await create(s, t, valueSet('http://acme.org/fhir/ValueSet'));
    const leaf = await create(s, t, valueSet('http://acme.org/fhir/ValueSet/123'));
    const other = await create(s, t, valueSet('http://other.org/fhir/ValueSet/123'));
    const q = (v: string) => matchIds(s, `ValueSet?${t.q}&${v}`);
    expect(await q('url=http://acme.org/fhir/ValueSet/123')).toEqual(sorted([leaf]));
    expect(await q('url=http://acme.org/fhir')).toEqual([]);
    expect(await q('url:below=http://acme.org/fhir/')).toEqual(sorted([root, leaf]));
    expect(await q('url:above=http://acme.org/fhir/ValueSet/123/_history/5')).toEqual(sorted([root, leaf]));
    expect(other.id).toBeDefined();
  });

  test('_profile and _source', async () => {
    const t = newTag();
    const profiled = await create(s, t, {
      resourceType: 'Observation',
      status: 'final',
      code: { text: 'x' },
      meta: { profile: ['http://hl7.org/fhir/StructureDefinition/vitalsigns'], source: 'http://lab.example.org/system' },
    });
    await create(s, t, obs(undefined));
    expect(await matchIds(s, `Observation?${t.q}&_profile=http://hl7.org/fhir/StructureDefinition/vitalsigns`)).toEqual(sorted([profiled]));
    expect(await matchIds(s, `Observation?${t.q}&_source=http://lab.example.org/system`)).toEqual(sorted([profiled]));
  });
});
