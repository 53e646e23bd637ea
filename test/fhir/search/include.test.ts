/**
 * _include and _revinclude (https://hl7.org/fhir/R4/search.html#include): search.mode include, :iterate,
 * `Type:*`, target type, no duplicates, and paging over matches only.
 */
import { startServer, type TestServer } from '../../helpers/server';
import { create, newTag, ref, refs, search, sorted, type Tagged } from './helpers';

let s: TestServer;
beforeAll(async () => {
  s = await startServer();
});
afterAll(async () => {
  await s.close();
});

async function directory(t: Tagged) {
  const org = await create(s, t, { resourceType: 'Organization', name: 'Clínica' });
  const location = await create(s, t, { resourceType: 'Location', name: 'Sala 1', managingOrganization: { reference: ref(org) } });
  const practitioner = await create(s, t, { resourceType: 'Practitioner', name: [{ family: 'Ramos' }] });
  const role = await create(s, t, {
    resourceType: 'PractitionerRole',
    practitioner: { reference: ref(practitioner) },
    organization: { reference: ref(org) },
    location: [{ reference: ref(location) }],
  });
  const schedule = await create(s, t, { resourceType: 'Schedule', actor: [{ reference: ref(role) }] });
  return { org, location, practitioner, role, schedule };
}

test('_include of one parameter adds its targets in mode include', async () => {
  const t = newTag();
  const d = await directory(t);
  const bundle = await search(s, `PractitionerRole?${t.q}&_include=PractitionerRole:practitioner`);
  expect(refs(bundle)).toEqual([ref(d.role)]);
  expect(refs(bundle, 'include')).toEqual([ref(d.practitioner)]);
  const entry = bundle.entry.find((e: { search: { mode: string } }) => e.search.mode === 'include');
  expect(entry.fullUrl).toBe(`${s.fhirBase}/${ref(d.practitioner)}`);
});

test('_include=Type:* follows every reference parameter; a target type narrows it', async () => {
  const t = newTag();
  const d = await directory(t);
  const all = await search(s, `PractitionerRole?${t.q}&_include=PractitionerRole:*`);
  expect(refs(all, 'include').sort()).toEqual(sorted([d.practitioner, d.org, d.location]));
  const typed = await search(s, `Schedule?${t.q}&_include=Schedule:actor:PractitionerRole`);
  expect(refs(typed, 'include')).toEqual([ref(d.role)]);
  const wrongType = await search(s, `Schedule?${t.q}&_include=Schedule:actor:Patient`);
  expect(refs(wrongType, 'include')).toEqual([]);
});

test('_revinclude adds the resources that reference the matches', async () => {
  const t = newTag();
  const d = await directory(t);
  const bundle = await search(s, `Practitioner?${t.q}&_revinclude=PractitionerRole:practitioner`);
  expect(refs(bundle)).toEqual([ref(d.practitioner)]);
  expect(refs(bundle, 'include')).toEqual([ref(d.role)]);
});

test(':iterate follows includes of included resources', async () => {
  const t = newTag();
  const d = await directory(t);
  const once = await search(s, `Schedule?${t.q}&_include=Schedule:actor&_include=PractitionerRole:practitioner`);
  // without :iterate, PractitionerRole:practitioner applies to matches (Schedules) only
  expect(refs(once, 'include')).toEqual([ref(d.role)]);
  const iterated = await search(
    s,
    `Schedule?${t.q}&_include=Schedule:actor&_include:iterate=PractitionerRole:practitioner&_include:iterate=PractitionerRole:location&_include:iterate=Location:organization`,
  );
  expect(refs(iterated, 'include').sort()).toEqual(sorted([d.role, d.practitioner, d.location, d.org]));
  const rev = await search(s, `Organization?${t.q}&_revinclude=Location:organization&_revinclude:iterate=PractitionerRole:location`);
  expect(refs(rev, 'include').sort()).toEqual(sorted([d.location, d.role]));
});

test('a resource that is a match is not repeated as an include; includes do not change paging', async () => {
  const t = newTag();
  const a = await create(s, t, { resourceType: 'Patient' });
  const b = await create(s, t, { resourceType: 'Patient', link: [{ other: { reference: ref(a) }, type: 'seealso' }] });
  const both = await search(s, `Patient?${t.q}&_include=Patient:link`);
  expect(refs(both).sort()).toEqual(sorted([a, b]));
  expect(refs(both, 'include')).toEqual([]);
  const page = await search(s, `Patient?${t.q}&_include=Patient:link&_count=1&_sort=-_lastUpdated`);
  expect(refs(page)).toEqual([ref(b)]);
  expect(refs(page, 'include')).toEqual([ref(a)]);
  const next = await search(s, page.link.find((l: { relation: string }) => l.relation === 'next').url);
  expect(refs(next)).toEqual([ref(a)]);
  expect(next.link.find((l: { relation: string }) => l.relation === 'next')).toBeUndefined();
});

test('malformed _include values are a 400', async () => {
  for (const v of ['PractitionerRole', 'PractitionerRole:specialty', 'Nope:x', 'PractitionerRole:practitioner:Nope']) {
    const res = await s.request('GET', `/fhir/PractitionerRole?_include=${v}`);
    expect([v, res.status]).toEqual([v, 400]);
  }
});
