/**
 * The whole consultation as a doctor and two patients live it (issue 12, CONTRACT section 5), over HTTP with a
 * real SMTP server: the doctor publishes weekly availability, a patient finds the doctor by specialty, distance
 * and rating (with the price through _include), sees the free Slots, books, gets a video room, the doctor gets an
 * e-mail and accepts; the second patient books and cancels with a reason; nothing double-books.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startServer, type TestServer } from '../helpers/server';
import { doctorWithToken, patientWithToken } from './people';
import { startSmtp, waitFor, type TestSmtp } from './outboxSupport';

const AVAILABILITY = 'http://fhir.healthmed.com.br/StructureDefinition/availability';
const PRICE = 'http://fhir.healthmed.com.br/StructureDefinition/consultation-price';
const RATING = 'http://fhir.healthmed.com.br/StructureDefinition/rating';
const SPECIALTY = { system: 'http://snomed.info/sct', code: '394579002', display: 'Cardiologia' };

let s: TestServer;
let smtp: TestSmtp;
/** A hospital system's endpoint: what it received. */
let receiver: Server;
const hooks: { headers: IncomingMessage['headers']; body: string }[] = [];
const as = (token: string) => ({ authorization: `Bearer ${token}` });

beforeAll(async () => {
  smtp = await startSmtp();
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      hooks.push({ headers: req.headers, body });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const hookHost = `127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  s = await startServer({
    OUTBOX_POLL_MS: '50',
    SMTP_URL: smtp.url,
    MAIL_FROM: 'Health&Med <no-reply@healthmed.test>',
    VIDEO_BASE_URL: 'https://meet.jit.si',
    SUBSCRIPTION_ENDPOINT_ALLOWLIST: hookHost,
  });
});
afterAll(async () => {
  await s.close();
  await smtp.close();
  await new Promise((resolve) => receiver.close(resolve));
});

test('publish, find, book, be told, accept; book and cancel with a reason', async () => {
  const admin = await s.adminToken();
  const doctor = await doctorWithToken(s, admin);
  const ana = await patientWithToken(s);
  const bia = await patientWithToken(s);

  // The directory (an admin's work): a Location near Avenida Paulista, a PractitionerRole with price and rating
  const location = await s.request('POST', '/fhir/Location', { resourceType: 'Location', name: 'Consultório Paulista', position: { latitude: -23.5614, longitude: -46.6559 } });
  const role = await s.request('POST', '/fhir/PractitionerRole', {
    resourceType: 'PractitionerRole',
    active: true,
    practitioner: { reference: doctor.practitioner },
    specialty: [{ coding: [SPECIALTY] }],
    location: [{ reference: `Location/${location.body.id}` }],
    extension: [
      { url: PRICE, valueMoney: { value: 250, currency: 'BRL' } },
      { url: RATING, valueDecimal: 4.7 },
    ],
  });
  expect(role.status).toBe(201);

  // The doctor publishes weekly availability: every day 09:00-12:00 in São Paulo, 50 minutes and a 10 minute gap
  const schedule = await s.request(
    'POST',
    '/fhir/Schedule',
    {
      resourceType: 'Schedule',
      active: true,
      actor: [{ reference: doctor.practitioner }, { reference: `PractitionerRole/${role.body.id}` }],
      extension: [
        {
          url: AVAILABILITY,
          extension: [
            ...['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].map((d) => ({ url: 'daysOfWeek', valueCode: d })),
            { url: 'availableStartTime', valueTime: '09:00:00' },
            { url: 'availableEndTime', valueTime: '12:00:00' },
            { url: 'slotMinutes', valuePositiveInt: 50 },
            { url: 'gapMinutes', valueUnsignedInt: 10 },
            { url: 'timeZone', valueCode: 'America/Sao_Paulo' },
          ],
        },
      ],
    },
    as(doctor.token),
  );
  expect(schedule.status).toBe(201);

  // A patient finds the doctor: specialty exact, at most 5 km from Praça da Sé, rated at least 4, with the price
  const found = await s.request(
    'GET',
    `/fhir/PractitionerRole?specialty=${encodeURIComponent(`${SPECIALTY.system}|${SPECIALTY.code}`)}&location.near=-23.5503|-46.6339|5|km&rating=ge4&_include=PractitionerRole:practitioner`,
    undefined,
    as(ana.token),
  );
  expect(found.status).toBe(200);
  const match = found.body.entry.find((e: { resource: { id: string } }) => e.resource.id === role.body.id);
  expect(match.resource.extension.find((e: { url: string }) => e.url === PRICE).valueMoney).toEqual({ value: 250, currency: 'BRL' });
  expect(found.body.entry.some((e: { resource: { resourceType: string }; search: { mode: string } }) => e.resource.resourceType === 'Practitioner' && e.search.mode === 'include')).toBe(true);
  // Farther than 1 km: not found
  const far = await s.request('GET', `/fhir/PractitionerRole?specialty=${encodeURIComponent(`${SPECIALTY.system}|${SPECIALTY.code}`)}&location.near=-23.5503|-46.6339|1|km`, undefined, as(ana.token));
  expect((far.body.entry ?? []).some((e: { resource: { id: string } }) => e.resource.id === role.body.id)).toBe(false);

  // The agenda: free Slots of the next days, in order, three a morning at 09:00, 10:00 and 11:00 local time
  const from = new Date(Date.now() + 2 * 86_400_000).toISOString();
  const to = new Date(Date.now() + 5 * 86_400_000).toISOString();
  const agenda = await s.request('GET', `/fhir/Slot?schedule=Schedule/${schedule.body.id}&status=free&start=ge${from}&start=lt${to}&_sort=start`, undefined, as(ana.token));
  expect(agenda.status).toBe(200);
  const slots = agenda.body.entry.map((e: { resource: { id: string; start: string } }) => e.resource);
  expect(slots.length).toBeGreaterThanOrEqual(6);
  for (const slot of slots) expect(['12:00', '13:00', '14:00']).toContain(new Date(slot.start).toISOString().slice(11, 16)); // 09:00-11:00 at UTC-3

  // A hospital system subscribes to this doctor's booked consultations (rest-hook, the resource as payload)
  const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/fhir-hook`;
  const subscription = await s.request('POST', '/fhir/Subscription', {
    resourceType: 'Subscription',
    status: 'requested',
    reason: 'Consultas confirmadas',
    criteria: `Appointment?status=booked&actor=${doctor.practitioner}`,
    channel: { type: 'rest-hook', endpoint: hookUrl, payload: 'application/fhir+json', header: ['X-Hospital: 42'] },
  });
  expect(subscription.status).toBe(201);
  await waitFor('the Subscription to be active', async () => (await s.request('GET', `/fhir/Subscription/${subscription.body.id}`)).body.status === 'active');

  // Ana books the first one; Bia cannot take it
  const booking = (slot: string, patient: string) => ({
    resourceType: 'Appointment',
    status: 'pending',
    slot: [{ reference: `Slot/${slot}` }],
    participant: [
      { actor: { reference: patient }, status: 'accepted' },
      { actor: { reference: doctor.practitioner }, status: 'needs-action' },
    ],
  });
  const booked = await s.request('POST', '/fhir/Appointment', booking(slots[0].id, ana.patient), as(ana.token));
  expect(booked.status).toBe(201);
  expect(booked.body.extension[0].extension[0].valueUrl).toMatch(/^https:\/\/meet\.jit\.si\/healthmed-/);
  expect((await s.request('POST', '/fhir/Appointment', booking(slots[0].id, bia.patient), as(bia.token))).status).toBe(409);

  // The doctor is told by e-mail (in Portuguese, with an invitation)
  const toDoctor = await waitFor('the mail to the doctor', () => smtp.received.find((m) => m.to.includes(doctor.email)));
  expect(toDoctor.parsed.subject).toMatch(/teleconsulta/i);

  // The doctor accepts: booked, the Slot busy, Ana is told
  const appt = booked.body;
  const accept = await s.request(
    'PUT',
    `/fhir/Appointment/${appt.id}`,
    { ...appt, participant: appt.participant.map((p: { actor: { reference: string } }) => (p.actor.reference === doctor.practitioner ? { ...p, status: 'accepted' } : p)) },
    as(doctor.token),
  );
  expect(accept.status).toBe(200);
  expect(accept.body.status).toBe('booked');
  expect((await s.request('GET', `/fhir/Slot/${slots[0].id}`)).body.status).toBe('busy');
  await waitFor('the mail to Ana', () => smtp.received.find((m) => m.to.includes(ana.email.toLowerCase()) || m.to.includes(ana.email)));
  // The hospital is notified of the booked consultation, signed, with its header; the pending one did not match
  const hook = await waitFor('the rest-hook', () => hooks.find((h) => h.body.includes(appt.id)));
  expect(JSON.parse(hook.body)).toMatchObject({ resourceType: 'Appointment', id: appt.id, status: 'booked' });
  expect(hook.headers['x-hospital']).toBe('42');
  expect(hook.headers['webhook-signature']).toMatch(/^v1,/);
  expect(hooks.filter((h) => h.body.includes(appt.id))).toHaveLength(1);

  // Bia books the second Slot and cancels it with a reason: the Slot is free again
  const second = await s.request('POST', '/fhir/Appointment', booking(slots[1].id, bia.patient), as(bia.token));
  expect(second.status).toBe(201);
  const cancel = await s.request('PUT', `/fhir/Appointment/${second.body.id}`, { ...second.body, status: 'cancelled', cancelationReason: { text: 'Surgiu um imprevisto' } }, as(bia.token));
  expect(cancel.status).toBe(200);
  expect((await s.request('GET', `/fhir/Slot/${slots[1].id}`)).body.status).toBe('free');
  const cancelled = await waitFor('the cancellation mail to the doctor', () =>
    smtp.received.find((m) => m.to.includes(doctor.email) && /cancelada/i.test(m.parsed.subject ?? '')),
  );
  // No clinical data, no justification text in mail
  expect(cancelled.raw).not.toMatch(/imprevisto/);
});
