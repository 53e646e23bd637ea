/**
 * Values longer than an index entry can hold (a btree entry fits in a third of a page): the resource is
 * stored whole and found by them. https://hl7.org/fhir/R4/search.html#string, #token, #uri, #reference
 * A string index row keeps the first 1,000 bytes (prefix matches see those); whole-value matches (token,
 * uri, reference url) keep a prefix and a hash of the whole, so equality stays exact.
 */
import { randomBytes } from 'node:crypto';
import { startServer, type TestServer } from '../../helpers/server';
import { create, matchIds, newTag, sorted } from './helpers';

let s: TestServer;
beforeAll(async () => {
  s = await startServer();
});
afterAll(async () => {
  await s.close();
});

/** Random letters: nothing for PostgreSQL to compress, so the value really is this long in an index entry. */
const longText = (chars: number) => randomBytes(chars).toString('base64').replace(/[^A-Za-z]/g, 'x').slice(0, chars);
const q = encodeURIComponent;

test('a 5,000-character name is stored whole and found by prefix, whole value and :exact', async () => {
  const t = newTag();
  const family = longText(5000);
  const patient = await create(s, t, { resourceType: 'Patient', name: [{ family }] });
  const read = await s.request('GET', `/fhir/Patient/${patient.id}`);
  expect(read.body.name[0].family).toBe(family);
  expect(await matchIds(s, `Patient?${t.q}&family=${q(family.slice(0, 20))}`)).toEqual(sorted([patient]));
  expect(await matchIds(s, `Patient?${t.q}&family=${q(family)}`)).toEqual(sorted([patient]));
  expect(await matchIds(s, `Patient?${t.q}&family:exact=${q(family)}`)).toEqual(sorted([patient]));
  expect(await matchIds(s, `Patient?${t.q}&family:contains=${q(family.slice(100, 140))}`)).toEqual(sorted([patient]));
  expect(await matchIds(s, `Patient?${t.q}&family=${q(family.slice(0, 20) + 'different')}`)).toEqual([]);
});

test('long identifiers stay exact: two sharing their first 3,000 characters are told apart', async () => {
  const t = newTag();
  const system = `urn:test:${longText(3000)}`;
  const common = longText(3000);
  const a = await create(s, t, { resourceType: 'Patient', identifier: [{ system, value: `${common}A` }] });
  const b = await create(s, t, { resourceType: 'Patient', identifier: [{ system, value: `${common}B` }] });
  expect(await matchIds(s, `Patient?${t.q}&identifier=${q(`${system}|${common}A`)}`)).toEqual(sorted([a]));
  expect(await matchIds(s, `Patient?${t.q}&identifier=${q(`${system}|${common}B`)}`)).toEqual(sorted([b]));
  expect(await matchIds(s, `Patient?${t.q}&identifier=${q(`${system}|`)}`)).toEqual(sorted([a, b]));
  expect(await matchIds(s, `Patient?${t.q}&identifier=${q(`${system}|${common}`)}`)).toEqual([]);
});

test('a long uri and a long external reference are found by their whole value', async () => {
  const t = newTag();
  const url = `http://example.org/ValueSet/${longText(4000)}`;
  const valueSet = await create(s, t, { resourceType: 'ValueSet', status: 'active', url });
  expect(await matchIds(s, `ValueSet?${t.q}&url=${q(url)}`)).toEqual(sorted([valueSet]));
  expect(await matchIds(s, `ValueSet?${t.q}&url:below=${q(url.slice(0, 60))}`)).toEqual(sorted([valueSet]));
  expect(await matchIds(s, `ValueSet?${t.q}&url=${q(url.slice(0, -1))}`)).toEqual([]);

  const external = `http://other.example.org/fhir/Patient/${longText(4000)}`;
  const observation = await create(s, t, {
    resourceType: 'Observation',
    status: 'final',
    code: { text: 'weight' },
    subject: { reference: external },
  });
  expect(await matchIds(s, `Observation?${t.q}&subject=${q(external)}`)).toEqual(sorted([observation]));
});
