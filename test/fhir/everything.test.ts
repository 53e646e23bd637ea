/**
 * GET Patient/[id]/$everything (https://hl7.org/fhir/R4/patient-operation-everything.html), the LGPD export of
 * issue 13: a patient's record across several types (Observation, Encounter, Consent, a DocumentReference with its
 * attachment link and its Binary, an Appointment), for the patient and an admin, nothing of another patient's; paging, `_since`,
 * `_type`, and who is refused. Then a Synthea record: everything of it, and how long one export takes.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startServer, type TestServer } from '../helpers/server';
import { as, binaryOf, consent, actor, document, doctor, instances, recordsPatient, window, type RecordsPatient } from '../workflows/records/consentSupport';
import type { Doctor } from '../workflows/people';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

let s: TestServer;
let admin: string;
let dr: Doctor;
let ana: RecordsPatient;
let bia: RecordsPatient;
/** "Type/id" of everything in Ana's record (her Patient included). */
const record: string[] = [];
let organization: string;
let docId: string;
let binaryId: string;

async function created(p: RecordsPatient, body: Json, token = p.token): Promise<string> {
  const res = await as(s, token, 'POST', `/fhir/${body.resourceType}`, body);
  if (res.status !== 201) throw new Error(`${body.resourceType}: ${res.status} ${res.text}`);
  return `${body.resourceType}/${res.body.id}`;
}

/** Every page of an export: match entries ("Type/id", in order), include entries, the pages' bundles. */
async function exportAll(token: string, query: string): Promise<{ matches: string[]; included: string[]; pages: Json[] }> {
  const pages: Json[] = [];
  let url: string | undefined = `/fhir/${query}`;
  while (url) {
    const res = await as(s, token, 'GET', url);
    if (res.status !== 200) throw new Error(`${url}: ${res.status} ${res.text}`);
    pages.push(res.body);
    url = res.body.link?.find((l: Json) => l.relation === 'next')?.url;
    if (pages.length > 200) throw new Error('too many pages');
  }
  const entries = pages.flatMap((p) => (p.entry ?? []) as Json[]);
  const name = (e: Json) => `${e.resource.resourceType}/${e.resource.id}`;
  return { matches: entries.filter((e) => e.search.mode === 'match').map(name), included: entries.filter((e) => e.search.mode === 'include').map(name), pages };
}

const sorted = (xs: string[]) => [...xs].sort();

beforeAll(async () => {
  s = await startServer();
  admin = await s.adminToken();
  dr = await doctor(s, admin);
  [ana, bia] = [await recordsPatient(s), await recordsPatient(s)];
  organization = await created(ana, { resourceType: 'Organization', name: 'Laboratório Central' }, admin);
  record.push(ana.patient);
  for (const p of [ana, bia]) {
    const mine = p === ana ? record : [];
    const encounter = await created(p, { resourceType: 'Encounter', status: 'finished', class: { code: 'AMB' }, subject: { reference: p.patient }, serviceProvider: { reference: organization } }, admin);
    mine.push(encounter);
    for (const value of [70, 71, 72]) {
      mine.push(
        await created(p, {
          resourceType: 'Observation',
          status: 'final',
          code: { coding: [{ system: 'http://loinc.org', code: '29463-7' }] },
          subject: { reference: p.patient },
          encounter: { reference: encounter },
          performer: [{ reference: dr.practitioner }],
          valueQuantity: { value, unit: 'kg', system: 'http://unitsofmeasure.org', code: 'kg' },
        }),
      );
    }
    mine.push(await created(p, { resourceType: 'Condition', subject: { reference: p.patient }, code: { text: 'Hipertensão' } }));
    mine.push(
      await created(p, {
        resourceType: 'Appointment',
        status: 'proposed',
        participant: [{ actor: { reference: p.patient }, status: 'accepted' }, { actor: { reference: dr.practitioner }, status: 'needs-action' }],
      }),
    );
    const doc = await document(s, p, { title: 'hemograma.txt' });
    const binary = await binaryOf(s, p, doc);
    // the document names its attachment by link
    const current = (await as(s, p.token, 'GET', `/fhir/DocumentReference/${doc}`)).body;
    current.content[0].attachment.url = `Binary/${binary}`;
    const put = await as(s, p.token, 'PUT', `/fhir/DocumentReference/${doc}`, current);
    if (put.status !== 200) throw new Error(`document: ${put.status} ${put.text}`);
    mine.push(`DocumentReference/${doc}`);
    mine.push(await created(p, consent(p.patient, { type: 'permit', period: window(-60, 3600), actor: [actor(dr.practitioner)], data: instances(doc) })));
    if (p === ana) [docId, binaryId] = [doc, binary];
    else {
      // a document of Ana's linking Bia's bytes does not bring them into Ana's export
      record.push(
        await created(ana, { resourceType: 'DocumentReference', status: 'current', subject: { reference: ana.patient }, content: [{ attachment: { contentType: 'text/plain', url: `Binary/${binary}` } }] }, admin),
      );
    }
  }
}, 120_000);
afterAll(async () => {
  await s?.close();
});

