/**
 * Unknown and malformed parameters (https://hl7.org/fhir/R4/search.html#errors): 400 OperationOutcome, or
 * ignored with a warning under `Prefer: handling=lenient`. Conditional interactions accept every parameter.
 */
import { randomUUID } from 'node:crypto';
import { startServer, type TestServer } from '../../helpers/server';
import { create, matchIds, newTag, search, sorted } from './helpers';

let s: TestServer;
beforeAll(async () => {
  s = await startServer();
});
afterAll(async () => {
  await s.close();
});

describe('strict (default) handling', () => {
  test.each([
    ['an unknown parameter', 'Patient?nope=1', 'invalid', 'Unknown search parameter nope for Patient'],
    ['an unknown modifier', 'Patient?gender:fuzzy=male', 'invalid', 'Unknown modifier :fuzzy for token parameter gender'],
    ['a malformed date', 'Patient?birthdate=yesterday', 'invalid', 'Invalid date for birthdate: yesterday'],
    ['an empty value', 'Patient?gender=', 'invalid', 'Empty value for gender'],
    ['a bad :missing value', 'Patient?gender:missing=maybe', 'invalid', ':missing expects true or false, got maybe'],
    ['an unsupported parameter', 'Patient?_text=x', 'not-supported', 'Search parameter _text is not supported'],
  ])('%s is a 400 OperationOutcome', async (_what, path, code, diagnostics) => {
    const res = await s.request('GET', `/fhir/${path}`);
    expect(res.status).toBe(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(res.body.issue[0]).toMatchObject({ severity: 'error', code, diagnostics });
  });
});

describe('Prefer: handling=lenient', () => {
  test('unknown and malformed parameters are ignored with a warning; the rest still filters', async () => {
    const t = newTag();
    const male = await create(s, t, { resourceType: 'Patient', gender: 'male' });
    await create(s, t, { resourceType: 'Patient', gender: 'female' });
    const bundle = await search(s, `Patient?${t.q}&gender=male&nope=1&birthdate=yesterday`, { prefer: 'handling=lenient' });
    const matches = bundle.entry.filter((e: { search: { mode: string } }) => e.search.mode === 'match');
    expect(matches.map((e: { resource: { id: string } }) => e.resource.id)).toEqual([male.id]);
    const outcome = bundle.entry.find((e: { search: { mode: string } }) => e.search.mode === 'outcome').resource;
    expect(outcome.resourceType).toBe('OperationOutcome');
    const diagnostics = outcome.issue.map((i: { diagnostics: string }) => i.diagnostics).join('\n');
    expect(diagnostics).toContain('nope');
    expect(diagnostics).toContain('birthdate');
    expect(outcome.issue.every((i: { severity: string }) => i.severity === 'warning')).toBe(true);
  });

  test('handling=strict behaves as the default', async () => {
    expect((await s.request('GET', '/fhir/Patient?nope=1', undefined, { prefer: 'handling=strict' })).status).toBe(400);
  });
});

describe('conditional interactions accept any search parameter', () => {
  test('conditional create on a string and a date parameter', async () => {
    const family = `F${randomUUID().slice(0, 8)}`;
    const body = { resourceType: 'Patient', name: [{ family }], birthDate: '1999-09-09' };
    const first = await s.request('POST', '/fhir/Patient', body, { 'if-none-exist': `family:exact=${family}&birthdate=1999-09-09` });
    expect(first.status).toBe(201);
    const again = await s.request('POST', '/fhir/Patient', body, { 'if-none-exist': `family:exact=${family}&birthdate=1999-09-09` });
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(first.body.id);
  });

  test('conditional update and delete through a chain', async () => {
    const t = newTag();
    const npi = randomUUID();
    const practitioner = await create(s, t, { resourceType: 'Practitioner', identifier: [{ system: 'urn:npi', value: npi }] });
    const role = await create(s, t, { resourceType: 'PractitionerRole', active: true, practitioner: { reference: `Practitioner/${practitioner.id}` } });
    const criteria = `practitioner.identifier=urn:npi|${npi}`;
    const updated = await s.request('PUT', `/fhir/PractitionerRole?${criteria}`, { ...role, active: false });
    expect(updated.status).toBe(200);
    expect(updated.body.id).toBe(role.id);
    expect(await matchIds(s, `PractitionerRole?${t.q}&active=false`)).toEqual(sorted([role]));
    const deleted = await s.request('DELETE', `/fhir/PractitionerRole?${criteria}`);
    expect([200, 204]).toContain(deleted.status);
    expect(await matchIds(s, `PractitionerRole?${t.q}`)).toEqual([]);
  });

  test('invalid criteria are a 400', async () => {
    const res = await s.request('POST', '/fhir/Patient', { resourceType: 'Patient' }, { 'if-none-exist': 'nope=1' });
    expect(res.status).toBe(400);
  });
});

test('the CapabilityStatement lists every parameter with type and documentation, and includes', async () => {
  const res = await s.request('GET', '/fhir/metadata');
  const resource = (type: string) => res.body.rest[0].resource.find((r: { type: string }) => r.type === type);
  const role = resource('PractitionerRole');
  const param = (name: string) => role.searchParam.find((p: { name: string }) => p.name === name);
  expect(param('rating')).toMatchObject({ type: 'number', definition: 'http://fhir.healthmed.com.br/SearchParameter/practitionerrole-rating' });
  expect(param('rating').documentation).toBeTruthy();
  expect(param('price')).toMatchObject({ type: 'quantity', definition: 'http://fhir.healthmed.com.br/SearchParameter/practitionerrole-price' });
  for (const [name, type] of [['specialty', 'token'], ['practitioner', 'reference'], ['_lastUpdated', 'date'], ['_profile', 'uri']]) {
    expect([name, param(name)?.type]).toEqual([name, type]);
  }
  expect(role.searchParam.every((p: { documentation?: string }) => !!p.documentation)).toBe(true);
  expect(role.searchInclude).toEqual(expect.arrayContaining(['*', 'PractitionerRole:practitioner', 'PractitionerRole:location']));
  expect(resource('Practitioner').searchRevInclude).toEqual(expect.arrayContaining(['PractitionerRole:practitioner', 'Schedule:actor']));
  const location = resource('Location');
  expect(location.searchParam.find((p: { name: string }) => p.name === 'near')).toMatchObject({ type: 'special' });
  const observation = resource('Observation');
  expect(observation.searchParam.find((p: { name: string }) => p.name === 'code-value-quantity')).toMatchObject({ type: 'composite' });
  expect(res.body.rest[0].interaction.map((i: { code: string }) => i.code)).toContain('search-system');
});
