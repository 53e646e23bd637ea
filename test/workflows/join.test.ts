/**
 * GET Appointment/[id]/$join (issue 12): each participant's link to the consultation room, signed for them by a
 * self-hosted Jitsi's app secret (HS256 JWT valid from 10 minutes before the start to the end); nobody else's.
 */
import { jwtVerify } from 'jose';
import { startServer, type TestServer } from '../helpers/server';
import { doctorWithToken, patientWithToken } from './people';

const SECRET = 'jitsi-app-secret-for-tests-0123456789';
let s: TestServer;
let doctor: { practitioner: string; token: string };
let ana: { patient: string; token: string };
let bia: { patient: string; token: string };
let appointment: { id: string; start: string; end: string; room: string };

const as = (token: string) => ({ authorization: `Bearer ${token}` });

beforeAll(async () => {
  s = await startServer({ VIDEO_BASE_URL: 'https://meet.healthmed.example', JITSI_APP_ID: 'healthmed', JITSI_APP_SECRET: SECRET });
  const admin = await s.adminToken();
  doctor = await doctorWithToken(s, admin);
  ana = await patientWithToken(s);
  bia = await patientWithToken(s);
  const schedule = await s.request('POST', '/fhir/Schedule', { resourceType: 'Schedule', active: true, actor: [{ reference: doctor.practitioner }] }, as(doctor.token));
  const start = new Date(Math.ceil(Date.now() / 3600_000) * 3600_000 + 72 * 3600_000);
  const slot = await s.request(
    'POST',
    '/fhir/Slot',
    { resourceType: 'Slot', schedule: { reference: `Schedule/${schedule.body.id}` }, status: 'free', start: start.toISOString(), end: new Date(start.getTime() + 50 * 60_000).toISOString() },
    as(doctor.token),
  );
  const booked = await s.request(
    'POST',
    '/fhir/Appointment',
    {
      resourceType: 'Appointment',
      status: 'pending',
      slot: [{ reference: `Slot/${slot.body.id}` }],
      participant: [
        { actor: { reference: ana.patient }, status: 'accepted' },
        { actor: { reference: doctor.practitioner }, status: 'needs-action' },
      ],
    },
    as(ana.token),
  );
  expect(booked.status).toBe(201);
  const room = booked.body.extension[0].extension[0].valueUrl as string;
  appointment = { id: booked.body.id, start: booked.body.start, end: booked.body.end, room };
});
afterAll(() => s.close());

const param = (body: { parameter: { name: string; valueUrl?: string; valueInstant?: string }[] }, name: string) => body.parameter.find((p) => p.name === name);

test('each participant gets a link to the room with a token for them, valid from 10 minutes before the start to the end', async () => {
  for (const [who, token, moderator] of [
    [ana.patient, ana.token, false],
    [doctor.practitioner, doctor.token, true],
  ] as const) {
    const res = await s.request('GET', `/fhir/Appointment/${appointment.id}/$join`, undefined, as(token));
    expect(res.status).toBe(200);
    const url = new URL(param(res.body, 'url')!.valueUrl!);
    expect(`${url.origin}${url.pathname}`).toBe(appointment.room);
    const { payload, protectedHeader } = await jwtVerify(url.searchParams.get('jwt')!, new TextEncoder().encode(SECRET), { audience: 'jitsi', issuer: 'healthmed', currentDate: new Date(Date.parse(appointment.start)) });
    expect(protectedHeader.alg).toBe('HS256');
    expect(payload.sub).toBe('meet.healthmed.example');
    expect(payload.room).toBe(appointment.room.split('/').pop());
    expect(payload.nbf).toBe(Math.floor((Date.parse(appointment.start) - 10 * 60_000) / 1000));
    expect(payload.exp).toBe(Math.floor(Date.parse(appointment.end) / 1000));
    expect(payload.context).toMatchObject({ user: { id: who, moderator } });
    expect(param(res.body, 'validFrom')!.valueInstant).toBe(new Date(Date.parse(appointment.start) - 10 * 60_000).toISOString());
  }
});

test('the token does not admit before its time', async () => {
  const res = await s.request('GET', `/fhir/Appointment/${appointment.id}/$join`, undefined, as(ana.token));
  const jwt = new URL(param(res.body, 'url')!.valueUrl!).searchParams.get('jwt')!;
  await expect(jwtVerify(jwt, new TextEncoder().encode(SECRET), { audience: 'jitsi' })).rejects.toThrow(/nbf/);
});

test('another patient gets what a missing id gets; an admin who takes no part gets 403', async () => {
  const theirs = await s.request('GET', `/fhir/Appointment/${appointment.id}/$join`, undefined, as(bia.token));
  const none = await s.request('GET', `/fhir/Appointment/00000000-0000-4000-8000-000000000000/$join`, undefined, as(bia.token));
  expect(theirs.status).toBe(404);
  expect(theirs.text.replace(appointment.id, '00000000-0000-4000-8000-000000000000')).toBe(none.text);
  expect((await s.request('GET', `/fhir/Appointment/${appointment.id}/$join`)).status).toBe(403);
});
