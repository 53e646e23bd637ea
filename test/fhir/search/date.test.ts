/**
 * date search: https://hl7.org/fhir/R4/search.html#date and the prefixes of
 * https://hl7.org/fhir/R4/search.html#prefix. A search value covers the range of its precision; stored
 * dates and Periods cover theirs; eq = the search range contains the stored range, gt/lt = the stored
 * range reaches beyond, ge/le = either, sa/eb = wholly after/before, ne = not eq, ap = approximately.
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

const encounter = (start: string, end?: string) => ({
  resourceType: 'Encounter',
  status: 'finished',
  class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
  period: end ? { start, end } : { start },
});
const patient = (birthDate: string) => ({ resourceType: 'Patient', birthDate });

describe('a date (day precision) searched by year, month, day and instant', () => {
  test('eq at each precision', async () => {
    const t = newTag();
    const p = await create(s, t, patient('2020-03-15'));
    const other = await create(s, t, patient('2021-01-01'));
    expect(await matchIds(s, `Patient?${t.q}&birthdate=2020`)).toEqual(sorted([p]));
    expect(await matchIds(s, `Patient?${t.q}&birthdate=2020-03`)).toEqual(sorted([p]));
    expect(await matchIds(s, `Patient?${t.q}&birthdate=2020-03-15`)).toEqual(sorted([p]));
    expect(await matchIds(s, `Patient?${t.q}&birthdate=2020-04`)).toEqual([]);
    // an instant cannot contain a whole day
    expect(await matchIds(s, `Patient?${t.q}&birthdate=2020-03-15T10:00:00Z`)).toEqual([]);
    expect(await matchIds(s, `Patient?${t.q}&birthdate=eq2021`)).toEqual(sorted([other]));
  });

  test('gt, ge, lt, le, sa, eb, ne at the edges of the day', async () => {
    const t = newTag();
    const p = await create(s, t, patient('2020-03-15'));
    const q = (v: string) => matchIds(s, `Patient?${t.q}&birthdate=${v}`);
    expect(await q('gt2020-03-14')).toEqual(sorted([p]));
    expect(await q('gt2020-03-15')).toEqual([]);
    expect(await q('ge2020-03-15')).toEqual(sorted([p]));
    expect(await q('ge2020-03-16')).toEqual([]);
    expect(await q('lt2020-03-16')).toEqual(sorted([p]));
    expect(await q('lt2020-03-15')).toEqual([]);
    expect(await q('le2020-03-15')).toEqual(sorted([p]));
    expect(await q('le2020-03-14')).toEqual([]);
    expect(await q('sa2020-03-14')).toEqual(sorted([p]));
    expect(await q('sa2020-03-15')).toEqual([]);
    expect(await q('eb2020-03-16')).toEqual(sorted([p]));
    expect(await q('eb2020-03-15')).toEqual([]);
    expect(await q('ne2020-03-15')).toEqual([]);
    expect(await q('ne2020-03-14')).toEqual(sorted([p]));
    // a day "greater than 10:00 that day": part of the day lies after that minute
    expect(await q('gt2020-03-15T10:00:00Z')).toEqual(sorted([p]));
    expect(await q('lt2020-03-15T10:00:00Z')).toEqual(sorted([p]));
  });

  test('ap matches values close to the search value', async () => {
    const t = newTag();
    const p = await create(s, t, patient('2000-06-15'));
    expect(await matchIds(s, `Patient?${t.q}&birthdate=ap2000-07-01`)).toEqual(sorted([p]));
    expect(await matchIds(s, `Patient?${t.q}&birthdate=ap1950-01-01`)).toEqual([]);
  });
});

describe('Periods', () => {
  test('a Period matches eq only when the search range contains it', async () => {
    const t = newTag();
    const march = await create(s, t, encounter('2021-03-10T09:00:00Z', '2021-03-12T17:00:00Z'));
    const spanning = await create(s, t, encounter('2021-02-27T09:00:00Z', '2021-03-02T17:00:00Z'));
    const q = (v: string) => matchIds(s, `Encounter?${t.q}&date=${v}`);
    expect(await q('2021-03')).toEqual(sorted([march]));
    expect(await q('2021')).toEqual(sorted([march, spanning]));
    expect(await q('2021-03-11')).toEqual([]);
    // the spanning period overlaps March and February: ge/le/gt/lt by overlap
    expect(await q('ge2021-03-01')).toEqual(sorted([march, spanning]));
    expect(await q('lt2021-03-01')).toEqual(sorted([spanning]));
    expect(await q('gt2021-03-01')).toEqual(sorted([march, spanning]));
    expect(await q('sa2021-03-01')).toEqual(sorted([march]));
    expect(await q('eb2021-03-10')).toEqual(sorted([spanning]));
    expect(await q('le2021-02-28')).toEqual(sorted([spanning]));
  });

  test('an open-ended Period reaches to the end of time', async () => {
    const t = newTag();
    const open = await create(s, t, encounter('2019-01-01T00:00:00Z'));
    const q = (v: string) => matchIds(s, `Encounter?${t.q}&date=${v}`);
    expect(await q('gt2100-01-01')).toEqual(sorted([open]));
    expect(await q('2019')).toEqual([]);
    expect(await q('lt2018-12-31')).toEqual([]);
    expect(await q('ge2019-01-01')).toEqual(sorted([open]));
  });

  test('a range as two parameters (AND), as the agenda query does', async () => {
    const t = newTag();
    const schedule = await create(s, t, { resourceType: 'Schedule', actor: [{ display: 'Dr. X' }] });
    const slot = (start: string) => ({
      resourceType: 'Slot',
      schedule: { reference: `Schedule/${schedule.id}` },
      status: 'free',
      start,
      end: new Date(Date.parse(start) + 50 * 60_000).toISOString(),
    });
    const nine = await create(s, t, slot('2030-05-10T09:00:00Z'));
    const ten = await create(s, t, slot('2030-05-10T10:00:00Z'));
    await create(s, t, slot('2030-05-11T09:00:00Z'));
    const q = `Slot?${t.q}&schedule=Schedule/${schedule.id}&start=ge2030-05-10T00:00:00Z&start=lt2030-05-11T00:00:00Z`;
    expect(await matchIds(s, q)).toEqual(sorted([nine, ten]));
    expect(await matchIds(s, `Slot?${t.q}&start=ge2030-05-10T10:00:00Z&start=lt2030-05-10T10:00:01Z`)).toEqual(sorted([ten]));
  });
});

describe('_lastUpdated', () => {
  test('ge/lt on the write time', async () => {
    const t = newTag();
    const before = await create(s, t, patient('2000-01-01'));
    await new Promise((r) => setTimeout(r, 20));
    const cut = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 20));
    const after = await create(s, t, patient('2000-01-01'));
    expect(await matchIds(s, `Patient?${t.q}&_lastUpdated=ge${cut}`)).toEqual(sorted([after]));
    expect(await matchIds(s, `Patient?${t.q}&_lastUpdated=lt${cut}`)).toEqual(sorted([before]));
    expect(await matchIds(s, `Patient?${t.q}&_lastUpdated=${cut.slice(0, 4)}`)).toEqual(sorted([before, after]));
  });
});

test('malformed dates and prefixes are a 400', async () => {
  for (const v of ['2020-13', 'xx2020', '2020/01/01', 'ge']) {
    const res = await s.request('GET', `/fhir/Patient?birthdate=${v}`);
    expect([v, res.status]).toEqual([v, 400]);
  }
  const ok = await search(s, 'Patient?birthdate=ge2020-01-01T10:00:00%2B03:00&_count=1');
  expect(ok.type).toBe('searchset');
});
