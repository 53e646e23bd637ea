/**
 * Booking a consultation (CONTRACT section 5; https://hl7.org/fhir/R4/appointment.html#status), over HTTP as a
 * doctor and two patients would: book, the Slot and the Appointment after it, the doctor's answer, the patient's
 * cancellation with a reason, and every refused transition and foreign write. Both databases.
 */
import { randomUUID } from 'node:crypto';
import { startServer, type TestServer } from '../helpers/server';
import { doctorWithToken, patientWithToken } from './people';

let s: TestServer;
let admin: string;
let doctor: { practitioner: string; token: string };
let otherDoctor: { practitioner: string; token: string };
let ana: { patient: string; token: string };
let bia: { patient: string; token: string };
let scheduleId: string;

const VIRTUAL_SERVICE = 'http://hl7.org/fhir/5.0/StructureDefinition/extension-Appointment.virtualService';
const as = (token: string) => ({ authorization: `Bearer ${token}` });
const HOUR = 3600_000;
/** A distinct hour far enough in the future for each Slot a test makes. */
let hourOffset = 48;
const nextHour = () => new Date(Math.ceil(Date.now() / HOUR) * HOUR + hourOffset++ * HOUR);

beforeAll(async () => {
  s = await startServer({ VIDEO_BASE_URL: 'https://video.example.org/rooms/' });
  admin = await s.adminToken();
  doctor = await doctorWithToken(s, admin);
  otherDoctor = await doctorWithToken(s, admin);
  ana = await patientWithToken(s);
  bia = await patientWithToken(s);
  const schedule = await s.request('POST', '/fhir/Schedule', { resourceType: 'Schedule', active: true, actor: [{ reference: doctor.practitioner }] }, as(doctor.token));
  expect(schedule.status).toBe(201);
  scheduleId = schedule.body.id;
});
afterAll(() => s.close());

async function freeSlot(start = nextHour(), minutes = 50): Promise<{ id: string; start: string }> {
  const res = await s.request(
    'POST',
    '/fhir/Slot',
    { resourceType: 'Slot', schedule: { reference: `Schedule/${scheduleId}` }, status: 'free', start: start.toISOString(), end: new Date(start.getTime() + minutes * 60_000).toISOString() },
    as(doctor.token),
  );
  expect(res.status).toBe(201);
  return { id: res.body.id, start: res.body.start };
}

const booking = (slotId: string, patient: string, extra: Record<string, unknown> = {}) => ({
  resourceType: 'Appointment',
  status: 'pending',
  slot: [{ reference: `Slot/${slotId}` }],
  participant: [
    { actor: { reference: patient }, status: 'accepted' },
    { actor: { reference: doctor.practitioner }, status: 'needs-action' },
  ],
  ...extra,
});

const read = async (path: string) => (await s.request('GET', `/fhir/${path}`)).body;
const outbox = async (appointment: string) =>
  (await s.db.query<{ kind: string; due_at: Date }>(`SELECT kind, due_at FROM outbox WHERE payload->>'appointment' = $1 ORDER BY id`, [appointment])).rows;