test('the patient gets their whole record, the Patient first, with what it references, and nothing of another patient', async () => {
  const res = await as(s, ana.token, 'GET', `/fhir/${ana.patient}/$everything`);
  expect(res.status).toBe(200);
  expect(res.body).toMatchObject({ resourceType: 'Bundle', type: 'searchset', total: record.length });
  const { matches, included } = await exportAll(ana.token, `${ana.patient}/$everything`);
  expect(matches[0]).toBe(ana.patient);
  expect(sorted(matches)).toEqual(sorted(record));
  expect(sorted(included)).toEqual(sorted([dr.practitioner, organization, `Binary/${binaryId}`]));
  const doc = res.body.entry.find((e: Json) => e.resource.id === docId).resource;
  expect(doc.content[0].attachment.url).toBe(`Binary/${binaryId}`);
  const binary = res.body.entry.find((e: Json) => e.resource.resourceType === 'Binary');
  expect(binary.search.mode).toBe('include');
  expect(binary.resource).toMatchObject({ id: binaryId, contentType: 'text/plain', securityContext: { reference: `DocumentReference/${docId}` } });
  expect(binary.resource.data).toBeUndefined();
  const types = new Set(matches.map((m) => m.split('/')[0]));
  expect(types).toEqual(new Set(['Patient', 'Encounter', 'Observation', 'Condition', 'Appointment', 'DocumentReference', 'Consent']));
  for (const e of res.body.entry) expect(e.fullUrl).toBe(`${s.fhirBase}/${e.resource.resourceType}/${e.resource.id}`);
});

test('paging returns each resource exactly once, and next links keep the parameters', async () => {
  const { matches, pages } = await exportAll(ana.token, `${ana.patient}/$everything?_count=2&_total=accurate`);
  expect(pages.length).toBe(Math.ceil(record.length / 2));
  expect(matches).toHaveLength(record.length);
  expect(sorted(matches)).toEqual(sorted(record));
  for (const page of pages) {
    expect(page.total).toBe(record.length);
    expect(page.entry.filter((e: Json) => e.search.mode === 'match').length).toBeLessThanOrEqual(2);
    const next = page.link.find((l: Json) => l.relation === 'next');
    if (next) expect(new URL(next.url).searchParams.get('_total')).toBe('accurate');
  }
  // _count=1: the first page is the Patient alone
  const one = await exportAll(ana.token, `${ana.patient}/$everything?_count=1`);
  expect(one.matches[0]).toBe(ana.patient);
  expect(sorted(one.matches)).toEqual(sorted(record));
});

