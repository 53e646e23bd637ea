/**
 * Searching real data the way an EHR does: the Synthea bundles of ../shared/conformance/synthea, loaded in
 * their SOURCE.md order, then a patient's vital signs by code and date, their Encounters with the
 * organizations and practitioners included, and the Provenance of their record — each checked against
 * what the bundles contain. Patient data is addressed through the ids this load created (loading twice
 * duplicates patient bundles, and other test files may load them into a shared database).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startServer, type TestServer } from '../../helpers/server';
import { refs, search } from './helpers';

const DIR = resolve(__dirname, '../../../../shared/conformance/synthea');
const SYNTHEA = 'https://github.com/synthetichealth/synthea';
const LOINC = 'http://loinc.org';
const PATIENT_FILE = 'b6f92fa3-b989-fa1b-aad8-aafb1020a5e9.json';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

let s: TestServer;
/** Original (urn:uuid) id -> "Type/newId" of what this load created. */
const created = new Map<string, string>();
let bundle: { entry: { resource: Json }[] };
let patient: string;

beforeAll(async () => {
  s = await startServer();
  const files = readdirSync(DIR).filter((f) => f.endsWith('.json')).sort();
  expect(files).toHaveLength(12);
  for (const file of files) {
    const text = readFileSync(join(DIR, file), 'utf8');
    const b = JSON.parse(text) as { entry: { resource: Json }[] };
    const res = await s.request('POST', '/fhir', text, { prefer: 'return=minimal' });
    expect([file, res.status]).toEqual([file, 200]);
    res.body.entry.forEach((e: { response: { location?: string } }, i: number) => {
      const loc = /\/fhir\/([A-Za-z]+)\/([^/]+)\/_history/.exec(e.response.location ?? '');
      if (loc) created.set(b.entry[i].resource.id, `${loc[1]}/${loc[2]}`);
    });
  }
  bundle = JSON.parse(readFileSync(join(DIR, PATIENT_FILE), 'utf8'));
  patient = created.get(bundle.entry.find((e) => e.resource.resourceType === 'Patient')!.resource.id)!;
}, 900_000);
afterAll(async () => {
  await s.close();
});

const ofType = (type: string) => bundle.entry.map((e) => e.resource).filter((r) => r.resourceType === type);
const stored = (r: Json) => created.get(r.id)!;

test("a patient's body weights by code and date range, newest first", async () => {
  const weights = ofType('Observation').filter((o) => o.code.coding.some((c: Json) => c.system === LOINC && c.code === '29463-7'));
  expect(weights.length).toBeGreaterThan(5);
  const times = weights.map((o) => Date.parse(o.effectiveDateTime)).sort((a, b) => a - b);
  const from = new Date(times[Math.floor(times.length / 2)]).toISOString().slice(0, 10);
  const expected = weights
    .filter((o) => Date.parse(o.effectiveDateTime) >= Date.parse(`${from}T00:00:00Z`))
    .sort((a, b) => Date.parse(b.effectiveDateTime) - Date.parse(a.effectiveDateTime))
    .map(stored);
  const got = await search(s, `Observation?patient=${patient}&code=${LOINC}|29463-7&date=ge${from}&_sort=-date&_count=100`);
  expect(refs(got)).toEqual(expected);
  expect(got.total).toBe(expected.length);
  // the same, as a closed range with two date parameters, counted
  const to = new Date(times[times.length - 1]).toISOString().slice(0, 10);
  const inRange = weights.filter((o) => {
    const t = Date.parse(o.effectiveDateTime);
    return t >= Date.parse(`${from}T00:00:00Z`) && t < Date.parse(`${to}T00:00:00Z`);
  });
  const counted = await search(s, `Observation?patient=${patient}&code=29463-7&date=ge${from}&date=lt${to}&_summary=count`);
  expect(counted.total).toBe(inRange.length);
});

test('Encounters with their service provider organizations and practitioners included', async () => {
  const encounters = ofType('Encounter');
  const orgIdentifiers = new Set(encounters.map((e) => e.serviceProvider.reference.split('|')[1]));
  const npis = new Set(encounters.flatMap((e) => (e.participant ?? []).map((p: Json) => p.individual.reference.split('|')[1])));
  const got = await search(
    s,
    `Encounter?patient=${patient}&_include=Encounter:service-provider&_include=Encounter:practitioner&_count=200`,
  );
  expect(refs(got).sort()).toEqual(encounters.map(stored).sort());
  const included = got.entry.filter((e: Json) => e.search.mode === 'include').map((e: Json) => e.resource);
  const orgs = included.filter((r: Json) => r.resourceType === 'Organization');
  const practitioners = included.filter((r: Json) => r.resourceType === 'Practitioner');
  expect(new Set(orgs.map((o: Json) => o.identifier.find((i: Json) => i.system === SYNTHEA).value))).toEqual(orgIdentifiers);
  expect(new Set(practitioners.map((p: Json) => p.identifier[0].value))).toEqual(npis);
  expect(orgs).toHaveLength(orgIdentifiers.size);
});

test("the record's Provenance, by _revinclude and by _has", async () => {
  const provenance = ofType('Provenance')[0];
  const encounters = await search(s, `Encounter?patient=${patient}&_revinclude=Provenance:target&_count=5`);
  expect(refs(encounters, 'include')).toEqual([stored(provenance)]);
  const withPatient = await search(s, `Patient?_id=${patient.split('/')[1]}&_revinclude=Provenance:target`);
  expect(refs(withPatient, 'include')).toEqual([stored(provenance)]);
  // reverse chaining: the patient has a Provenance whose author is the bundle's practitioner
  const npi = provenance.agent[0].who.reference.split('|')[1];
  const has = await search(s, `Patient?_id=${patient.split('/')[1]}&_has:Provenance:target:agent.identifier=http://hl7.org/fhir/sid/us-npi|${npi}`);
  expect(refs(has)).toEqual([patient]);
});

test('Conditions by clinical status and onset, compartment search, and paging through a large result', async () => {
  const conditions = ofType('Condition');
  const active = conditions.filter((c) => c.clinicalStatus.coding[0].code === 'active').map(stored).sort();
  const got = await search(s, `Condition?patient=${patient}&clinical-status=active&_count=100`);
  expect(refs(got).sort()).toEqual(active);
  const id = patient.split('/')[1];
  const compartment = await search(s, `Patient/${id}/Condition?clinical-status=active&_count=100`);
  expect(refs(compartment).sort()).toEqual(active);

  const observations = ofType('Observation').map(stored);
  const pages: string[] = [];
  let page = await search(s, `Patient/${id}/Observation?_count=50&_sort=date`);
  pages.push(...refs(page));
  for (let next = page.link.find((l: Json) => l.relation === 'next'); next; next = page.link.find((l: Json) => l.relation === 'next')) {
    page = await search(s, next.url);
    pages.push(...refs(page));
  }
  expect(pages).toHaveLength(observations.length);
  expect(new Set(pages)).toEqual(new Set(observations));
});
