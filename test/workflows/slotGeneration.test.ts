/**
 * Free Slots made from a Schedule's weekly availability (issue 12; CONTRACT section 5), over HTTP:
 * https://hl7.org/fhir/R4/schedule.html, https://hl7.org/fhir/R4/slot.html, and POST Schedule/[id]/$generate-slots.
 * Extension http://fhir.healthmed.com.br/StructureDefinition/availability (fhir-profiles/).
 */
import type { Extension, Parameters, Schedule, Slot } from '@medplum/fhirtypes';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DateTime } from 'luxon';
import { projectRoot } from '../../src/config';
import { startServer, type TestServer } from '../helpers/server';
import { signUp, signUpPractitioner, tokensFor } from '../auth/helpers';
import { AVAILABILITY_URL } from '../../src/workflows/scheduling/availability';
import { EXTEND_HORIZON_KIND, extendHorizonHandler } from '../../src/workflows/scheduling/generate';
import { createWorkflows } from '../../src/workflows';
import { InsertBatcher } from '../../src/storage/insertBatcher';
import { loadValidator } from '../../src/fhir/validation';

let s: TestServer;
let doctor: { practitioner: string; token: string };
let other: { practitioner: string; token: string };

const SP = 'America/Sao_Paulo';
const as = (token: string) => ({ authorization: `Bearer ${token}` });

beforeAll(async () => {
  s = await startServer();
  const admin = await s.adminToken();
  const signUpDoctor = async () => {
    const dr = await signUpPractitioner(s, admin);
    return { practitioner: dr.practitioner, token: (await tokensFor(s, dr.crm, 'openid fhirUser user/*.cruds')).access_token };
  };
  doctor = await signUpDoctor();
  other = await signUpDoctor();
});
afterAll(() => s.close());

interface Rule {
  days?: string[];
  start?: string;
  end?: string;
  slotMinutes?: number;
  gapMinutes?: number;
  timeZone?: string;
}

