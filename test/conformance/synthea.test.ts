/**
 * Real data no one here wrote: the Synthea R4 bundles of ../shared/conformance/synthea, imported in the
 * load order of their SOURCE.md (hospital and practitioner batches first, then the patient transactions).
 * Every entry must answer 2xx, and every conditional reference must resolve to the resource it names.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startServer, type TestServer } from '../helpers/server';

const DIR = resolve(__dirname, '../../../shared/conformance/synthea');

let s: TestServer;
beforeAll(async () => {
  s = await startServer();
});
afterAll(async () => {
  await s.close();
});

interface Entry {
  resource: { resourceType: string; id: string; [k: string]: unknown };
  request: { method: string; url: string };
}

test('imports every Synthea bundle with every entry 2xx and every conditional reference resolved', async () => {
  const files = readdirSync(DIR).filter((f) => f.endsWith('.json')).sort();
  expect(files).toHaveLength(12);
  let entries = 0;
  const created = new Map<string, string>(); // original urn id -> Type/newId
  const conditional: { type: string; criteria: string }[] = [];
  for (const file of files) {
    const text = readFileSync(join(DIR, file), 'utf8');
    const bundle = JSON.parse(text) as { type: string; entry: Entry[] };
    for (const m of text.matchAll(/"reference"\s*:\s*"([A-Z][A-Za-z]+)\?([^"]+)"/g)) conditional.push({ type: m[1], criteria: m[2] });
    const res = await s.request('POST', '/fhir', text, { prefer: 'return=minimal' });
    expect([file, res.status]).toEqual([file, 200]);
    expect(res.body.type).toBe(`${bundle.type}-response`);
    res.body.entry.forEach((e: { response: { status: string; location: string } }, i: number) => {
      expect([file, i, e.response.status.slice(0, 1)]).toEqual([file, i, '2']);
      const loc = /\/fhir\/([A-Za-z]+)\/([^/]+)\/_history/.exec(e.response.location ?? '');
      if (loc) created.set(bundle.entry[i].resource.id, `${loc[1]}/${loc[2]}`);
    });
    entries += bundle.entry.length;
  }
  expect(entries).toBe(4412);

  // each distinct conditional reference names exactly one stored resource
  const distinct = [...new Map(conditional.map((c) => [`${c.type}?${c.criteria}`, c])).values()];
  for (const c of distinct) {
    const found = await s.request('GET', `/fhir/${c.type}?${c.criteria.replace('|', '%7C')}&_total=accurate`);
    expect([c.type, c.criteria, found.body.total]).toEqual([c.type, c.criteria, 1]);
  }

  // a patient's Encounter points at stored resources, never at a urn: or a conditional URL
  const patientFile = files.find((f) => f.startsWith('8a4c9c04'))!;
  const bundle = JSON.parse(readFileSync(join(DIR, patientFile), 'utf8')) as { entry: Entry[] };
  const encounter = bundle.entry.find((e) => e.resource.resourceType === 'Encounter')!;
  const stored = await s.request('GET', `/fhir/${created.get(encounter.resource.id)}`);
  expect(stored.status).toBe(200);
  const refs = JSON.stringify(stored.body).match(/"reference":"[^"]+"/g) ?? [];
  expect(refs.length).toBeGreaterThan(0);
  for (const ref of refs) {
    const target = ref.slice('"reference":"'.length, -1);
    expect(target).toMatch(/^[A-Z][A-Za-z]+\/[A-Za-z0-9\-.]+$/);
    expect((await s.request('GET', `/fhir/${target}`)).status).toBe(200);
  }

  // an ExplanationOfBenefit's contained ServiceRequest had conditional references too
  const eob = bundle.entry.find((e) => e.resource.resourceType === 'ExplanationOfBenefit')!;
  const storedEob = await s.request('GET', `/fhir/${created.get(eob.resource.id)}`);
  const contained = JSON.stringify(storedEob.body.contained);
  expect(contained).not.toMatch(/\?identifier=/);
  expect(contained).toMatch(/"reference":"Practitioner\//);
}, 600_000);
