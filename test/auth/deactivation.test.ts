/**
 * Account deactivation (LGPD; issue 13): POST /auth/deactivate by the patient with their password, or by an
 * administrator; the account signs in no more, its tokens and refresh tokens are revoked, its active Consents
 * become inactive, its future Appointments are cancelled and their Slots freed, Patient.active is false, and the
 * record is kept. POST /auth/reactivate (administrator) lets it sign in again.
 */
import { startServer, type TestServer } from '../helpers/server';
import { form, json, loginCode, PASSWORD, signUp, tokensFor } from './helpers';
import { doctorWithToken, type Doctor } from '../workflows/people';
import { actor, as, consent, document, RECORDS_SCOPE, window, type RecordsPatient } from '../workflows/records/consentSupport';

let s: TestServer;
let admin: string;
let dr: Doctor;
let scheduleId: string;
const HOUR = 3600_000;
let hourOffset = 30;
const nextHour = () => new Date(Math.ceil(Date.now() / HOUR) * HOUR + hourOffset++ * HOUR);

beforeAll(async () => {
  s = await startServer();
  admin = await s.adminToken();
  dr = await doctorWithToken(s, admin);
  const schedule = await as(s, dr.token, 'POST', '/fhir/Schedule', { resourceType: 'Schedule', active: true, actor: [{ reference: dr.practitioner }] });
  scheduleId = schedule.body.id;
});
afterAll(() => s.close());

interface Account extends RecordsPatient {
  email: string;
  refresh: string;
}

async function account(): Promise<Account> {
  const p = await signUp(s);
  const t = await tokensFor(s, p.email, RECORDS_SCOPE);
  return { patient: p.patient, email: p.email, token: t.access_token, refresh: t.refresh_token as string };
}

/** A free Slot of the doctor, booked by the patient: the Appointment's and the Slot's ids. */
async function booked(p: Account, start = nextHour()): Promise<{ appointment: string; slot: string }> {
  const slot = await as(s, dr.token, 'POST', '/fhir/Slot', {
    resourceType: 'Slot',
    schedule: { reference: `Schedule/${scheduleId}` },
    status: 'free',
    start: start.toISOString(),
    end: new Date(start.getTime() + 50 * 60_000).toISOString(),
  });
  const res = await as(s, p.token, 'POST', '/fhir/Appointment', {
    resourceType: 'Appointment',
    status: 'pending',
    slot: [{ reference: `Slot/${slot.body.id}` }],
    participant: [
      { actor: { reference: p.patient }, status: 'accepted' },
      { actor: { reference: dr.practitioner }, status: 'needs-action' },
    ],
  });
  expect(res.status).toBe(201);
  return { appointment: res.body.id, slot: slot.body.id };
}

const read = async (path: string) => (await s.request('GET', `/fhir/${path}`)).body;

test('the patient deactivates their account with their password: no sign-in, no token, the record closed and kept', async () => {
  const p = await account();
  const doc = await document(s, p, { category: 'lab' });
  const shared = await as(s, p.token, 'POST', '/fhir/Consent', consent(p.patient, { type: 'permit', period: window(-60, 3600), actor: [actor(dr.practitioner)], data: [{ meaning: 'instance', reference: { reference: `DocumentReference/${doc}` } }] }));
  expect(shared.status).toBe(201);
  expect((await as(s, dr.token, 'GET', `/fhir/DocumentReference/${doc}`)).status).toBe(200);
  const future = await booked(p);

  // a wrong password changes nothing
  const wrong = await json(s, '/auth/deactivate', { password: 'not the password' }, { authorization: `Bearer ${p.token}` });
  expect(wrong.status).toBe(401);
  expect((await as(s, p.token, 'GET', `/fhir/${p.patient}`)).status).toBe(200);

  const res = await json(s, '/auth/deactivate', { password: PASSWORD }, { authorization: `Bearer ${p.token}` });
  expect(res.status).toBe(200);
  expect(res.body).toEqual({ patient: p.patient, consentsRevoked: 1, appointmentsCancelled: 1 });

  // tokens and refresh tokens revoked; sign-in refused
  expect((await as(s, p.token, 'GET', `/fhir/${p.patient}`)).status).toBe(401);
  const refreshed = await form(s, '/oauth2/token', { grant_type: 'refresh_token', refresh_token: p.refresh, client_id: 'healthmed-app' });
  expect(refreshed.status).toBe(400);
  await expect(loginCode(s, p.email, PASSWORD, RECORDS_SCOPE)).rejects.toThrow(/login: 401/);
  // the record is kept, closed: Consent inactive (the doctor no longer reaches the document), Appointment
  // cancelled with a reason, its Slot free, Patient inactive
  expect((await read(p.patient)).active).toBe(false);
  expect((await read(`Consent/${shared.body.id}`)).status).toBe('inactive');
  expect((await as(s, dr.token, 'GET', `/fhir/DocumentReference/${doc}`)).status).toBe(404);
  const cancelled = await read(`Appointment/${future.appointment}`);
  expect(cancelled.status).toBe('cancelled');
  expect(cancelled.cancelationReason.text).toBe('Conta do paciente desativada');
  expect((await read(`Slot/${future.slot}`)).status).toBe('free');
  expect((await read(`DocumentReference/${doc}`)).id).toBe(doc);
  // the doctor is told of the cancellation
  const mails = await s.db.query<{ kind: string }>(`SELECT kind FROM outbox WHERE payload->>'appointment' = $1 ORDER BY id`, [future.appointment]);
  expect(mails.rows.map((r) => r.kind)).toContain('mail.appointment-cancelled');
});

