/**
 * A practitioner (user/ scopes) over HTTP: reads the directory, writes their own Schedules and Slots and not
 * another doctor's, and reads and updates the Appointments they take part in (CONTRACT sections 4 and 5).
 */
import { startServer, type TestServer } from '../helpers/server';
import { signUp, signUpPractitioner, tokensFor } from './helpers';

let s: TestServer;
let admin: string;
let me: { practitioner: string; token: string };
let other: { practitioner: string; token: string };

beforeAll(async () => {
  s = await startServer();
  admin = await s.adminToken();
  const doctor = async () => {
    const dr = await signUpPractitioner(s, admin);
    return { practitioner: dr.practitioner, token: (await tokensFor(s, dr.crm, 'openid fhirUser user/*.cruds')).access_token };
  };
  me = await doctor();
  other = await doctor();
});
afterAll(() => s.close());

const as = (token: string) => ({ authorization: `Bearer ${token}` });
const schedule = (actor: string) => ({ resourceType: 'Schedule', active: true, actor: [{ reference: actor }] });
const slot = (scheduleId: string) => ({
  resourceType: 'Slot',
  schedule: { reference: `Schedule/${scheduleId}` },
  status: 'free',
  start: '2030-01-10T13:00:00Z',
  end: '2030-01-10T13:50:00Z',
});

test('writes their own Schedule and its Slots; not another doctor\'s', async () => {
  const mine = await s.request('POST', '/fhir/Schedule', schedule(me.practitioner), as(me.token));
  expect(mine.status).toBe(201);
  expect((await s.request('POST', '/fhir/Schedule', schedule(other.practitioner), as(me.token))).status).toBe(403);
  const theirs = await s.request('POST', '/fhir/Schedule', schedule(other.practitioner), as(other.token));
  expect(theirs.status).toBe(201);

  // ownership of Schedules is looked up per request, so the new Schedule counts at once
  const mySlot = await s.request('POST', '/fhir/Slot', slot(mine.body.id), as(me.token));
  expect(mySlot.status).toBe(201);
  expect((await s.request('POST', '/fhir/Slot', slot(theirs.body.id), as(me.token))).status).toBe(403);
  const updated = await s.request('PUT', `/fhir/Slot/${mySlot.body.id}`, { ...mySlot.body, status: 'busy-unavailable' }, as(me.token));
  expect(updated.status).toBe(200);
  const theirSlot = await s.request('POST', '/fhir/Slot', slot(theirs.body.id), as(other.token));
  expect((await s.request('DELETE', `/fhir/Slot/${theirSlot.body.id}`, undefined, as(me.token))).status).toBe(403);

  // the directory is open to every signed-in user
  const agenda = await s.request('GET', `/fhir/Slot?schedule=Schedule/${theirs.body.id}`, undefined, as(me.token));
  expect(agenda.status).toBe(200);
  expect(agenda.body.entry).toHaveLength(1);
  expect((await s.request('GET', `/${other.practitioner}`.replace(/^\//, '/fhir/'), undefined, as(me.token))).status).toBe(200);
});

test('reads and updates the Appointments they take part in, not others', async () => {
  const patient = await signUp(s);
  const appointment = (practitioner: string) => ({
    resourceType: 'Appointment',
    status: 'pending',
    start: '2030-01-10T13:00:00Z',
    end: '2030-01-10T13:50:00Z',
    participant: [
      { actor: { reference: patient.patient }, status: 'accepted' },
      { actor: { reference: practitioner }, status: 'needs-action' },
    ],
  });
  const mine = await s.request('POST', '/fhir/Appointment', appointment(me.practitioner), as(admin));
  const theirs = await s.request('POST', '/fhir/Appointment', appointment(other.practitioner), as(admin));
  expect((await s.request('GET', `/fhir/Appointment/${mine.body.id}`, undefined, as(me.token))).status).toBe(200);
  expect([403, 404]).toContain((await s.request('GET', `/fhir/Appointment/${theirs.body.id}`, undefined, as(me.token))).status);
  const accepted = { ...mine.body, participant: [mine.body.participant[0], { ...mine.body.participant[1], status: 'accepted' }] };
  expect((await s.request('PUT', `/fhir/Appointment/${mine.body.id}`, accepted, as(me.token))).status).toBe(200);
  const search = await s.request('GET', '/fhir/Appointment', undefined, as(me.token));
  expect(search.body.entry.map((e: { resource: { id: string } }) => e.resource.id)).toEqual([mine.body.id]);
});
