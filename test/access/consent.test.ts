/**
 * Sharing by Consent (CONTRACT section 6; issue 13; https://hl7.org/fhir/R4/consent.html#provision): a practitioner
 * sees a patient's DocumentReference, and the Binary whose securityContext it is, only while an active Consent names
 * them as IRCP actor, now lies in its period and the document is named in provision.data or has a category in
 * provision.code (deny inside permit and dataPeriod honoured), or when they authored it. Search (matches, _total,
 * paging, _include/_revinclude), read, vread, history and Binary agree; expiry and revocation take effect at once.
 */
import { startServer, type TestServer } from '../helpers/server';
import type { Doctor } from '../workflows/people';
import {
  actor,
  as,
  binaryOf,
  consent,
  doctor,
  document,
  instances,
  matches,
  recordsPatient,
  share,
  category,
  until,
  window,
  type RecordsPatient,
} from '../workflows/records/consentSupport';

let s: TestServer;
let admin: string;
let a: Doctor;
let b: Doctor;
let c: Doctor;

beforeAll(async () => {
  s = await startServer();
  admin = await s.adminToken();
  [a, b, c] = await Promise.all([doctor(s, admin), doctor(s, admin), doctor(s, admin)]);
}, 60_000);
afterAll(() => s?.close());

/** What the doctor sees of the patient's documents: matches of the search and its total. */
const seen = async (d: Doctor, p: RecordsPatient) => {
  const r = await matches(s, d.token, `DocumentReference?subject=${p.patient}&_total=accurate`);
  expect(r.total).toBe(r.ids.length);
  return r.ids;
};
const status = async (d: Doctor, path: string) => (await as(s, d.token, 'GET', `/fhir/${path}`)).status;

test('one file shared with doctor A for a few seconds: A sees exactly it everywhere, B nothing; after the window, nothing', async () => {
  const p = await recordsPatient(s);
  const shared = await document(s, p, { category: 'lab', author: c.practitioner });
  const other = await document(s, p, { category: 'lab', author: c.practitioner });
  const sharedBytes = await binaryOf(s, p, shared);
  const otherBytes = await binaryOf(s, p, other);
  const period = window(-1, 5);
  await share(s, p, { type: 'permit', period, actor: [actor(a.practitioner)], data: instances(shared) });

  expect(await seen(a, p)).toEqual([shared]);
  expect((await matches(s, a.token, `DocumentReference?subject=${p.patient}&_summary=count`)).total).toBe(1);
  expect((await matches(s, a.token, 'DocumentReference?_total=accurate')).ids).toEqual([shared]);
  expect(await status(a, `DocumentReference/${shared}`)).toBe(200);
  expect(await status(a, `DocumentReference/${shared}/_history/1`)).toBe(200);
  const history = await as(s, a.token, 'GET', `/fhir/DocumentReference/${shared}/_history`);
  expect([history.status, history.body.total]).toEqual([200, 1]);
  expect(await status(a, `DocumentReference/${other}`)).toBe(404);
  expect(await status(a, `DocumentReference/${other}/_history/1`)).toBe(404);
  expect(await status(a, `DocumentReference/${other}/_history`)).toBe(404);
  expect(await status(a, `Binary/${sharedBytes}`)).toBe(200);
  expect(await status(a, `Binary/${otherBytes}`)).toBe(404);
  const bytes = await as(s, a.token, 'GET', `/fhir/Binary/${sharedBytes}`, undefined, { accept: '*/*' });
  expect([bytes.status, bytes.text]).toEqual([200, 'hemoglobin 14 g/dL']);
  // _include and _revinclude bring in only what the doctor may see
  const included = await matches(s, a.token, `DocumentReference?_id=${shared},${other}&_include=DocumentReference:author`);
  expect([included.ids, included.included]).toEqual([[shared], [c.practitioner]]);
  const rev = await matches(s, a.token, `Practitioner?_id=${c.practitioner.split('/')[1]}&_revinclude=DocumentReference:author`);
  expect(rev.included).toEqual([`DocumentReference/${shared}`]);
  // the compartment search, and a chain through the patient (whom the doctor cannot read) agree
  expect((await matches(s, a.token, `${p.patient}/DocumentReference`)).ids).toEqual([shared]);
  expect((await matches(s, a.token, `DocumentReference?subject:Patient.gender=female,male,other,unknown`)).ids).toEqual([]);
  const cId = c.practitioner.split('/')[1];
  expect((await matches(s, a.token, `Practitioner?_id=${cId}&_has:DocumentReference:author:_id=${shared}`)).ids).toEqual([cId]);
  expect((await matches(s, a.token, `Practitioner?_id=${cId}&_has:DocumentReference:author:_id=${other}`)).ids).toEqual([]);
  // type-level history shows only the shared document too
  const typeHistory = await as(s, a.token, 'GET', '/fhir/DocumentReference/_history');
  expect(typeHistory.body.entry.map((e: { resource: { id: string } }) => e.resource.id)).toEqual([shared]);

  // Doctor B is not named: nothing, exactly as for ids never used
  expect(await seen(b, p)).toEqual([]);
  expect(await status(b, `DocumentReference/${shared}`)).toBe(404);
  expect(await status(b, `Binary/${sharedBytes}`)).toBe(404);

  // The patient still sees everything of theirs
  expect((await matches(s, p.token, `DocumentReference?subject=${p.patient}`)).ids).toEqual([shared, other].sort());

  await until(period.end);
  expect(await seen(a, p)).toEqual([]);
  expect(await status(a, `DocumentReference/${shared}`)).toBe(404);
  expect(await status(a, `DocumentReference/${shared}/_history/1`)).toBe(404);
  expect(await status(a, `DocumentReference/${shared}/_history`)).toBe(404);
  expect(await status(a, `Binary/${sharedBytes}`)).toBe(404);
  expect((await as(s, a.token, 'GET', `/fhir/Binary/${sharedBytes}`, undefined, { accept: '*/*' })).status).toBe(404);
  expect((await matches(s, a.token, `Practitioner?_id=${c.practitioner.split('/')[1]}&_revinclude=DocumentReference:author`)).included).toEqual([]);
});

