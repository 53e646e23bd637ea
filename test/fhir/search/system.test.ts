/**
 * System-level search with _type (https://hl7.org/fhir/R4/http.html#search) and compartment search
 * (https://hl7.org/fhir/R4/http.html#vsearch, Patient CompartmentDefinition of R4).
 */
import { startServer, type TestServer } from '../../helpers/server';
import { create, matchIds, newTag, ref, search, sorted } from './helpers';

let s: TestServer;
beforeAll(async () => {
  s = await startServer();
});
afterAll(async () => {
  await s.close();
});

describe('system search', () => {
  test('_type with common parameters, and all types without _type', async () => {
    const t = newTag();
    const p = await create(s, t, { resourceType: 'Patient' });
    const o = await create(s, t, { resourceType: 'Observation', status: 'final', code: { text: 'x' } });
    const org = await create(s, t, { resourceType: 'Organization', name: 'X' });
    expect(await matchIds(s, `/fhir?_type=Patient,Observation&${t.q}`)).toEqual(sorted([p, o]));
    expect(await matchIds(s, `/fhir?${t.q}`)).toEqual(sorted([p, o, org]));
    expect(await matchIds(s, `/fhir?_type=Patient&_type=Organization&${t.q}&_id=${org.id}`)).toEqual(sorted([org]));
    const post = await s.request('POST', '/fhir/_search', `_type=Organization&${t.q}`, { 'content-type': 'application/x-www-form-urlencoded' });
    expect(post.status).toBe(200);
    expect(post.body.entry.map((e: { resource: { id: string } }) => e.resource.id)).toEqual([org.id]);
  });

  test('a parameter every named type has (with different definitions per type)', async () => {
    const t = newTag();
    const p = await create(s, t, { resourceType: 'Patient', name: [{ family: 'Teixeira' }] });
    const org = await create(s, t, { resourceType: 'Organization', name: 'Teixeira Saúde' });
    await create(s, t, { resourceType: 'Organization', name: 'Outra' });
    expect(await matchIds(s, `/fhir?_type=Patient,Organization&${t.q}&name=teix`)).toEqual(sorted([p, org]));
    const sortedByName = await search(s, `/fhir?_type=Patient,Organization&${t.q}&_sort=-_lastUpdated`);
    expect(sortedByName.entry).toHaveLength(3);
  });

  test('a parameter some named types lack, or an unknown type, is a 400', async () => {
    expect((await s.request('GET', '/fhir?_type=Patient,Organization&gender=male')).status).toBe(400);
    expect((await s.request('GET', '/fhir?_type=Nope')).status).toBe(404);
    expect((await s.request('GET', '/fhir?gender=male')).status).toBe(400);
  });
});

describe('compartment search', () => {
  test('Patient/[id]/[type] finds what the CompartmentDefinition places there', async () => {
    const t = newTag();
    const p = await create(s, t, { resourceType: 'Patient' });
    const other = await create(s, t, { resourceType: 'Patient' });
    const mine = await create(s, t, { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: ref(p) } });
    const performedByMe = await create(s, t, { resourceType: 'Observation', status: 'final', code: { text: 'x' }, performer: [{ reference: ref(p) }] });
    await create(s, t, { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: ref(other) } });
    const appt = await create(s, t, { resourceType: 'Appointment', status: 'proposed', participant: [{ actor: { reference: ref(p) }, status: 'accepted' }] });
    expect(await matchIds(s, `Patient/${p.id}/Observation?${t.q}`)).toEqual(sorted([mine, performedByMe]));
    expect(await matchIds(s, `Patient/${p.id}/Appointment?${t.q}`)).toEqual(sorted([appt]));
    expect(await matchIds(s, `Patient/${p.id}/Patient?${t.q}`)).toEqual(sorted([p]));
    // further parameters narrow the compartment
    expect(await matchIds(s, `Patient/${p.id}/Observation?${t.q}&_id=${mine.id}`)).toEqual(sorted([mine]));
    expect(await matchIds(s, `Patient/${p.id}/*?${t.q}`)).toEqual(sorted([p, mine, performedByMe, appt]));
    const bundle = await search(s, `Patient/${p.id}/Observation?${t.q}&_count=1`);
    expect(bundle.link.find((l: { relation: string }) => l.relation === 'next').url).toContain(`/fhir/Patient/${p.id}/Observation?`);
  });

  test('a type outside the compartment has no members; an unknown compartment is a 404', async () => {
    const t = newTag();
    const p = await create(s, t, { resourceType: 'Patient' });
    expect(await matchIds(s, `Patient/${p.id}/Organization?${t.q}`)).toEqual([]);
    expect((await s.request('GET', `/fhir/Organization/${p.id}/Patient`)).status).toBe(404);
  });
});