describe('booking', () => {
  test('a patient books a free Slot: 201, start from the Slot, 50 minutes, a video room, the Slot busy-tentative, the doctor to be told', async () => {
    const slot = await freeSlot();
    const res = await s.request('POST', '/fhir/Appointment', booking(slot.id, ana.patient), as(ana.token));
    expect(res.status).toBe(201);
    const appt = res.body;
    expect(appt.status).toBe('pending');
    expect(appt.start).toBe(slot.start);
    expect(appt.minutesDuration).toBe(50);
    expect(Date.parse(appt.end) - Date.parse(appt.start)).toBe(50 * 60_000);
    const room = appt.extension.find((e: { url: string }) => e.url === VIRTUAL_SERVICE);
    const url: string = room.extension.find((e: { url: string }) => e.url === 'addressUrl').valueUrl;
    expect(url).toMatch(/^https:\/\/video\.example\.org\/rooms\/healthmed-[A-Za-z0-9_-]{24}$/);
    expect((await read(`Slot/${slot.id}`)).status).toBe('busy-tentative');
    expect((await outbox(appt.id)).map((r) => r.kind)).toEqual(['mail.booking-requested', 'mail.reminder']);
    const reminder = (await outbox(appt.id))[1];
    expect(new Date(reminder.due_at).getTime()).toBe(Date.parse(appt.start) - 24 * HOUR);
    // Two rooms never share a URL
    const other = await s.request('POST', '/fhir/Appointment', booking((await freeSlot()).id, ana.patient), as(ana.token));
    expect(other.body.extension[0].extension[0].valueUrl).not.toBe(url);
  });

  test('minutesDuration as given; start and end as the client sent them are replaced by the Slot\'s', async () => {
    const slot = await freeSlot();
    const res = await s.request('POST', '/fhir/Appointment', booking(slot.id, ana.patient, { minutesDuration: 30, start: '2020-01-01T00:00:00Z', end: '2020-01-01T00:30:00Z' }), as(ana.token));
    expect(res.status).toBe(201);
    expect(res.body.start).toBe(slot.start);
    expect(Date.parse(res.body.end) - Date.parse(slot.start)).toBe(30 * 60_000);
  });

  test('a Slot that is not free: 409 naming it; a missing Slot: 422; nothing written', async () => {
    const slot = await freeSlot();
    expect((await s.request('POST', '/fhir/Appointment', booking(slot.id, ana.patient), as(ana.token))).status).toBe(201);
    const again = await s.request('POST', '/fhir/Appointment', booking(slot.id, bia.patient), as(bia.token));
    expect(again.status).toBe(409);
    expect(again.body.issue[0].diagnostics).toBe(`Slot/${slot.id} is not free (busy-tentative)`);
    const missing = await s.request('POST', '/fhir/Appointment', booking(randomUUID(), bia.patient), as(bia.token));
    expect([400, 422]).toContain(missing.status);
    const mine = await s.request('GET', `/fhir/Appointment?patient=${bia.patient}`, undefined, as(bia.token));
    expect(mine.body.total ?? mine.body.entry?.length ?? 0).toBe(0);
  });

  test('a patient books only for themself', async () => {
    const slot = await freeSlot();
    const res = await s.request('POST', '/fhir/Appointment', booking(slot.id, bia.patient), as(ana.token));
    expect(res.status).toBe(403);
    expect((await read(`Slot/${slot.id}`)).status).toBe('free');
  });

  test('the practitioner must be the Slot\'s; statuses must be those of a request', async () => {
    const slot = await freeSlot();
    const wrongDoctor = booking(slot.id, ana.patient, {
      participant: [
        { actor: { reference: ana.patient }, status: 'accepted' },
        { actor: { reference: otherDoctor.practitioner }, status: 'needs-action' },
      ],
    });
    expect((await s.request('POST', '/fhir/Appointment', wrongDoctor, as(ana.token))).status).toBe(422);
    expect((await s.request('POST', '/fhir/Appointment', booking(slot.id, ana.patient, { status: 'booked' }), as(ana.token))).status).toBe(422);
    const selfAccepted = booking(slot.id, ana.patient, {
      participant: [
        { actor: { reference: ana.patient }, status: 'accepted' },
        { actor: { reference: doctor.practitioner }, status: 'accepted' },
      ],
    });
    expect((await s.request('POST', '/fhir/Appointment', selfAccepted, as(ana.token))).status).toBe(422);
    expect((await read(`Slot/${slot.id}`)).status).toBe('free');
  });

  test('a patient cannot hold two overlapping consultations (with two doctors), nor a doctor two', async () => {
    const start = nextHour();
    const mine = await freeSlot(start);
    expect((await s.request('POST', '/fhir/Appointment', booking(mine.id, ana.patient), as(ana.token))).status).toBe(201);
    // Another doctor's Slot at the same time
    const theirs = await s.request('POST', '/fhir/Schedule', { resourceType: 'Schedule', active: true, actor: [{ reference: otherDoctor.practitioner }] }, as(otherDoctor.token));
    const slot2 = await s.request(
      'POST',
      '/fhir/Slot',
      { resourceType: 'Slot', schedule: { reference: `Schedule/${theirs.body.id}` }, status: 'free', start: new Date(start.getTime() + 20 * 60_000).toISOString(), end: new Date(start.getTime() + 70 * 60_000).toISOString() },
      as(otherDoctor.token),
    );
    const clash = await s.request(
      'POST',
      '/fhir/Appointment',
      {
        ...booking(slot2.body.id, ana.patient),
        participant: [
          { actor: { reference: ana.patient }, status: 'accepted' },
          { actor: { reference: otherDoctor.practitioner }, status: 'needs-action' },
        ],
      },
      as(ana.token),
    );
    expect(clash.status).toBe(409);
    expect(clash.body.issue[0].diagnostics).toMatch(new RegExp(`^${ana.patient} already has Appointment/[0-9a-f-]+ at that time$`));
    expect((await read(`Slot/${slot2.body.id}`)).status).toBe('free');
  });
});

