/**
 * Writing Consents (CONTRACT section 6; https://hl7.org/fhir/R4/consent.html): the patient creates, updates and
 * revokes their own; an admin client may write one for them; a practitioner or another patient may not (403).
 * A Consent the server could not honour as written is refused with a 400/422 OperationOutcome saying why.
 */
import type { Consent, ConsentProvision } from '@medplum/fhirtypes';
import { startServer, type TestServer } from '../../helpers/server';
import type { Doctor } from '../people';
import { actor, as, category, consent, doctor, document, instances, recordsPatient, window, type RecordsPatient } from './consentSupport';

let s: TestServer;
let dr: Doctor;
let p: RecordsPatient;
let other: RecordsPatient;
let doc: string;

beforeAll(async () => {
  s = await startServer();
  dr = await doctor(s, await s.adminToken());
  [p, other] = await Promise.all([recordsPatient(s), recordsPatient(s)]);
  doc = await document(s, p, { category: 'lab' });
}, 60_000);
afterAll(() => s?.close());

const permit = (extra: Partial<ConsentProvision> = {}): ConsentProvision => ({
  type: 'permit',
  period: window(-1, 3600),
  actor: [actor(dr.practitioner)],
  data: instances(doc),
  ...extra,
});

test('the patient creates, updates and revokes their own Consent; an admin client may write one for them', async () => {
  const created = await as(s, p.token, 'POST', '/fhir/Consent', consent(p.patient, permit()));
  expect(created.status).toBe(201);
  const id = created.body.id;
  const updated = await as(s, p.token, 'PUT', `/fhir/Consent/${id}`, { ...consent(p.patient, permit({ code: [category('lab')], data: undefined })), id });
  expect(updated.status).toBe(200);
  const revoked = await as(s, p.token, 'PUT', `/fhir/Consent/${id}`, { ...consent(p.patient, permit(), 'inactive'), id });
  expect([revoked.status, revoked.body.status]).toEqual([200, 'inactive']);
  expect((await as(s, p.token, 'GET', `/fhir/Consent?patient=${p.patient}`)).body.total).toBe(1);
  expect((await s.request('POST', '/fhir/Consent', consent(p.patient, permit()))).status).toBe(201);
});

test('nobody else writes a Consent for the patient: a practitioner and another patient get 403', async () => {
  const byDoctor = await as(s, dr.token, 'POST', '/fhir/Consent', consent(p.patient, permit()));
  expect([byDoctor.status, byDoctor.body.issue[0].code]).toEqual([403, 'forbidden']);
  const byOther = await as(s, other.token, 'POST', '/fhir/Consent', consent(p.patient, permit()));
  expect(byOther.status).toBe(403);
  const mine = await as(s, p.token, 'POST', '/fhir/Consent', consent(p.patient, permit()));
  const id = mine.body.id;
  expect((await as(s, dr.token, 'PUT', `/fhir/Consent/${id}`, { ...mine.body, status: 'inactive' })).status).toBe(403);
  expect((await as(s, dr.token, 'DELETE', `/fhir/Consent/${id}`)).status).toBe(403);
  // another patient cannot share this patient's document in a Consent of their own: it does not exist for them
  const foreign = await as(s, other.token, 'POST', '/fhir/Consent', consent(other.patient, permit()));
  expect(foreign.status).toBe(400);
  expect(foreign.body.issue[0].diagnostics).toContain(`DocumentReference/${doc}`);
});