function availability(r: Rule = {}): Extension {
  const parts: Extension[] = [
    ...(r.days ?? ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']).map((d) => ({ url: 'daysOfWeek', valueCode: d })),
    { url: 'availableStartTime', valueTime: r.start ?? '09:00:00' },
    { url: 'availableEndTime', valueTime: r.end ?? '12:00:00' },
    { url: 'slotMinutes', valuePositiveInt: r.slotMinutes ?? 50 },
  ];
  if (r.gapMinutes !== undefined) parts.push({ url: 'gapMinutes', valueUnsignedInt: r.gapMinutes });
  if (r.timeZone !== undefined) parts.push({ url: 'timeZone', valueCode: r.timeZone });
  return { url: AVAILABILITY_URL, extension: parts };
}

/** A local date `days` from today in São Paulo (YYYY-MM-DD). */
const day = (days: number) => DateTime.now().setZone(SP).plus({ days }).toISODate() as string;

function schedule(actor: string, rules: Extension[], horizon?: { start?: string; end?: string }): Schedule {
  return { resourceType: 'Schedule', active: true, actor: [{ reference: actor }], extension: rules, ...(horizon ? { planningHorizon: horizon } : {}) };
}

async function createSchedule(body: Schedule, token = doctor.token): Promise<Schedule> {
  const res = await s.request('POST', '/fhir/Schedule', body, as(token));
  expect(res.status).toBe(201);
  return res.body;
}

/** Every Slot of the Schedule with these search parameters, in start order (following pages). */
async function slotsOf(id: string, params = ''): Promise<Slot[]> {
  const out: Slot[] = [];
  let next: string | undefined = `/fhir/Slot?schedule=Schedule/${id}&_sort=start&_count=500${params}`;
  while (next) {
    const res = await s.request('GET', next);
    expect(res.status).toBe(200);
    out.push(...(res.body.entry ?? []).map((e: { resource: Slot }) => e.resource));
    next = res.body.link?.find((l: { relation: string }) => l.relation === 'next')?.url;
  }
  return out;
}

const localTimes = (slots: Slot[]) => slots.map((x) => `${DateTime.fromISO(x.start as string, { zone: SP }).toFormat('yyyy-MM-dd HH:mm')}-${DateTime.fromISO(x.end as string, { zone: SP }).toFormat('HH:mm')}`);

function expectNoOverlap(slots: Slot[]): void {
  const sorted = [...slots].sort((a, b) => Date.parse(a.start as string) - Date.parse(b.start as string));
  for (let i = 1; i < sorted.length; i++) expect(Date.parse(sorted[i].start as string)).toBeGreaterThanOrEqual(Date.parse(sorted[i - 1].end as string));
}

function generate(id: string, params: { start?: string; end?: string }, token?: string) {
  const parameter = Object.entries(params).map(([name, value]) => ({ name, valueDateTime: value }));
  return s.request('POST', `/fhir/Schedule/${id}/$generate-slots`, { resourceType: 'Parameters', parameter }, token ? as(token) : {});
}

const param = (p: Parameters, name: string) => (p.parameter ?? []).filter((x) => x.name === name);

test('a practitioner publishes weekly availability: the free Slots of the planning horizon exist', async () => {
  const sch = await createSchedule(schedule(doctor.practitioner, [availability()], { start: day(1), end: day(7) }));
  const slots = await slotsOf(sch.id as string, '&status=free');
  // 09:00-12:00 in 50-minute slots: 09:00, 09:50, 10:40 (11:30 would end after 12:00), on each of 7 days
  expect(slots).toHaveLength(21);
  expect(new Set(localTimes(slots).map((t) => t.slice(11)))).toEqual(new Set(['09:00-09:50', '09:50-10:40', '10:40-11:30']));
  expect(localTimes(slots)[0]).toBe(`${day(1)} 09:00-09:50`);
  expect(localTimes(slots)[20]).toBe(`${day(7)} 10:40-11:30`);
  expect(slots[0]).toMatchObject({ schedule: { reference: `Schedule/${sch.id}` }, status: 'free' });
  expect(slots[0].start).toMatch(/^\d{4}-\d{2}-\d{2}T09:00:00-03:00$/);
  expectNoOverlap(slots);
  // the agenda query of CONTRACT section 5
  const agenda = await s.request('GET', `/fhir/Slot?schedule=Schedule/${sch.id}&status=free&start=ge${day(2)}&start=lt${day(3)}&_sort=start`);
  expect(agenda.body.entry.map((e: { resource: Slot }) => e.resource.id)).toEqual(slots.slice(3, 6).map((x) => x.id));
  // the window will be extended daily, through the outbox
  const rows = await s.db.query<{ due: boolean }>(
    `SELECT due_at BETWEEN now() + interval '23 hours' AND now() + interval '25 hours' AS due FROM outbox WHERE kind = $1 AND payload->>'schedule' = $2`,
    [EXTEND_HORIZON_KIND, sch.id],
  );
  expect(rows.rows).toEqual([{ due: true }]);
});

test('without a planning horizon, the next 60 days', async () => {
  const sch = await createSchedule(schedule(doctor.practitioner, [availability({ days: ['wed'], start: '14:00:00', end: '15:00:00', slotMinutes: 60 })]));
  const slots = await slotsOf(sch.id as string);
  expect(slots.length).toBeGreaterThanOrEqual(8);
  expect(slots.length).toBeLessThanOrEqual(9);
  expect(Date.parse(slots[slots.length - 1].start as string)).toBeLessThan(Date.now() + 60 * 86_400_000);
  expect(new Set(localTimes(slots).map((t) => t.slice(11)))).toEqual(new Set(['14:00-15:00']));
});

test('$generate-slots: running it twice creates nothing the second time; two at once never duplicate or overlap', async () => {
  const sch = await createSchedule(schedule(doctor.practitioner, [availability({ gapMinutes: 10 })], { start: day(1), end: day(3) }));
  const id = sch.id as string;
  expect(await slotsOf(id)).toHaveLength(9);
  // Beyond the planning horizon nothing is made; within it, what exists is not made again.
  const again = await generate(id, {}, doctor.token);
  expect(again.status).toBe(200);
  expect(param(again.body, 'created')[0].valueInteger).toBe(0);
  expect(param(again.body, 'slot')).toEqual([]);

  // A Schedule without an explicit horizon: $generate-slots reaches past the 60 days the server keeps.
  const open = await createSchedule(schedule(doctor.practitioner, [availability({ days: ['mon', 'tue', 'wed', 'thu', 'fri'], start: '08:00:00', end: '18:00:00' })]));
  const window = { start: `${day(70)}T00:00:00-03:00`, end: `${day(84)}T00:00:00-03:00` };
  const [a, b] = await Promise.all([generate(open.id as string, window, doctor.token), generate(open.id as string, window, doctor.token)]);
  expect([a.status, b.status]).toEqual([200, 200]);
  const made = [a, b].map((r) => param(r.body, 'created')[0].valueInteger as number);
  // 10 weekdays of 12 slots of 50 minutes (08:00 to 18:00)
  expect(made.sort((x, y) => x - y)).toEqual([0, 120]);
  const inWindow = await slotsOf(open.id as string, `&start=ge${day(70)}&start=lt${day(84)}`);
  expect(inWindow).toHaveLength(120);
  expect(new Set(inWindow.map((x) => x.start)).size).toBe(120);
  expectNoOverlap(await slotsOf(open.id as string));
  const created = [a, b].find((r) => param(r.body, 'created')[0].valueInteger === 120);
  expect(param(created?.body, 'slot').map((p) => p.resource?.id).sort()).toEqual(inWindow.map((x) => x.id).sort());
  expect(param(created?.body, 'start')[0].valueDateTime).toBe(new Date(window.start).toISOString());

  const twice = await generate(open.id as string, window, doctor.token);
  expect(param(twice.body, 'created')[0].valueInteger).toBe(0);
  // the query string works as well
  const byQuery = await s.request('POST', `/fhir/Schedule/${open.id}/$generate-slots?start=${encodeURIComponent(window.start)}&end=${encodeURIComponent(window.end)}`, undefined, as(doctor.token));
  expect(byQuery.status).toBe(200);
  expect(param(byQuery.body, 'created')[0].valueInteger).toBe(0);
});

test('$generate-slots refuses bad windows, and is only for the Schedule\'s actor or an admin', async () => {
  const sch = await createSchedule(schedule(doctor.practitioner, [availability()], { start: day(1), end: day(2) }));
  const id = sch.id as string;
  const bad = async (params: { start?: string; end?: string }, diagnostics: RegExp) => {
    const res = await generate(id, params, doctor.token);
    expect(res.status).toBe(400);
    expect(res.body.issue[0].diagnostics).toMatch(diagnostics);
  };
  await bad({ start: `${day(5)}T00:00:00-03:00`, end: `${day(4)}T00:00:00-03:00` }, /end .* must be after start/);
  await bad({ start: `${day(1)}T00:00:00-03:00`, end: `${day(400)}T00:00:00-03:00` }, /at most 366 days/);
  await bad({ start: `${day(1)}T10:00:00` }, /must be a FHIR dateTime/);
  expect((await s.request('GET', `/fhir/Schedule/${id}/$generate-slots`, undefined, as(doctor.token))).status).toBe(405);
  expect((await s.request('POST', `/fhir/Slot/${id}/$generate-slots`, { resourceType: 'Parameters' })).status).toBe(404);

  // another practitioner sees the Schedule (the directory) but may not change it: 403; a patient: 403
  const foreign = await generate(id, {}, other.token);
  expect(foreign.status).toBe(403);
  const patient = await signUp(s);
  const patientToken = (await tokensFor(s, patient.email)).access_token;
  expect((await generate(id, {}, patientToken)).status).toBe(403);
  expect((await generate('00000000-0000-7000-8000-000000000000', {}, doctor.token)).status).toBe(404);
  // the admin may
  expect((await generate(id, {})).status).toBe(200);
});

test('a rule change replaces future free Slots; booked ones stay untouched and are reported', async () => {
  const sch = await createSchedule(schedule(doctor.practitioner, [availability({ start: '09:00:00', end: '12:00:00', slotMinutes: 60 })], { start: day(1), end: day(2) }));
  const id = sch.id as string;
  const before = await slotsOf(id);
  expect(localTimes(before)).toEqual([`${day(1)} 09:00-10:00`, `${day(1)} 10:00-11:00`, `${day(1)} 11:00-12:00`, `${day(2)} 09:00-10:00`, `${day(2)} 10:00-11:00`, `${day(2)} 11:00-12:00`]);
  // one Slot marked busy by the admin, one held by a live Appointment, one free Slot that another resource references
  const busy = (await s.request('PUT', `/fhir/Slot/${before[0].id}`, { ...before[0], status: 'busy' })).body as Slot;
  expect(busy.meta?.versionId).toBe('2');
  await s.db.query('INSERT INTO slot_hold (slot_id, appointment_id) VALUES ($1, $2)', [before[1].id, 'appointment-of-the-test']);
  const note = await s.request('POST', '/fhir/Basic', { resourceType: 'Basic', code: { text: 'note' }, subject: { reference: `Slot/${before[3].id}` } });
  expect(note.status).toBe(201);
  // one blocked by the doctor
  const blocked = (await s.request('PUT', `/fhir/Slot/${before[4].id}`, { ...before[4], status: 'busy-unavailable' }, as(doctor.token))).body as Slot;
  expect(blocked.status).toBe('busy-unavailable');

  const changed = { ...sch, extension: [availability({ start: '10:30:00', end: '12:30:00', slotMinutes: 60 })] };
  const res = await s.request('PUT', `/fhir/Schedule/${id}`, changed, { ...as(doctor.token), prefer: 'return=OperationOutcome' });
  expect(res.status).toBe(200);
  expect(res.body.resourceType).toBe('OperationOutcome');
  const warnings = res.body.issue.filter((i: { severity: string }) => i.severity === 'warning');
  expect(warnings.map((i: { diagnostics: string }) => i.diagnostics.split(' ')[0]).sort()).toEqual([`Slot/${before[0].id}`, `Slot/${before[1].id}`].sort());
  expect(warnings[0]).toMatchObject({ code: 'business-rule', diagnostics: expect.stringContaining('is booked and the availability rules no longer make it') });

  const after = await slotsOf(id);
  const byId = new Map(after.map((x) => [x.id, x]));
  // booked: untouched (same version)
  expect(byId.get(before[0].id)?.meta?.versionId).toBe('2');
  expect(byId.get(before[1].id)).toMatchObject({ status: 'free', meta: { versionId: '1' } });
  // blocked by the doctor: kept; it takes the time of a 10:30 slot on day 2
  expect(byId.get(before[4].id)).toMatchObject({ status: 'busy-unavailable', meta: { versionId: '2' } });
  // the referenced free one is withdrawn (entered-in-error), the others deleted
  expect(byId.get(before[3].id)?.status).toBe('entered-in-error');
  for (const gone of [before[2], before[5]]) expect((await s.request('GET', `/fhir/Slot/${gone.id}`)).status).toBe(410);
  // the new rules: 10:30-11:30 and 11:30-12:30, except where a kept Slot takes the time
  const free = after.filter((x) => x.status === 'free' && x.id !== before[1].id);
  expect(localTimes(free)).toEqual([`${day(1)} 11:30-12:30`, `${day(2)} 11:30-12:30`]);
  expectNoOverlap(after.filter((x) => x.status !== 'entered-in-error'));

  // $generate-slots lists the booked ones outside the rules too
  const listed = await generate(id, {}, doctor.token);
  expect(param(listed.body, 'outsideRules').map((p) => p.valueReference?.reference).sort()).toEqual([`Slot/${before[0].id}`, `Slot/${before[1].id}`].sort());
  await s.db.query('DELETE FROM slot_hold WHERE slot_id = $1', [before[1].id]);
});

test('an update that leaves the rules as they are touches no Slot', async () => {
  const sch = await createSchedule(schedule(doctor.practitioner, [availability()], { start: day(1), end: day(1) }));
  const before = await slotsOf(sch.id as string);
  const res = await s.request('PUT', `/fhir/Schedule/${sch.id}`, { ...sch, comment: 'Teleconsultas' }, { ...as(doctor.token), prefer: 'return=OperationOutcome' });
  expect(res.status).toBe(200);
  expect(res.body.issue).toHaveLength(1);
  expect(await slotsOf(sch.id as string)).toEqual(before);
});

test('invalid rules: 422, nothing stored', async () => {
  const mars = await s.request('POST', '/fhir/Schedule', schedule(doctor.practitioner, [availability({ timeZone: 'Mars/Olympus' })]), as(doctor.token));
  expect(mars.status).toBe(422);
  expect(mars.body.issue).toEqual([expect.objectContaining({ severity: 'error', code: 'business-rule', expression: ['Schedule.extension[0]'], diagnostics: expect.stringContaining("'Mars/Olympus' is not an IANA time zone") })]);
  const backwards = await s.request('POST', '/fhir/Schedule', schedule(doctor.practitioner, [availability({ start: '12:00:00', end: '09:00:00' })]), as(doctor.token));
  expect(backwards.status).toBe(422);
  expect(backwards.body.issue[0].diagnostics).toContain('hm-availability-1');
  const tooLong = await s.request('POST', '/fhir/Schedule', schedule(doctor.practitioner, [availability({ start: '09:00:00', end: '10:00:00', slotMinutes: 90 })]), as(doctor.token));
  expect(tooLong.status).toBe(422);
  expect(tooLong.body.issue[0].diagnostics).toContain('does not fit');
  const noSlotLength = { url: AVAILABILITY_URL, extension: availability().extension?.filter((p) => p.url !== 'slotMinutes') };
  expect((await s.request('POST', '/fhir/Schedule', schedule(doctor.practitioner, [noSlotLength]), as(doctor.token))).status).toBe(422);
  const sch = await createSchedule(schedule(doctor.practitioner, [availability()], { start: day(1), end: day(1) }));
  const update = await s.request('PUT', `/fhir/Schedule/${sch.id}`, { ...sch, extension: [availability({ timeZone: 'Mars/Olympus' })] }, as(doctor.token));
  expect(update.status).toBe(422);
  expect(await slotsOf(sch.id as string)).toHaveLength(3);
});

test('deleting a Schedule: refused while a Slot is booked; otherwise its future free Slots go with it', async () => {
  const sch = await createSchedule(schedule(doctor.practitioner, [availability()], { start: day(1), end: day(1) }));
  const id = sch.id as string;
  const slots = await slotsOf(id);
  await s.db.query('INSERT INTO slot_hold (slot_id, appointment_id) VALUES ($1, $2)', [slots[0].id, 'appointment-of-the-test']);
  const refused = await s.request('DELETE', `/fhir/Schedule/${id}`, undefined, as(doctor.token));
  expect(refused.status).toBe(409);
  expect(refused.body.issue[0].diagnostics).toContain(`Slot/${slots[0].id}`);
  expect(await slotsOf(id)).toHaveLength(3);
  await s.db.query('DELETE FROM slot_hold WHERE slot_id = $1', [slots[0].id]);
  const deleted = await s.request('DELETE', `/fhir/Schedule/${id}`, undefined, as(doctor.token));
  expect(deleted.status).toBe(200);
  expect(await slotsOf(id)).toEqual([]);
});

test('the daily extension makes the new part of the window and comes back in a day', async () => {
  const sch = await createSchedule(schedule(doctor.practitioner, [availability({ days: ['mon', 'tue', 'wed', 'thu', 'fri'] })]));
  const id = sch.id as string;
  const slots = await slotsOf(id);
  // The doctor deletes one free Slot early in the window and one near its end.
  const early = slots[1];
  const late = slots[slots.length - 2];
  for (const x of [early, late]) expect((await s.request('DELETE', `/fhir/Slot/${x.id}`, undefined, as(doctor.token))).status).toBe(200);
  const handler = extendHorizonHandler({
    db: s.db,
    validator: loadValidator(s.config.profilesDir),
    workflows: createWorkflows({ scheduling: { videoBaseUrl: s.config.videoBaseUrl } }),
    inserts: new InsertBatcher(s.db, s.fhirBase, { writers: 1, maxBatch: 16 }),
    settings: { fhirBaseUrl: s.fhirBase, enforceReferentialIntegrityOnWrite: true, enforceReferentialIntegrityOnDelete: true, limits: s.config.limits },
  });
  // As if the previous run had made the window through the day before the late Slot.
  const through = new Date(Date.parse(late.start as string) - 86_400_000).toISOString();
  await handler({ schedule: id, through });
  const now = await slotsOf(id);
  const ids = new Set(now.map((x) => x.start));
  expect(ids.has(late.start)).toBe(true);
  expect(ids.has(early.start)).toBe(false);
  expect(now).toHaveLength(slots.length - 1);
  const next = await s.db.query<{ through: string; due: boolean }>(
    `SELECT payload->>'through' AS through, due_at BETWEEN now() + interval '23 hours' AND now() + interval '25 hours' AS due
       FROM outbox WHERE kind = $1 AND payload->>'schedule' = $2 ORDER BY id`,
    [EXTEND_HORIZON_KIND, id],
  );
  expect(next.rows).toHaveLength(2);
  expect(next.rows[1].due).toBe(true);
  expect(Date.parse(next.rows[1].through)).toBeGreaterThan(Date.now() + 59 * 86_400_000);
  // a deleted Schedule ends the chain
  await handler({ schedule: 'no-such-schedule' });
});

test('the CapabilityStatement lists $generate-slots on Schedule and names the availability extension', async () => {
  const cs = (await s.request('GET', '/fhir/metadata')).body;
  const sch = cs.rest[0].resource.find((r: { type: string }) => r.type === 'Schedule');
  expect(sch.operation).toEqual(
    expect.arrayContaining([expect.objectContaining({ name: 'generate-slots', definition: 'http://fhir.healthmed.com.br/OperationDefinition/Schedule-generate-slots' })]),
  );
  expect(sch.documentation).toContain(AVAILABILITY_URL);
  const patient = cs.rest[0].resource.find((r: { type: string }) => r.type === 'Patient');
  expect(patient.operation.map((o: { name: string }) => o.name)).toEqual(['validate', 'reindex', 'everything']);
  expect(cs.rest[0].operation.map((o: { name: string }) => o.name)).toEqual(['reindex']);
});

test('migration 0012 starts the daily extension of Schedules that have rules and none pending, once', async () => {
  const withRules = (await createSchedule(schedule(doctor.practitioner, [availability({ days: ['sat'] })]))).id as string;
  const sql = readFileSync(join(projectRoot(), 'migrations', '0012_schedule_horizon.sql'), 'utf8');
  const pending = async () =>
    (await s.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM outbox WHERE kind = $1 AND state = 'pending' AND payload->>'schedule' = $2`, [EXTEND_HORIZON_KIND, withRules])).rows[0].n;
  expect(await pending()).toBe(1);
  // A Schedule written before the extension existed: no row pending
  await s.db.query(`DELETE FROM outbox WHERE kind = $1 AND payload->>'schedule' = $2`, [EXTEND_HORIZON_KIND, withRules]);
  await s.db.query(sql);
  expect(await pending()).toBe(1);
  // (the server's worker may already have run it: then the next day's row is the one pending)
  const rows = (await s.db.query<{ payload: Record<string, unknown> }>(`SELECT payload FROM outbox WHERE kind = $1 AND payload->>'schedule' = $2 ORDER BY id`, [EXTEND_HORIZON_KIND, withRules])).rows;
  expect(rows[0].payload).toEqual({ schedule: withRules });
  // Run again (another server applying it): still one
  await s.db.query(sql);
  expect(await pending()).toBe(1);
});