test('an administrator deactivates and reactivates an account; only an administrator reactivates', async () => {
  const p = await account();
  const other = await account();
  // another patient cannot deactivate someone else: their call deactivates themself, and needs their password
  expect((await json(s, '/auth/deactivate', { patient: p.patient }, { authorization: `Bearer ${other.token}` })).status).toBe(401);
  expect((await json(s, '/auth/deactivate', { patient: 'Patient/none' }, { authorization: `Bearer ${admin}` })).status).toBe(400);
  const res = await json(s, '/auth/deactivate', { patient: p.patient }, { authorization: `Bearer ${admin}` });
  expect(res.status).toBe(200);
  expect(res.body).toEqual({ patient: p.patient, consentsRevoked: 0, appointmentsCancelled: 0 });
  expect((await json(s, '/auth/deactivate', { patient: p.patient }, { authorization: `Bearer ${admin}` })).status).toBe(400);
  await expect(loginCode(s, p.email, PASSWORD, RECORDS_SCOPE)).rejects.toThrow(/login: 401/);
  // the e-mail and CPF stay taken
  expect((await json(s, '/auth/register', { role: 'patient', email: p.email, cpf: undefined, password: PASSWORD, name: { family: 'X' }, birthDate: '1990-01-01' })).status).toBeGreaterThanOrEqual(400);

  expect((await json(s, '/auth/reactivate', { patient: p.patient }, { authorization: `Bearer ${other.token}` })).status).toBe(403);
  expect((await json(s, '/auth/reactivate', { patient: p.patient }, { authorization: `Bearer ${admin}` })).status).toBe(204);
  expect((await json(s, '/auth/reactivate', { patient: p.patient }, { authorization: `Bearer ${admin}` })).status).toBe(400);
  expect((await read(p.patient)).active).toBe(true);
  const again = await tokensFor(s, p.email, RECORDS_SCOPE);
  expect((await as(s, again.access_token, 'GET', `/fhir/${p.patient}`)).status).toBe(200);
});

test('a past consultation is kept as it was; only future live ones are cancelled', async () => {
  const p = await account();
  const future = await booked(p);
  // an Appointment already over, imported by an admin
  const past = await s.request('POST', '/fhir/Appointment', {
    resourceType: 'Appointment',
    status: 'fulfilled',
    start: '2025-01-10T12:00:00Z',
    end: '2025-01-10T12:50:00Z',
    participant: [
      { actor: { reference: p.patient }, status: 'accepted' },
      { actor: { reference: dr.practitioner }, status: 'accepted' },
    ],
  });
  expect(past.status).toBe(201);
  const res = await json(s, '/auth/deactivate', { password: PASSWORD }, { authorization: `Bearer ${p.token}` });
  expect(res.body.appointmentsCancelled).toBe(1);
  expect((await read(`Appointment/${past.body.id}`)).status).toBe('fulfilled');
  expect((await read(`Appointment/${future.appointment}`)).status).toBe('cancelled');
});