describe('the doctor answers; the patient cancels', () => {
  async function booked(): Promise<{ id: string; slot: string; appt: Record<string, unknown> }> {
    const slot = await freeSlot();
    const res = await s.request('POST', '/fhir/Appointment', booking(slot.id, ana.patient), as(ana.token));
    expect(res.status).toBe(201);
    return { id: res.body.id, slot: slot.id, appt: res.body };
  }
  const withDoctor = (appt: Record<string, unknown>, status: string) => ({
    ...appt,
    participant: (appt.participant as { actor: { reference: string }; status: string }[]).map((p) => (p.actor.reference === doctor.practitioner ? { ...p, status } : p)),
  });

  test('accepted: booked, Slot busy, the patient told', async () => {
    const { id, slot, appt } = await booked();
    const res = await s.request('PUT', `/fhir/Appointment/${id}`, withDoctor(appt, 'accepted'), as(doctor.token));
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('booked');
    expect(res.body.extension).toEqual(appt.extension);
    expect((await read(`Slot/${slot}`)).status).toBe('busy');
    expect((await outbox(id)).map((r) => r.kind)).toContain('mail.booking-answered');
  });

  test('declined: cancelled, Slot free again and bookable', async () => {
    const { id, slot, appt } = await booked();
    const res = await s.request('PUT', `/fhir/Appointment/${id}`, withDoctor(appt, 'declined'), as(doctor.token));
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('cancelled');
    expect((await read(`Slot/${slot}`)).status).toBe('free');
    expect((await s.request('POST', '/fhir/Appointment', booking(slot, bia.patient), as(bia.token))).status).toBe(201);
  });

  test('nobody else answers for the doctor: not the patient, not another doctor', async () => {
    const { id, appt } = await booked();
    expect((await s.request('PUT', `/fhir/Appointment/${id}`, withDoctor(appt, 'accepted'), as(ana.token))).status).toBe(403);
    expect([403, 404]).toContain((await s.request('PUT', `/fhir/Appointment/${id}`, withDoctor(appt, 'accepted'), as(otherDoctor.token))).status);
    expect((await read(`Appointment/${id}`)).status).toBe('pending');
  });

  test('the patient cancels with a written reason, before the start: Slot free', async () => {
    const { id, slot, appt } = await booked();
    const noReason = await s.request('PUT', `/fhir/Appointment/${id}`, { ...appt, status: 'cancelled' }, as(ana.token));
    expect(noReason.status).toBe(422);
    expect(noReason.body.issue[0].expression).toEqual(['Appointment.cancelationReason.text']);
    const blank = await s.request('PUT', `/fhir/Appointment/${id}`, { ...appt, status: 'cancelled', cancelationReason: { text: '   ' } }, as(ana.token));
    expect(blank.status).toBe(422);
    const res = await s.request('PUT', `/fhir/Appointment/${id}`, { ...appt, status: 'cancelled', cancelationReason: { text: 'Viagem de trabalho' } }, as(ana.token));
    expect(res.status).toBe(200);
    expect((await read(`Slot/${slot}`)).status).toBe('free');
    expect((await outbox(id)).map((r) => r.kind)).toContain('mail.appointment-cancelled');
    // The patient's time is free again too
    expect((await s.request('POST', '/fhir/Appointment', booking(slot, ana.patient), as(ana.token))).status).toBe(201);
  });

  test('a patch that cancels follows the same rules', async () => {
    const { id, slot } = await booked();
    const patch = (ops: unknown[]) => s.request('PATCH', `/fhir/Appointment/${id}`, ops, { ...as(ana.token), 'content-type': 'application/json-patch+json' });
    expect((await patch([{ op: 'replace', path: '/status', value: 'cancelled' }])).status).toBe(422);
    const ok = await patch([
      { op: 'replace', path: '/status', value: 'cancelled' },
      { op: 'add', path: '/cancelationReason', value: { text: 'Melhorei' } },
    ]);
    expect(ok.status).toBe(200);
    expect((await read(`Slot/${slot}`)).status).toBe('free');
  });

  test('refused transitions and changes', async () => {
    const { id, appt } = await booked();
    const accepted = (await s.request('PUT', `/fhir/Appointment/${id}`, withDoctor(appt, 'accepted'), as(doctor.token))).body;
    const put = (body: unknown, token = doctor.token) => s.request('PUT', `/fhir/Appointment/${id}`, body, as(token));
    // booked back to pending
    expect((await put({ ...accepted, status: 'pending' })).status).toBe(422);
    // a new start, another Slot, another participant
    expect((await put({ ...accepted, start: new Date(Date.parse(accepted.start) + HOUR).toISOString() })).status).toBe(422);
    expect((await put({ ...accepted, slot: [{ reference: `Slot/${(await freeSlot()).id}` }] })).status).toBe(422);
    expect((await put({ ...accepted, participant: [...accepted.participant, { actor: { reference: bia.patient }, status: 'accepted' }] })).status).toBe(422);
    // fulfilled by the doctor, then no cancelling
    const done = await put({ ...accepted, status: 'fulfilled' });
    expect(done.status).toBe(200);
    const cancel = await put({ ...done.body, status: 'cancelled', cancelationReason: { text: 'x' } }, ana.token);
    expect(cancel.status).toBe(422);
    expect(cancel.body.issue[0].diagnostics).toBe('An Appointment cannot go from fulfilled to cancelled');
    // the patient cannot mark it fulfilled or no-show
    const other = await booked();
    expect((await s.request('PUT', `/fhir/Appointment/${other.id}`, { ...other.appt, status: 'noshow' }, as(ana.token))).status).toBe(422);
  });

  test('a booked Slot cannot be deleted, moved or freed by the doctor; a live Appointment cannot be deleted', async () => {
    const { id, slot } = await booked();
    const current = await read(`Slot/${slot}`);
    expect((await s.request('DELETE', `/fhir/Slot/${slot}`, undefined, as(doctor.token))).status).toBe(409);
    const moved = await s.request('PUT', `/fhir/Slot/${slot}`, { ...current, start: new Date(Date.parse(current.start) + HOUR).toISOString(), end: new Date(Date.parse(current.end) + HOUR).toISOString() }, as(doctor.token));
    expect(moved.status).toBe(409);
    expect((await s.request('PUT', `/fhir/Slot/${slot}`, { ...current, status: 'free' }, as(doctor.token))).status).toBe(409);
    expect((await s.request('DELETE', `/fhir/Appointment/${id}`)).status).toBe(409);
  });
});

