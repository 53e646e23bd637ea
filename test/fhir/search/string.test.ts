/**
 * string search: https://hl7.org/fhir/R4/search.html#string
 * Default: starts with, case- and accent-insensitive, on any part of a HumanName or Address; :exact;
 * :contains; :missing.
 */
import { randomUUID } from 'node:crypto';
import { startServer, type TestServer } from '../../helpers/server';
import { allPages, create, link, matchIds, newTag, ref, refs, search, sorted } from './helpers';

let s: TestServer;
beforeAll(async () => {
  s = await startServer();
});
afterAll(async () => {
  await s.close();
});

const patient = (family: string, given: string[] = ['Ana'], extra: Record<string, unknown> = {}) => ({
  resourceType: 'Patient',
  name: [{ family, given }],
  ...extra,
});

test('default: starts with, ignoring case and accents', async () => {
  const t = newTag();
  const joao = await create(s, t, patient('Conceição', ['João']));
  const jo = await create(s, t, patient('Jordão', ['Maria']));
  await create(s, t, patient('Silva', ['Pedro']));
  expect(await matchIds(s, `Patient?${t.q}&name=joao`)).toEqual(sorted([joao]));
  expect(await matchIds(s, `Patient?${t.q}&name=JO`)).toEqual(sorted([joao, jo]));
  expect(await matchIds(s, `Patient?${t.q}&family=conceicao`)).toEqual(sorted([joao]));
  expect(await matchIds(s, `Patient?${t.q}&given=jo`)).toEqual(sorted([joao]));
  // starts-with, not contains
  expect(await matchIds(s, `Patient?${t.q}&name=oao`)).toEqual([]);
});

test(':exact matches the whole value, case- and accent-sensitively', async () => {
  const t = newTag();
  const exact = await create(s, t, patient('Conceição'));
  await create(s, t, patient('Conceicao'));
  await create(s, t, patient('Conceição Neto'));
  expect(await matchIds(s, `Patient?${t.q}&family:exact=Concei%C3%A7%C3%A3o`)).toEqual(sorted([exact]));
  expect(await matchIds(s, `Patient?${t.q}&family:exact=concei%C3%A7%C3%A3o`)).toEqual([]);
});

test(':contains matches anywhere in the value', async () => {
  const t = newTag();
  const a = await create(s, t, patient('Albuquerque'));
  await create(s, t, patient('Souza'));
  expect(await matchIds(s, `Patient?${t.q}&family:contains=QUERQ`)).toEqual(sorted([a]));
});

test('Address parts and comma OR', async () => {
  const t = newTag();
  const sp = await create(s, t, patient('A', ['A'], { address: [{ line: ['Av. Paulista, 1000'], city: 'São Paulo', state: 'SP' }] }));
  const rj = await create(s, t, patient('B', ['B'], { address: [{ city: 'Rio de Janeiro', state: 'RJ' }] }));
  expect(await matchIds(s, `Patient?${t.q}&address-city=sao`)).toEqual(sorted([sp]));
  expect(await matchIds(s, `Patient?${t.q}&address=paulista`)).toEqual(sorted([]));
  expect(await matchIds(s, `Patient?${t.q}&address=av.%20paulista`)).toEqual(sorted([sp]));
  expect(await matchIds(s, `Patient?${t.q}&address-city=sao,rio`)).toEqual(sorted([sp, rj]));
  expect(await matchIds(s, `Patient?${t.q}&address-state=RJ`)).toEqual(sorted([rj]));
});

test(':missing on a string parameter', async () => {
  const t = newTag();
  const named = await create(s, t, patient('Lima'));
  const unnamed = await create(s, t, { resourceType: 'Patient' });
  expect(await matchIds(s, `Patient?${t.q}&name:missing=true`)).toEqual(sorted([unnamed]));
  expect(await matchIds(s, `Patient?${t.q}&name:missing=false`)).toEqual(sorted([named]));
});

test('an unknown string modifier is a 400', async () => {
  const res = await s.request('GET', '/fhir/Patient?name:fuzzy=x');
  expect(res.status).toBe(400);
  expect(res.body.issue[0].code).toBe('invalid');
});

describe('a search whose only index condition is a string (ids read off the string index)', () => {
  // A family name no other test uses, so the search needs no _tag and takes the string-index path.
  const family = () => `Zq${randomUUID().replace(/-/g, '').slice(0, 12)}`;

  test('each match once, deleted resources excluded, other conditions still apply', async () => {
    const t = newTag();
    const f = family();
    // two names that both match: still one entry
    const twice = await create(s, t, patient(f, ['Ana'], { name: [{ family: f, given: ['Ana'] }, { family: `${f}-Neto`, given: ['Ana'] }] }));
    const once = await create(s, t, patient(`${f}son`, ['Bia'], { gender: 'female' }));
    const gone = await create(s, t, patient(f, ['Caio']));
    await create(s, t, patient(`X${f}`));
    expect((await s.request('DELETE', `/fhir/Patient/${gone.id}`)).status).toBeLessThan(300);
    expect(refs(await search(s, `Patient?name=${f}`)).sort()).toEqual(sorted([twice, once]));
    expect(refs(await search(s, `Patient?family=${f.toUpperCase()}`)).sort()).toEqual(sorted([twice, once]));
    expect(refs(await search(s, `Patient?name=${f}&gender=female`))).toEqual([ref(once)]);
    expect(refs(await search(s, `Patient?name=${f}&_id=${twice.id},${gone.id}`))).toEqual([ref(twice)]);
    expect(refs(await search(s, `Patient?name:exact=${f}`))).toEqual([ref(twice)]);
  });

  test('pages forward and backward in id order, without gaps or repeats', async () => {
    const t = newTag();
    const f = family();
    const created = [];
    for (let i = 0; i < 7; i++) created.push(await create(s, t, patient(`${f}${i}`, ['Ana', `${f}given`])));
    const all = sorted(created);
    const pages = await allPages(s, `Patient?name=${f}&_count=3`);
    expect(pages.map((p) => p.length)).toEqual([3, 3, 1]);
    expect(pages.flat()).toEqual(all);
    // back from the last page
    let bundle = await search(s, `Patient?name=${f}&_count=3`);
    bundle = await search(s, link(bundle, 'next')!);
    bundle = await search(s, link(bundle, 'next')!);
    bundle = await search(s, link(bundle, 'previous')!);
    expect(refs(bundle)).toEqual(all.slice(3, 6));
  });
});