test('a deleted document: 410 for the doctor it was shared with, 404 for one who never saw it', async () => {
  const p = await recordsPatient(s);
  const lab = await document(s, p, { category: 'lab' });
  const imaging = await document(s, p, { category: 'imaging' });
  await share(s, p, { type: 'permit', period: window(-1, 3600), actor: [actor(a.practitioner)], code: [category('lab')] });
  for (const id of [lab, imaging]) expect((await as(s, p.token, 'DELETE', `/fhir/DocumentReference/${id}`)).status).toBe(200);
  expect(await status(a, `DocumentReference/${lab}`)).toBe(410);
  expect(await status(a, `DocumentReference/${imaging}`)).toBe(404);
  expect(await status(b, `DocumentReference/${lab}`)).toBe(404);
  expect(await seen(a, p)).toEqual([]);
});

test('a window that has not begun opens nothing yet', async () => {
  const p = await recordsPatient(s);
  const doc = await document(s, p);
  await share(s, p, { type: 'permit', period: window(3600, 7200), actor: [actor(a.practitioner)], data: instances(doc) });
  expect(await seen(a, p)).toEqual([]);
  expect(await status(a, `DocumentReference/${doc}`)).toBe(404);
});

test('revocation (status inactive) takes effect at once; active again, and deleted', async () => {
  const p = await recordsPatient(s);
  const doc = await document(s, p);
  const given = await share(s, p, { type: 'permit', period: window(-1, 3600), actor: [actor(a.practitioner)], data: instances(doc) });
  expect(await status(a, `DocumentReference/${doc}`)).toBe(200);

  const revoked = await as(s, p.token, 'PUT', `/fhir/Consent/${given.id}`, { ...consent(p.patient, given.provision!, 'inactive'), id: given.id });
  expect(revoked.status).toBe(200);
  expect(await status(a, `DocumentReference/${doc}`)).toBe(404);
  expect(await seen(a, p)).toEqual([]);

  const again = await as(s, p.token, 'PUT', `/fhir/Consent/${given.id}`, { ...consent(p.patient, given.provision!), id: given.id });
  expect(again.status).toBe(200);
  expect(await seen(a, p)).toEqual([doc]);

  expect((await as(s, p.token, 'DELETE', `/fhir/Consent/${given.id}`)).status).toBe(200);
  expect(await status(a, `DocumentReference/${doc}`)).toBe(404);
});

test('a group of files shared by category: the whole category, paged, and no other', async () => {
  const p = await recordsPatient(s);
  const labs = [await document(s, p, { category: 'lab' }), await document(s, p, { category: 'lab' }), await document(s, p, { category: 'lab' })];
  const imaging = await document(s, p, { category: 'imaging' });
  await share(s, p, { type: 'permit', period: window(-1, 3600), actor: [actor(a.practitioner)], code: [category('lab')] });

  expect(await seen(a, p)).toEqual([...labs].sort());
  expect(await status(a, `DocumentReference/${imaging}`)).toBe(404);
  expect(await seen(b, p)).toEqual([]);
  // paging: two pages of the three, with the total
  const first = await matches(s, a.token, `DocumentReference?subject=${p.patient}&_count=2&_total=accurate`);
  expect([first.ids.length, first.total]).toEqual([2, 3]);
  const second = await as(s, a.token, 'GET', first.next!.replace(s.baseUrl, ''));
  const rest = second.body.entry.map((e: { resource: { id: string } }) => e.resource.id);
  expect([...first.ids, ...rest].sort()).toEqual([...labs].sort());
  // a search by the category itself agrees
  expect((await matches(s, a.token, `DocumentReference?category=imaging&subject=${p.patient}`)).ids).toEqual([]);
});