describe('Slots', () => {
  test('two Slots of one Schedule never overlap: 409 naming the other', async () => {
    const slot = await freeSlot();
    const start = new Date(Date.parse(slot.start) + 10 * 60_000);
    const res = await s.request(
      'POST',
      '/fhir/Slot',
      { resourceType: 'Slot', schedule: { reference: `Schedule/${scheduleId}` }, status: 'free', start: start.toISOString(), end: new Date(start.getTime() + 50 * 60_000).toISOString() },
      as(doctor.token),
    );
    expect(res.status).toBe(409);
    expect(res.body.issue[0].diagnostics).toMatch(new RegExp(`would overlap Slot/${slot.id} of Schedule/${scheduleId}$`));
  });

  test('the doctor blocks time (busy-unavailable), frees it, deletes a free Slot; busy-tentative is the booking\'s', async () => {
    const slot = await freeSlot();
    const current = await read(`Slot/${slot.id}`);
    expect((await s.request('PUT', `/fhir/Slot/${slot.id}`, { ...current, status: 'busy-unavailable' }, as(doctor.token))).status).toBe(200);
    expect((await s.request('POST', '/fhir/Appointment', booking(slot.id, ana.patient), as(ana.token))).status).toBe(409);
    expect((await s.request('PUT', `/fhir/Slot/${slot.id}`, { ...current, status: 'busy-tentative' }, as(doctor.token))).status).toBe(422);
    expect((await s.request('PUT', `/fhir/Slot/${slot.id}`, { ...current, status: 'free' }, as(doctor.token))).status).toBe(200);
    expect((await s.request('DELETE', `/fhir/Slot/${slot.id}`, undefined, as(doctor.token))).status).toBe(200);
    // Its time is free for a new Slot
    const again = await s.request('POST', '/fhir/Slot', { ...current, id: undefined, meta: undefined, status: 'free' }, as(doctor.token));
    expect(again.status).toBe(201);
  });
});