test('_type narrows to the types named, includes too; _since to what changed since', async () => {
  const typed = await exportAll(ana.token, `${ana.patient}/$everything?_type=Observation,Consent`);
  expect(sorted(typed.matches)).toEqual(sorted(record.filter((r) => /^(Observation|Consent)\//.test(r))));
  expect(typed.included).toEqual([]);
  const withPractitioners = await exportAll(ana.token, `${ana.patient}/$everything?_type=Observation&_type=Practitioner`);
  expect(withPractitioners.matches).toHaveLength(3);
  expect(withPractitioners.included).toEqual([dr.practitioner]);
  const documents = await exportAll(ana.token, `${ana.patient}/$everything?_type=DocumentReference,Binary`);
  expect(documents.matches).toHaveLength(2);
  expect(documents.included).toEqual([`Binary/${binaryId}`]);

  const since = new Date().toISOString();
  await new Promise((r) => setTimeout(r, 10));
  const condition = record.find((r) => r.startsWith('Condition/'))!;
  const current = (await as(s, ana.token, 'GET', `/fhir/${condition}`)).body;
  const put = await as(s, ana.token, 'PUT', `/fhir/${condition}`, { ...current, code: { text: 'Hipertensão arterial' } });
  expect(put.status).toBe(200);
  const changed = await exportAll(ana.token, `${ana.patient}/$everything?_since=${encodeURIComponent(since)}`);
  expect(changed.matches).toEqual([condition]);
  expect(changed.pages[0].total).toBe(1);

  const bad = await as(s, ana.token, 'GET', `/fhir/${ana.patient}/$everything?_since=2024-01-01`);
  expect(bad.status).toBe(400);
  expect(bad.body.issue[0].code).toBe('invalid');
  const badType = await as(s, ana.token, 'GET', `/fhir/${ana.patient}/$everything?_type=Nothing`);
  expect(badType.status).toBe(400);
  expect(badType.body.issue[0].code).toBe('invalid');
});

test('unknown parameters are a 400, or a warning under Prefer: handling=lenient', async () => {
  const strict = await as(s, ana.token, 'GET', `/fhir/${ana.patient}/$everything?start=2020-01-01`);
  expect(strict.status).toBe(400);
  expect(strict.body.issue[0].diagnostics).toContain("'start' is not supported");
  const lenient = await as(s, ana.token, 'GET', `/fhir/${ana.patient}/$everything?foo=1`, undefined, { prefer: 'handling=lenient' });
  expect(lenient.status).toBe(200);
  expect(lenient.body.entry.filter((e: Json) => e.search.mode === 'outcome')).toHaveLength(1);
  const forged = await as(s, ana.token, 'GET', `/fhir/${ana.patient}/$everything?_cursor=abc`);
  expect(forged.status).toBe(400);
  const post = await as(s, ana.token, 'POST', `/fhir/${ana.patient}/$everything`, { resourceType: 'Parameters' });
  expect(post.status).toBe(405);
});

test('an admin gets the same record; another patient gets 404, a practitioner 403, no token 401', async () => {
  const byAdmin = await exportAll(admin, `${ana.patient}/$everything`);
  expect(sorted(byAdmin.matches)).toEqual(sorted(record));
  expect(sorted(byAdmin.included)).toEqual(sorted([dr.practitioner, organization, `Binary/${binaryId}`]));

  const other = await as(s, bia.token, 'GET', `/fhir/${ana.patient}/$everything`);
  expect(other.status).toBe(404);
  expect(other.body.issue[0].code).toBe('not-found');
  const practitioner = await as(s, dr.token, 'GET', `/fhir/${ana.patient}/$everything`);
  expect(practitioner.status).toBe(403);
  expect(practitioner.body.issue[0].code).toBe('forbidden');
  const anonymous = await s.request('GET', `/fhir/${ana.patient}/$everything`, undefined, { authorization: '' });
  expect(anonymous.status).toBe(401);
  const missing = await as(s, admin, 'GET', '/fhir/Patient/no-such-patient/$everything');
  expect(missing.status).toBe(404);
});

test('the CapabilityStatement lists $everything on Patient with the specification canonical', async () => {
  const res = await s.request('GET', '/fhir/metadata');
  const patient = res.body.rest[0].resource.find((r: Json) => r.type === 'Patient');
  expect(patient.operation).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'everything', definition: 'http://hl7.org/fhir/OperationDefinition/Patient-everything' })]));
});

const SYNTHEA = resolve(__dirname, '../../../shared/conformance/synthea');
const SYNTHEA_FILES = ['0-hospitalInformation1625911868739.json', '0-practitionerInformation1625911868739.json', 'b6f92fa3-b989-fa1b-aad8-aafb1020a5e9.json'];

test('a Synthea record: every resource of the patient, once, and the time one export takes', async () => {
  const created = new Map<string, string>();
  let patientBundle: { entry: { resource: Json }[] } | undefined;
  for (const file of SYNTHEA_FILES) {
    const text = readFileSync(join(SYNTHEA, file), 'utf8');
    const b = JSON.parse(text) as { entry: { resource: Json }[] };
    const res = await as(s, admin, 'POST', '/fhir', text, { prefer: 'return=minimal' });
    expect([file, res.status]).toEqual([file, 200]);
    res.body.entry.forEach((e: { response: { location?: string } }, i: number) => {
      const loc = /\/fhir\/([A-Za-z]+)\/([^/]+)\/_history/.exec(e.response.location ?? '');
      if (loc) created.set(b.entry[i].resource.id, `${loc[1]}/${loc[2]}`);
    });
    patientBundle = b;
  }
  // every resource of the patient's bundle that is in their compartment (Provenance by its `patient`), and nothing
  // else; Device and Medication are not in R4's Patient compartment (a patient cannot read them either)
  const patient = created.get(patientBundle!.entry.find((e) => e.resource.resourceType === 'Patient')!.resource.id)!;
  const started = performance.now();
  const all = await exportAll(admin, `${patient}/$everything?_count=1000`);
  const ms = performance.now() - started;
  const paged = await exportAll(admin, `${patient}/$everything`);
  const mine = new Set([...created.values()]);
  expect(new Set(all.matches).size).toBe(all.matches.length);
  expect(all.matches.every((m) => mine.has(m))).toBe(true);
  expect(sorted(paged.matches)).toEqual(sorted(all.matches));
  const expected = patientBundle!.entry.filter((e) => !['Device', 'Medication'].includes(e.resource.resourceType)).map((e) => created.get(e.resource.id)!);
  expect(sorted(all.matches)).toEqual(sorted(expected));
  expect(all.included.some((r) => r.startsWith('Practitioner/'))).toBe(true);
  expect(all.included.some((r) => r.startsWith('Organization/'))).toBe(true);
  // eslint-disable-next-line no-console
  console.log(`$everything of a Synthea record: ${all.matches.length} resources + ${all.included.length} included, ${Math.round(ms)} ms in ${all.pages.length} page(s) of 1000; ${paged.pages.length} pages of 100`);
}, 60_000);