test('a deny inside a permit keeps that file closed, the rest of the category open', async () => {
  const p = await recordsPatient(s);
  const open = await document(s, p, { category: 'lab' });
  const closed = await document(s, p, { category: 'lab' });
  await share(s, p, {
    type: 'permit',
    period: window(-1, 3600),
    actor: [actor(a.practitioner)],
    code: [category('lab')],
    provision: [{ type: 'deny', data: instances(closed) }],
  });
  expect(await seen(a, p)).toEqual([open]);
  expect(await status(a, `DocumentReference/${closed}`)).toBe(404);
  expect(await status(a, `DocumentReference/${open}`)).toBe(200);
});

test('a permit inside a deny inside a permit opens that one file again', async () => {
  const p = await recordsPatient(s);
  const lab = await document(s, p, { category: 'lab' });
  const hiv = await document(s, p, { category: 'lab' });
  const hivShared = await document(s, p, { category: 'lab' });
  await share(s, p, {
    type: 'permit',
    period: window(-1, 3600),
    actor: [actor(a.practitioner)],
    code: [category('lab')],
    provision: [{ type: 'deny', data: instances(hiv, hivShared), provision: [{ type: 'permit', data: instances(hivShared) }] }],
  });
  expect(await seen(a, p)).toEqual([lab, hivShared].sort());
});

test('dataPeriod: only documents dated inside it', async () => {
  const p = await recordsPatient(s);
  const inside = await document(s, p, { category: 'lab', date: '2025-06-10T12:00:00Z' });
  const before = await document(s, p, { category: 'lab', date: '2024-02-01T12:00:00Z' });
  const undated = await document(s, p, { category: 'lab' });
  await share(s, p, {
    type: 'permit',
    period: window(-1, 3600),
    actor: [actor(a.practitioner)],
    code: [category('lab')],
    dataPeriod: { start: '2025-01-01', end: '2025-12-31' },
  });
  expect(await seen(a, p)).toEqual([inside]);
  expect(await status(a, `DocumentReference/${before}`)).toBe(404);
  expect(await status(a, `DocumentReference/${undated}`)).toBe(404);
});

test("a Consent opens only its own patient's documents, even when an admin names another patient's", async () => {
  const p = await recordsPatient(s);
  const q = await recordsPatient(s);
  const theirs = await document(s, q);
  const mine = await document(s, p);
  const res = await s.request('POST', '/fhir/Consent', consent(p.patient, { type: 'permit', period: window(-1, 3600), actor: [actor(a.practitioner)], data: instances(theirs, mine) }));
  expect(res.status).toBe(201);
  expect(await status(a, `DocumentReference/${theirs}`)).toBe(404);
  expect(await seen(a, q)).toEqual([]);
  expect(await seen(a, p)).toEqual([mine]);
});

test('the author rule: a practitioner sees the documents they authored without any Consent, others do not', async () => {
  const p = await recordsPatient(s);
  const byC = await document(s, p, { author: c.practitioner });
  const other = await document(s, p);
  expect(await seen(c, p)).toEqual([byC]);
  expect(await status(c, `DocumentReference/${byC}`)).toBe(200);
  expect(await status(c, `DocumentReference/${other}`)).toBe(404);
  expect(await seen(a, p)).toEqual([]);
});

test('a practitioner cannot write a Consent for the patient, nor change the documents shared with them', async () => {
  const p = await recordsPatient(s);
  const doc = await document(s, p);
  const forged = await as(s, a.token, 'POST', '/fhir/Consent', consent(p.patient, { type: 'permit', actor: [actor(a.practitioner)], data: instances(doc) }));
  expect(forged.status).toBe(403);
  expect(forged.body.resourceType).toBe('OperationOutcome');
  expect(await seen(a, p)).toEqual([]);

  const given = await share(s, p, { type: 'permit', period: window(-1, 3600), actor: [actor(a.practitioner)], data: instances(doc) });
  const widened = await as(s, a.token, 'PUT', `/fhir/Consent/${given.id}`, { ...given, provision: { ...given.provision, period: window(-1, 999_999) } });
  expect(widened.status).toBe(403);
  const read = await as(s, a.token, 'GET', `/fhir/DocumentReference/${doc}`);
  expect(read.status).toBe(200);
  const changed = await as(s, a.token, 'PUT', `/fhir/DocumentReference/${doc}`, { ...read.body, status: 'entered-in-error' });
  expect(changed.status).toBe(403);
});