describe('concurrency', () => {
  test('500 concurrent bookings of one Slot: exactly one 201, the others 409, no 5xx', async () => {
    const slot = await freeSlot();
    const patients = [ana, bia];
    const results = await Promise.all(
      Array.from({ length: 500 }, (_, i) => s.request('POST', '/fhir/Appointment', booking(slot.id, patients[i % 2].patient), as(patients[i % 2].token))),
    );
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((x) => x === 201)).toHaveLength(1);
    expect(statuses.filter((x) => x !== 201 && x !== 409)).toEqual([]);
    const held = await s.db.query<{ n: string }>('SELECT count(*) AS n FROM slot_hold WHERE slot_id = $1', [slot.id]);
    expect(Number(held.rows[0].n)).toBe(1);
  });

  /** Slots at start, start+5 min, ... of `count` Schedules (one Schedule cannot hold overlapping Slots). */
  async function overlappingSlots(owners: { practitioner: string; token: string }[], count: number, start: Date): Promise<{ id: string; owner: string }[]> {
    const out: { id: string; owner: string }[] = [];
    for (let i = 0; i < count; i++) {
      const owner = owners[i % owners.length];
      const schedule = await s.request('POST', '/fhir/Schedule', { resourceType: 'Schedule', active: true, actor: [{ reference: owner.practitioner }] }, as(owner.token));
      const at = new Date(start.getTime() + i * 5 * 60_000);
      const res = await s.request(
        'POST',
        '/fhir/Slot',
        { resourceType: 'Slot', schedule: { reference: `Schedule/${schedule.body.id}` }, status: 'free', start: at.toISOString(), end: new Date(at.getTime() + 50 * 60_000).toISOString() },
        as(owner.token),
      );
      expect(res.status).toBe(201);
      out.push({ id: res.body.id, owner: owner.practitioner });
    }
    return out;
  }

  test('concurrent transaction Bundles importing booked Appointments of the same doctors and patients: no deadlock, no 5xx', async () => {
    // An admin importing an agenda: Appointments already booked, in Bundles that share participants
    const doctors = [doctor, otherDoctor];
    const schedules = await Promise.all(doctors.map((d) => s.request('POST', '/fhir/Schedule', { resourceType: 'Schedule', active: true, actor: [{ reference: d.practitioner }] }, as(d.token))));
    const base = nextHour().getTime() + 1000 * 3600_000;
    hourOffset += 2;
    const bundles = [0, 1, 2, 3].map((b) => {
      const entry = [];
      for (let i = 0; i < 20; i++) {
        // Bundle b, item i: alternating doctors and patients in an order that differs between Bundles
        const d = (i + b) % 2;
        const p = [ana, bia][(i + (b >> 1)) % 2];
        const start = new Date(base + (b * 20 + i) * 3600_000);
        const end = new Date(start.getTime() + 50 * 60_000);
        const slotUrl = `urn:uuid:${randomUUID()}`;
        entry.push({ fullUrl: slotUrl, resource: { resourceType: 'Slot', schedule: { reference: `Schedule/${schedules[d].body.id}` }, status: 'busy', start: start.toISOString(), end: end.toISOString() }, request: { method: 'POST', url: 'Slot' } });
        entry.push({
          resource: {
            resourceType: 'Appointment',
            status: 'booked',
            start: start.toISOString(),
            end: end.toISOString(),
            slot: [{ reference: slotUrl }],
            participant: [
              { actor: { reference: p.patient }, status: 'accepted' },
              { actor: { reference: doctors[d].practitioner }, status: 'accepted' },
            ],
          },
          request: { method: 'POST', url: 'Appointment' },
        });
      }
      return { resourceType: 'Bundle', type: 'transaction', entry };
    });
    const results = await Promise.all(bundles.map((b) => s.request('POST', '/fhir', b)));
    // Nothing overlaps: every Bundle lands (no lock taken booking by booking can deadlock them)
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200]);
  });

  const overlapsStored = async () =>
    Number(
      (
        await s.db.query<{ n: string }>(
          'SELECT count(*) AS n FROM appointment_hold a JOIN appointment_hold b ON a.actor = b.actor AND a.appointment_id < b.appointment_id AND a.period && b.period',
        )
      ).rows[0].n,
    );

  test('200 concurrent bookings of overlapping Slots of one doctor: one consultation, no overlap stored', async () => {
    const start = nextHour();
    hourOffset += 3;
    const slots = await overlappingSlots([doctor], 8, start);
    const patients = [ana, bia];
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => {
        const p = patients[i % 2];
        return s.request('POST', '/fhir/Appointment', booking(slots[i % slots.length].id, p.patient), as(p.token));
      }),
    );
    expect(results.filter((r) => r.status !== 201 && r.status !== 409)).toEqual([]);
    expect(results.filter((r) => r.status === 201)).toHaveLength(1);
    expect(await overlapsStored()).toBe(0);
  });

  test('200 concurrent bookings by one patient of overlapping Slots of several doctors: one consultation', async () => {
    const start = nextHour();
    hourOffset += 3;
    const doctors = [doctor, otherDoctor];
    for (let i = 0; i < 2; i++) doctors.push(await doctorWithToken(s, admin));
    const slots = await overlappingSlots(doctors, 8, start);
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => {
        const slot = slots[i % slots.length];
        const body = booking(slot.id, bia.patient, {
          participant: [
            { actor: { reference: bia.patient }, status: 'accepted' },
            { actor: { reference: slot.owner }, status: 'needs-action' },
          ],
        });
        return s.request('POST', '/fhir/Appointment', body, as(bia.token));
      }),
    );
    expect(results.filter((r) => r.status !== 201 && r.status !== 409)).toEqual([]);
    expect(results.filter((r) => r.status === 201)).toHaveLength(1);
    expect(await overlapsStored()).toBe(0);
  });
});
