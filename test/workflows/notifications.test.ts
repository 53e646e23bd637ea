/**
 * The scheduling e-mails (CONTRACT section 5, issue 12 "Everyone is told"; src/workflows/notifications/), over a
 * real SMTP server: each kind the booking workflow enqueues reaches the right participants, in Portuguese, with
 * the time in Brasília time, no clinical data, and an iCalendar invitation whose UID is the Appointment id
 * (METHOD:REQUEST, or CANCEL when the consultation will not happen). The address is the account's
 * (auth_users.email), else the resource's telecom; a participant with neither is skipped. Notices that no
 * longer make sense when delivered (a reminder for a cancelled consultation) are skipped. Both databases.
 *
 * The Appointments are stored directly (not POSTed), so these tests depend on no booking rule; the booking
 * workflow's own tests cover which rows it writes. The last test is the whole way, over HTTP: a booking, the
 * doctor's answer and the patient's cancellation each reach the other side by e-mail.
 */
import { randomBytes } from 'node:crypto';
import type { Appointment, Patient, Practitioner } from '@medplum/fhirtypes';
import { enqueue } from '../../src/workflows/outbox/enqueue';
import { PATIENT_SCOPE, signUp, signUpPractitioner, tokensFor } from '../auth/helpers';
import { startServer, type TestServer } from '../helpers/server';
import { icsLines, icsOf, sleep, startSmtp, storeResource, waitFor, type ReceivedMail, type TestSmtp } from './outboxSupport';

let server: TestServer;
let smtp: TestSmtp;
let patient: { email: string; ref: string };
let doctor: { email: string; ref: string; crm: string };

// 14:00 in São Paulo (UTC-3; no daylight saving time since 2019).
const START = '2030-03-15T17:00:00.000Z';
const END = '2030-03-15T17:50:00.000Z';
const WHEN = 'sexta-feira, 15 de março de 2030 às 14:00 (horário de Brasília)';
/** Clinical data the Appointment carries, which no message may repeat. */
const CLINICAL = ['Crise de ansiedade', 'F41.1', 'Psiquiatria', 'insônia há três semanas', 'Consulta de retorno psiquiátrico'];

beforeAll(async () => {
  smtp = await startSmtp();
  server = await startServer({ OUTBOX_POLL_MS: '50', SMTP_URL: smtp.url, MAIL_FROM: 'Health&Med <no-reply@healthmed.test>' });
  const person = await signUp(server); // Ana Souza
  const dr = await signUpPractitioner(server, await server.adminToken()); // Carlos Lima
  patient = { email: person.email, ref: person.patient };
  doctor = { email: dr.email, ref: dr.practitioner, crm: dr.crm };
});
afterAll(async () => {
  await server?.close();
  await smtp?.close();
});

const newId = (prefix: string) => `${prefix}-${randomBytes(6).toString('hex')}`;

function appointment(id: string, status: Appointment['status'], participants: { ref: string; status: 'accepted' | 'declined' | 'needs-action' }[]): Appointment & { id: string } {
  return {
    resourceType: 'Appointment',
    id,
    status,
    start: START,
    end: END,
    minutesDuration: 50,
    description: CLINICAL[4],
    comment: CLINICAL[3],
    reasonCode: [{ text: CLINICAL[0], coding: [{ system: 'http://hl7.org/fhir/sid/icd-10', code: CLINICAL[1] }] }],
    specialty: [{ text: CLINICAL[2] }],
    ...(status === 'cancelled' ? { cancelationReason: { text: CLINICAL[3] } } : {}),
    participant: participants.map((p) => ({ actor: { reference: p.ref }, status: p.status, required: 'required' })),
  };
}

async function store(a: Appointment & { id: string }): Promise<void> {
  await storeResource(server.db, server.fhirBase, a);
}