const refusals: [string, (c: Consent) => Consent, number, string, string][] = [
  ['a permit without actor', (c) => ({ ...c, provision: { ...c.provision, actor: undefined } }), 422, 'processing', 'Consent.provision.actor'],
  ['a period that ends before it starts', (c) => ({ ...c, provision: { ...c.provision, period: { start: '2026-05-02T10:00:00Z', end: '2026-05-01T10:00:00Z' } } }), 422, 'processing', 'Consent.provision.period'],
  ['a dataPeriod that ends before it starts', (c) => ({ ...c, provision: { ...c.provision, dataPeriod: { start: '2025-02-01', end: '2025-01-01' } } }), 422, 'processing', 'Consent.provision.dataPeriod'],
  ['a scope other than patient-privacy', (c) => ({ ...c, scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'research' }] } }), 422, 'processing', 'Consent.scope'],
  ['no LOINC 59284-0 category', (c) => ({ ...c, category: [{ coding: [{ system: 'http://loinc.org', code: '64292-6' }] }] }), 422, 'processing', 'Consent.category'],
  ['neither policy nor policyRule (ppc-1)', (c) => ({ ...c, policyRule: undefined }), 422, 'processing', 'Consent.policyRule'],
  ['an outermost deny', (c) => ({ ...c, provision: { ...c.provision, type: 'deny' } }), 422, 'processing', 'Consent.provision.type'],
  [
    'an actor whose role is not IRCP',
    (c) => ({ ...c, provision: { ...c.provision, actor: [{ role: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'PRCP' }] }, reference: { reference: dr.practitioner } }] } }),
    422,
    'not-supported',
    'Consent.provision.actor[0].role',
  ],
  ['an actor that is not a Practitioner', (c) => ({ ...c, provision: { ...c.provision, actor: [actor('Organization/x')] } }), 422, 'processing', 'Consent.provision.actor[0].reference'],
  ['data meaning other than instance', (c) => ({ ...c, provision: { ...c.provision, data: [{ meaning: 'related', reference: { reference: `DocumentReference/${doc}` } }] } }), 422, 'not-supported', 'Consent.provision.data[0].meaning'],
  ['data naming something else than a DocumentReference', (c) => ({ ...c, provision: { ...c.provision, data: [{ meaning: 'instance', reference: { reference: p.patient } }] } }), 422, 'processing', 'Consent.provision.data[0].reference'],
  ['a code without a system', (c) => ({ ...c, provision: { ...c.provision, data: undefined, code: [{ coding: [{ code: 'lab' }] }] } }), 422, 'processing', 'Consent.provision.code[0].coding[0]'],
  ['a purpose of use it cannot check', (c) => ({ ...c, provision: { ...c.provision, purpose: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'TREAT' }] } }), 422, 'not-supported', 'Consent.provision.purpose'],
  [
    'a nested provision naming someone the enclosing one does not',
    (c) => ({ ...c, provision: { ...c.provision, provision: [{ type: 'permit', actor: [actor('Practitioner/someone-else')] }] } }),
    422,
    'processing',
    'Consent.provision.provision[0].actor',
  ],
  ['no provision', (c) => ({ ...c, provision: undefined }), 422, 'processing', 'Consent.provision'],
  ['a period end that is no date', (c) => ({ ...c, provision: { ...c.provision, period: { start: '2026-01-01', end: 'tomorrow' } } }), 400, 'invalid', 'Consent.provision.period.end'],
];

test.each(refusals)('refused: %s', async (_name, change, status, code, expression) => {
  const res = await as(s, p.token, 'POST', '/fhir/Consent', change(consent(p.patient, permit())));
  expect(res.status).toBe(status);
  expect(res.body.resourceType).toBe('OperationOutcome');
  expect(res.body.issue[0].code).toBe(code);
  expect(res.body.issue[0].expression).toEqual([expression]);
  expect(res.body.issue[0].diagnostics.length).toBeGreaterThan(10);
});

test('a refused update leaves the Consent, and what it opens, as it was', async () => {
  const created = await as(s, p.token, 'POST', '/fhir/Consent', consent(p.patient, permit()));
  const id = created.body.id;
  const bad = await as(s, p.token, 'PUT', `/fhir/Consent/${id}`, { ...consent(p.patient, permit({ actor: undefined })), id });
  expect(bad.status).toBe(422);
  expect((await as(s, p.token, 'GET', `/fhir/Consent/${id}`)).body.meta.versionId).toBe('1');
  expect((await as(s, dr.token, 'GET', `/fhir/DocumentReference/${doc}`)).status).toBe(200);
});
