/**
 * Chaining (https://hl7.org/fhir/R4/search.html#chaining) two and three levels deep, with and without a
 * type modifier, and reverse chaining with _has (https://hl7.org/fhir/R4/search.html#has), nested.
 */
import { randomUUID } from 'node:crypto';
import { startServer, type TestServer } from '../../helpers/server';
import { create, matchIds, newTag, ref, sorted, type Tagged } from './helpers';

let s: TestServer;
beforeAll(async () => {
  s = await startServer();
});
afterAll(async () => {
  await s.close();
});

const ID_SYSTEM = 'urn:test:practitioner';

/** Practitioner <- PractitionerRole; Practitioner and PractitionerRole <- Schedule <- Slots. */
async function agenda(t: Tagged, family: string) {
  const npi = randomUUID();
  const practitioner = await create(s, t, { resourceType: 'Practitioner', identifier: [{ system: ID_SYSTEM, value: npi }], name: [{ family }] });
  const role = await create(s, t, { resourceType: 'PractitionerRole', practitioner: { reference: ref(practitioner) } });
  const schedule = await create(s, t, { resourceType: 'Schedule', actor: [{ reference: ref(practitioner) }, { reference: ref(role) }] });
  const slot = await create(s, t, {
    resourceType: 'Slot',
    schedule: { reference: ref(schedule) },
    status: 'free',
    start: '2031-01-01T10:00:00Z',
    end: '2031-01-01T10:50:00Z',
  });
  return { npi, practitioner, role, schedule, slot };
}

describe('chaining', () => {
  test('two levels: Slot?schedule.actor:Practitioner.identifier', async () => {
    const t = newTag();
    const a = await agenda(t, 'Almeida');
    await agenda(t, 'Barros');
    expect(await matchIds(s, `Slot?${t.q}&schedule.actor:Practitioner.identifier=${ID_SYSTEM}|${a.npi}`)).toEqual(sorted([a.slot]));
    expect(await matchIds(s, `Slot?${t.q}&schedule.actor:Practitioner.name=almei`)).toEqual(sorted([a.slot]));
    expect(await matchIds(s, `Slot?${t.q}&schedule.actor:Practitioner.identifier=${ID_SYSTEM}|nobody`)).toEqual([]);
  });

  test('three levels: Slot?schedule.actor:PractitionerRole.practitioner.name', async () => {
    const t = newTag();
    const a = await agenda(t, 'Carvalho');
    await agenda(t, 'Duarte');
    expect(await matchIds(s, `Slot?${t.q}&schedule.actor:PractitionerRole.practitioner.name=carv`)).toEqual(sorted([a.slot]));
  });

  test('without a type modifier, every target type with the parameter is tried', async () => {
    const t = newTag();
    const a = await agenda(t, 'Esteves');
    await agenda(t, 'Fonseca');
    // Schedule.actor may be a Practitioner, a PractitionerRole, a Patient...: only some have `name`
    expect(await matchIds(s, `Schedule?${t.q}&actor.name=esteves`)).toEqual(sorted([a.schedule]));
    expect(await matchIds(s, `Slot?${t.q}&schedule.actor._id=${a.role.id}`)).toEqual(sorted([a.slot]));
  });

  test('chaining through a parameter that is not a reference is a 400', async () => {
    const res = await s.request('GET', '/fhir/Slot?status.name=x');
    expect(res.status).toBe(400);
    expect(res.body.issue[0].code).toBe('invalid');
    const unknown = await s.request('GET', '/fhir/Slot?schedule.nope=x');
    expect(unknown.status).toBe(400);
  });
});

describe('_has', () => {
  test('patients with an Observation of a code', async () => {
    const t = newTag();
    const code = randomUUID();
    const p1 = await create(s, t, { resourceType: 'Patient' });
    const p2 = await create(s, t, { resourceType: 'Patient' });
    await create(s, t, { resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'urn:c', code }] }, subject: { reference: ref(p1) } });
    await create(s, t, { resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'urn:c', code: 'other' }] }, subject: { reference: ref(p2) } });
    expect(await matchIds(s, `Patient?${t.q}&_has:Observation:patient:code=urn:c|${code}`)).toEqual(sorted([p1]));
    expect(await matchIds(s, `Patient?${t.q}&_has:Observation:patient:code=urn:c|${code},urn:c|other`)).toEqual(sorted([p1, p2]));
  });

  test('nested: practitioners with a schedule that has a free slot', async () => {
    const t = newTag();
    const a = await agenda(t, 'Gomes');
    const b = await agenda(t, 'Lopes');
    await s.request('PUT', `/fhir/Slot/${b.slot.id}`, { ...b.slot, status: 'busy' });
    expect(await matchIds(s, `Practitioner?${t.q}&_has:Schedule:actor:_has:Slot:schedule:status=free`)).toEqual(sorted([a.practitioner]));
  });

  test('a reference parameter that cannot point at the type is a 400', async () => {
    const res = await s.request('GET', '/fhir/Patient?_has:Slot:schedule:status=free');
    expect(res.status).toBe(400);
  });
});