/** Enqueues one row in a transaction (as the booking workflow does) and waits until it and any rows it split into are settled. */
async function deliver(kind: string, payload: Record<string, unknown>): Promise<void> {
  await server.db.transaction((tx) => enqueue(tx, [{ kind, payload }]));
  await waitFor('the notice delivered', async () => {
    const r = await server.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM outbox WHERE payload->>'appointment' = $1 AND state = 'pending'`, [payload.appointment]);
    return Number(r.rows[0].n) === 0;
  });
}

const mailsFor = (id: string) => smtp.received.filter((m) => icsOf(m)?.includes(`UID:${id}`));
const mailTo = (id: string, email: string) => mailsFor(id).filter((m) => m.to.includes(email));

function expectNoClinicalData(mail: ReceivedMail): void {
  for (const text of CLINICAL) {
    expect(mail.raw).not.toContain(text);
    expect(mail.parsed.text ?? '').not.toContain(text);
    expect(mail.parsed.subject ?? '').not.toContain(text);
    expect(icsOf(mail)).not.toContain(text);
  }
}

function expectInvitation(mail: ReceivedMail, id: string, method: 'REQUEST' | 'CANCEL', attendee: string): string[] {
  const lines = icsLines(icsOf(mail)!);
  expect(lines).toContain(`METHOD:${method}`);
  expect(lines).toContain(`UID:${id}`);
  expect(lines).toContain('DTSTART:20300315T170000Z');
  expect(lines).toContain('DTEND:20300315T175000Z');
  expect(lines.some((l) => l.startsWith('ORGANIZER;') && l.endsWith(':mailto:no-reply@healthmed.test'))).toBe(true);
  expect(lines.some((l) => l.startsWith('ATTENDEE;') && l.toLowerCase().endsWith(`:mailto:${attendee}`))).toBe(true);
  // also offered as a text/calendar alternative with the method, which calendar clients act on (RFC 6047)
  expect(mail.raw).toMatch(new RegExp(`Content-Type: text/calendar; charset=utf-8; method=${method}`, 'i'));
  return lines;
}

test('booking requested: the practitioner is told a patient asked, with a tentative invitation', async () => {
  const id = newId('req');
  await store(appointment(id, 'pending', [{ ref: patient.ref, status: 'accepted' }, { ref: doctor.ref, status: 'needs-action' }]));
  await deliver('mail.booking-requested', { appointment: id });
  await waitFor('the mail', () => mailsFor(id).length === 1);
  await sleep(200);
  const [mail] = mailsFor(id);
  expect(mail.to).toEqual([doctor.email]);
  expect(mail.parsed.from?.value[0].address).toBe('no-reply@healthmed.test');
  expect(mail.parsed.subject).toBe('Nova solicitação de teleconsulta');
  expect(mail.parsed.text).toContain('Olá, Carlos Lima.');
  expect(mail.parsed.text).toContain(`Ana Souza solicitou uma teleconsulta com você para ${WHEN}.`);
  expect(mail.parsed.text).toContain(server.baseUrl);
  const lines = expectInvitation(mail, id, 'REQUEST', doctor.email);
  expect(lines).toContain('STATUS:TENTATIVE');
  expect(lines).toContain('SEQUENCE:1');
  expectNoClinicalData(mail);
});

test('booking accepted: the patient is told, with a confirmed invitation', async () => {
  const id = newId('acc');
  await store(appointment(id, 'pending', [{ ref: patient.ref, status: 'accepted' }, { ref: doctor.ref, status: 'needs-action' }]));
  await store(appointment(id, 'booked', [{ ref: patient.ref, status: 'accepted' }, { ref: doctor.ref, status: 'accepted' }]));
  await deliver('mail.booking-answered', { appointment: id });
  await waitFor('the mail', () => mailsFor(id).length === 1);
  await sleep(200);
  const [mail] = mailsFor(id);
  expect(mail.to).toEqual([patient.email]);
  expect(mail.parsed.subject).toBe('Teleconsulta confirmada');
  expect(mail.parsed.text).toContain('Olá, Ana Souza.');
  expect(mail.parsed.text).toContain(`Carlos Lima confirmou a sua teleconsulta de ${WHEN}.`);
  const lines = expectInvitation(mail, id, 'REQUEST', patient.email);
  expect(lines).toContain('STATUS:CONFIRMED');
  expect(lines).toContain('SEQUENCE:2');
  expectNoClinicalData(mail);
});

test('booking declined: the patient is told, and the invitation is cancelled', async () => {
  const id = newId('dec');
  await store(appointment(id, 'cancelled', [{ ref: patient.ref, status: 'accepted' }, { ref: doctor.ref, status: 'declined' }]));
  await deliver('mail.booking-answered', { appointment: id, answer: 'declined' });
  await waitFor('the mail', () => mailsFor(id).length === 1);
  const [mail] = mailsFor(id);
  expect(mail.to).toEqual([patient.email]);
  expect(mail.parsed.subject).toBe('Teleconsulta não confirmada');
  expect(mail.parsed.text).toContain(`Carlos Lima não pôde confirmar a teleconsulta solicitada para ${WHEN}.`);
  expect(expectInvitation(mail, id, 'CANCEL', patient.email)).toContain('STATUS:CANCELLED');
  expectNoClinicalData(mail);
});

test('cancelled by the patient: the practitioner is told, without the justification', async () => {
  const id = newId('can');
  await store(appointment(id, 'cancelled', [{ ref: patient.ref, status: 'accepted' }, { ref: doctor.ref, status: 'accepted' }]));
  await deliver('mail.appointment-cancelled', { appointment: id, by: patient.ref });
  await waitFor('the mail', () => mailsFor(id).length === 1);
  await sleep(300);
  expect(mailsFor(id)).toHaveLength(1);
  const [mail] = mailsFor(id);
  expect(mail.to).toEqual([doctor.email]);
  expect(mail.parsed.subject).toBe('Teleconsulta cancelada');
  expect(mail.parsed.text).toContain(`A teleconsulta de ${WHEN} com Ana Souza foi cancelada.`);
  expect(expectInvitation(mail, id, 'CANCEL', doctor.email)).toContain('STATUS:CANCELLED');
  expectNoClinicalData(mail);
});

test('cancelled with nobody named: every participant is told, through one row each', async () => {
  const id = newId('all');
  await store(appointment(id, 'cancelled', [{ ref: patient.ref, status: 'accepted' }, { ref: doctor.ref, status: 'accepted' }]));
  await deliver('mail.appointment-cancelled', { appointment: id });
  await waitFor('two mails', () => mailsFor(id).length === 2);
  expect(mailTo(id, patient.email)).toHaveLength(1);
  expect(mailTo(id, doctor.email)).toHaveLength(1);
  expect(mailTo(id, patient.email)[0].parsed.text).toContain(`A teleconsulta de ${WHEN} com Carlos Lima foi cancelada.`);
  const rows = await server.db.query<{ to: string | null; state: string }>(`SELECT payload->>'to' AS to, state FROM outbox WHERE payload->>'appointment' = $1 ORDER BY id`, [id]);
  expect(rows.rows).toEqual([
    { to: null, state: 'done' },
    { to: patient.ref, state: 'done' },
    { to: doctor.ref, state: 'done' },
  ]);
});

test('reminder: both are reminded while the consultation is live; none once it is cancelled', async () => {
  const id = newId('rem');
  await store(appointment(id, 'booked', [{ ref: patient.ref, status: 'accepted' }, { ref: doctor.ref, status: 'accepted' }]));
  await deliver('mail.reminder', { appointment: id });
  await waitFor('two mails', () => mailsFor(id).length === 2);
  const toPatient = mailTo(id, patient.email)[0];
  const toDoctor = mailTo(id, doctor.email)[0];
  expect(toPatient.parsed.subject).toBe('Lembrete: teleconsulta em 15/03 14:00');
  expect(toPatient.parsed.text).toContain(`a sua teleconsulta com Carlos Lima está marcada para ${WHEN}.`);
  expect(toDoctor.parsed.text).toContain(`a sua teleconsulta com Ana Souza está marcada para ${WHEN}.`);
  for (const [mail, email] of [[toPatient, patient.email], [toDoctor, doctor.email]] as const) {
    expectInvitation(mail, id, 'REQUEST', email);
    expectNoClinicalData(mail);
  }

  const gone = newId('rem');
  await store(appointment(gone, 'cancelled', [{ ref: patient.ref, status: 'accepted' }, { ref: doctor.ref, status: 'accepted' }]));
  await deliver('mail.reminder', { appointment: gone });
  await sleep(300);
  expect(mailsFor(gone)).toEqual([]);
  const row = await server.db.query<{ state: string }>(`SELECT state FROM outbox WHERE payload->>'appointment' = $1`, [gone]);
  expect(row.rows).toEqual([{ state: 'done' }]);
});

test('a request already answered, or an Appointment that is gone, sends nothing', async () => {
  const id = newId('old');
  await store(appointment(id, 'booked', [{ ref: patient.ref, status: 'accepted' }, { ref: doctor.ref, status: 'accepted' }]));
  await deliver('mail.booking-requested', { appointment: id });
  const missing = newId('none');
  await deliver('mail.booking-requested', { appointment: missing });
  await sleep(300);
  expect(mailsFor(id)).toEqual([]);
  const rows = await server.db.query<{ state: string }>(`SELECT state FROM outbox WHERE payload->>'appointment' = ANY($1::text[])`, [[id, missing]]);
  expect(rows.rows).toEqual([{ state: 'done' }, { state: 'done' }]);
});

test("without an account, the resource's telecom e-mail is used; a participant with no address is skipped", async () => {
  const pr = newId('pr');
  const pt = newId('pt');
  const email = `${pr}@clinica.example.com`;
  await storeResource<Practitioner>(server.db, server.fhirBase, {
    resourceType: 'Practitioner',
    id: pr,
    name: [{ given: ['Beatriz'], family: 'Alves' }],
    telecom: [{ system: 'phone', value: '+55 11 5555-0000' }, { system: 'email', value: 'old@example.com', use: 'old' }, { system: 'email', value: email }],
  });
  await storeResource<Patient>(server.db, server.fhirBase, { resourceType: 'Patient', id: pt, name: [{ given: ['João'], family: 'Pereira' }] });
  const id = newId('tel');
  await store(appointment(id, 'booked', [{ ref: `Patient/${pt}`, status: 'accepted' }, { ref: `Practitioner/${pr}`, status: 'accepted' }]));
  await deliver('mail.reminder', { appointment: id });
  await waitFor('the mail', () => mailsFor(id).length === 1);
  await sleep(300);
  const mails = mailsFor(id);
  expect(mails).toHaveLength(1);
  expect(mails[0].to).toEqual([email]);
  expect(mails[0].parsed.text).toContain('Olá, Beatriz Alves.');
  expect(mails[0].parsed.text).toContain('com João Pereira');
});

test('a payload without an Appointment id is dead at once', async () => {
  const marker = newId('bad');
  await enqueue(server.db, [{ kind: 'mail.reminder', payload: { marker } }]);
  await waitFor('dead', async () => {
    const r = await server.db.query<{ state: string; last_error: string }>(`SELECT state, last_error FROM outbox WHERE payload->>'marker' = $1`, [marker]);
    return r.rows[0]?.state === 'dead' && r.rows[0];
  });
  const r = await server.db.query<{ last_error: string; attempts: number }>(`SELECT last_error, attempts FROM outbox WHERE payload->>'marker' = $1`, [marker]);
  expect(r.rows[0]).toEqual({ last_error: 'mail.reminder: the payload names no Appointment id', attempts: 1 });
});

test('over HTTP: the booking reaches the doctor, the answer the patient, the cancellation the doctor, without its reason', async () => {
  const as = (token: string) => ({ authorization: `Bearer ${token}` });
  const patientToken = (await tokensFor(server, patient.email, PATIENT_SCOPE)).access_token;
  const doctorToken = (await tokensFor(server, doctor.crm, 'openid fhirUser user/*.cruds')).access_token;
  const schedule = await server.request('POST', '/fhir/Schedule', { resourceType: 'Schedule', active: true, actor: [{ reference: doctor.ref }] }, as(doctorToken));
  expect(schedule.status).toBe(201);
  const start = new Date(Math.ceil(Date.now() / 3_600_000) * 3_600_000 + 72 * 3_600_000);
  const slot = await server.request(
    'POST',
    '/fhir/Slot',
    { resourceType: 'Slot', schedule: { reference: `Schedule/${schedule.body.id}` }, status: 'free', start: start.toISOString(), end: new Date(start.getTime() + 50 * 60_000).toISOString() },
    as(doctorToken),
  );
  expect(slot.status).toBe(201);
  const booked = await server.request(
    'POST',
    '/fhir/Appointment',
    {
      resourceType: 'Appointment',
      status: 'pending',
      slot: [{ reference: `Slot/${slot.body.id}` }],
      reasonCode: [{ text: CLINICAL[0] }],
      participant: [
        { actor: { reference: patient.ref }, status: 'accepted' },
        { actor: { reference: doctor.ref }, status: 'needs-action' },
      ],
    },
    as(patientToken),
  );
  expect(booked.status).toBe(201);
  const id: string = booked.body.id;
  const requested = await waitFor('the booking mail', () => mailTo(id, doctor.email).find((m) => m.parsed.subject === 'Nova solicitação de teleconsulta'));
  expect(icsLines(icsOf(requested)!)).toContain(`DTSTART:${start.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '')}`);
  expectNoClinicalData(requested);

  const answer = {
    ...booked.body,
    participant: booked.body.participant.map((p: { actor: { reference: string } }) => (p.actor.reference === doctor.ref ? { ...p, status: 'accepted' } : p)),
  };
  const accepted = await server.request('PUT', `/fhir/Appointment/${id}`, answer, as(doctorToken));
  expect(accepted.status).toBe(200);
  const confirmed = await waitFor('the answer mail', () => mailTo(id, patient.email).find((m) => m.parsed.subject === 'Teleconsulta confirmada'));
  expect(icsLines(icsOf(confirmed)!)).toContain('METHOD:REQUEST');

  const cancelled = await server.request('PUT', `/fhir/Appointment/${id}`, { ...accepted.body, status: 'cancelled', cancelationReason: { text: CLINICAL[3] } }, as(patientToken));
  expect(cancelled.status).toBe(200);
  const told = await waitFor('the cancellation mail', () => mailTo(id, doctor.email).find((m) => m.parsed.subject === 'Teleconsulta cancelada'));
  expect(icsLines(icsOf(told)!)).toContain('METHOD:CANCEL');
  for (const mail of mailsFor(id)) expectNoClinicalData(mail);
});
