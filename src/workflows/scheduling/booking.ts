/**
 * Booking, the doctor's answer and cancellation (CONTRACT section 5; https://hl7.org/fhir/R4/appointment.html#status):
 * the rules of an Appointment, run inside the write's transaction.
 *
 * - Booking: `POST Appointment` (status pending, one Slot, the Patient accepted, the Schedule's Practitioner
 *   needs-action). The Slot must be free; it becomes busy-tentative. The Appointment takes `start` from the Slot,
 *   `minutesDuration` 50 unless given, `end`, and a video room. The database guarantees one live Appointment per
 *   Slot and no two overlapping live Appointments per participant (slot_hold, appointment_hold); a conflict is 409.
 * - The practitioner answers with their own participant's status: accepted -> booked (Slot busy); declined ->
 *   cancelled (Slot free). Nobody else changes that participant.
 * - A participant (or an admin) cancels before the start with a non-empty `cancelationReason.text`: Slot free.
 * - Every other transition, and changing the time, the Slot or the participants, is refused.
 * Each change that people must hear about writes its outbox rows (src/workflows/outbox/enqueue.ts) in the same
 * transaction; the mail goes out later (src/workflows/notifications/).
 */
import { randomBytes } from 'node:crypto';
import type { Appointment, AppointmentParticipant, Extension, Slot } from '@medplum/fhirtypes';
import type { FhirContext, WriteEvent } from '../../fhir/context';
import { conflict, forbidden, unprocessable } from '../../fhir/outcomes';
import { storeVersion } from '../../fhir/interactions/write';
import { localReference } from '../../access/compartment';
import { nameVisible, writesEverywhere } from '../../access/visible';
import type { Queryable } from '../../storage/database';
import { readCurrent, readWithReferenced, type NewVersion, type StoredVersion } from '../../storage/repository';
import { participantLocks, writeBooking } from '../../storage/bookingWrite';
import { withMeta } from '../../fhir/resources';
import { isConstraintViolation } from './constraints';
import { enqueue, type OutboxRow } from '../outbox/enqueue';
import type { TypeHook } from '..';
import type { SchedulingSettings } from '.';

/** Appointments that hold their Slot and their participants' time. */
const LIVE = new Set(['pending', 'booked']);
/** After the consultation: no longer live, never back. */
const AFTER = new Set(['arrived', 'checked-in', 'fulfilled', 'noshow']);
export const VIRTUAL_SERVICE = 'http://hl7.org/fhir/5.0/StructureDefinition/extension-Appointment.virtualService';
export const DEFAULT_MINUTES = 50;
const HOUR = 3600_000;

export function bookingHook(settings: SchedulingSettings): TypeHook {
  return {
    // A booking (pending, one Slot) writes everything in one statement; other creates hold time in several.
    createNeedsTransaction: (resource) => !((resource as Appointment).status === 'pending' && (resource as Appointment).slot?.length === 1),
    async beforeWrite(ctx: FhirContext, q: Queryable, event: WriteEvent): Promise<void> {
      const previous = event.previous as Appointment | undefined;
      const next = event.next as Appointment | undefined;
      if (!next) {
        if (previous && LIVE.has(previous.status)) {
          throw conflict(`Appointment/${event.id} is ${previous.status}: cancel it (status cancelled, with a cancelationReason) rather than delete it`);
        }
        await release(q, event.id);
        return;
      }
      if (!previous) await book(ctx, q, event, next, settings);
      else await transition(ctx, q, event.id, previous, next);
    },
  };
}

interface Party {
  participant: AppointmentParticipant;
  /** "Patient/<id>" or "Practitioner/<id>" (a PractitionerRole counts as its Practitioner). */
  key: string;
  kind: 'patient' | 'practitioner';
}

/** The patients and practitioners taking part, with PractitionerRoles resolved to their Practitioner. */
async function parties(ctx: FhirContext, q: Queryable, appointment: Appointment): Promise<Party[]> {
  const out: Party[] = [];
  for (const participant of appointment.participant ?? []) {
    const ref = localReference(participant.actor?.reference, ctx.settings.fhirBaseUrl);
    if (ref?.type === 'Patient') out.push({ participant, key: `Patient/${ref.id}`, kind: 'patient' });
    else if (ref?.type === 'Practitioner' || ref?.type === 'PractitionerRole') {
      const practitioner = await practitionerOf(ctx, q, `${ref.type}/${ref.id}`);
      if (practitioner) out.push({ participant, key: practitioner, kind: 'practitioner' });
    }
  }
  return out;
}

/** "Practitioner/<id>" of a Practitioner or PractitionerRole reference. */
async function practitionerOf(ctx: FhirContext, q: Queryable, ref: string): Promise<string | undefined> {
  const [type, id] = ref.split('/');
  if (type === 'Practitioner') return ref;
  const role = await readCurrent(q, 'PractitionerRole', id);
  const practitioner = localReference((role?.resource as { practitioner?: { reference?: string } } | undefined)?.practitioner?.reference, ctx.settings.fhirBaseUrl);
  return practitioner?.type === 'Practitioner' ? `Practitioner/${practitioner.id}` : undefined;
}

/** The caller as a participant key, if they are a patient or practitioner. */
function callerKey(ctx: FhirContext): string | undefined {
  return ctx.access.caller.fhirUser;
}

/** A system client writing Appointments everywhere (not a patient or a practitioner, whose access is their own). */
const isAdmin = (ctx: FhirContext) =>
  ctx.access.caller.kind !== 'patient' && ctx.access.caller.kind !== 'practitioner' && writesEverywhere(ctx.access, 'update', 'Appointment');

async function book(ctx: FhirContext, q: Queryable, event: WriteEvent, next: Appointment, settings: SchedulingSettings): Promise<void> {
  const id = event.id;
  const who = await parties(ctx, q, next);
  if (!next.slot?.length) {
    // An Appointment without a Slot (an EHR's record of one): no booking, but a live one still holds its time.
    if (LIVE.has(next.status) && next.start && next.end) await holdTime(ctx, q, id, who, next.start, next.end);
    return;
  }
  if (next.slot.length > 1) throw unprocessable('A booking takes one Slot', 'Appointment.slot');
  if (next.status !== 'pending' && isAdmin(ctx)) {
    // An admin importing an agenda (Appointments already booked or past): no booking, but a live one still
    // holds its Slot and its time.
    if (LIVE.has(next.status) && next.start && next.end) {
      const ref = localReference(next.slot[0].reference, ctx.settings.fhirBaseUrl);
      await holdTime(ctx, q, id, who, next.start, next.end, { slotId: ref?.type === 'Slot' ? ref.id : undefined });
    }
    return;
  }
  if (next.status !== 'pending') throw unprocessable(`A booking is created pending (the doctor answers it), not ${next.status}`, 'Appointment.status');
  const slotRef = localReference(next.slot[0].reference, ctx.settings.fhirBaseUrl);
  if (slotRef?.type !== 'Slot') throw unprocessable('Appointment.slot must refer to a Slot on this server', 'Appointment.slot[0]');
  // One round trip: the Slot, its Schedule and the Schedule's actors, and whether the caller's own Patient exists.
  // No lock: the booking's one write statement takes the Slot only if it is still this version (bookingWrite.ts).
  const caller = callerKey(ctx);
  const own = ctx.access.caller.kind === 'patient' && caller ? localReference(caller, ctx.settings.fhirBaseUrl) : undefined;
  const read = await readWithReferenced(q, 'Slot', slotRef.id, ['schedule', 'actor'], own && { type: own.type, id: own.id });
  const slot = read.current;
  if (!slot || slot.deleted || !slot.resource) throw unprocessable(`Slot/${slotRef.id} does not exist`, 'Appointment.slot[0]');
  const slotContent = slot.resource as Slot;
  if (slotContent.status !== 'free') throw conflict(`Slot/${slot.id} is not free (${slotContent.status})`);
  if (Date.parse(slotContent.start) <= Date.now()) throw unprocessable(`Slot/${slot.id} has already started`, 'Appointment.slot[0]');

  const patients = who.filter((p) => p.kind === 'patient');
  const practitioners = who.filter((p) => p.kind === 'practitioner');
  if (patients.length !== 1) throw unprocessable('A booking has one Patient participant', 'Appointment.participant');
  if (ctx.access.caller.kind === 'patient' && caller !== patients[0].key) throw forbidden('A patient books only for themself');
  const doctors = await scheduleActors(ctx, q, await scheduleOf(ctx, q, slotContent, read.followed));
  if (practitioners.length === 0 || practitioners.some((p) => !doctors.has(p.key))) {
    throw unprocessable(`The practitioner taking part must be the one whose Schedule holds Slot/${slot.id}`, 'Appointment.participant');
  }
  // What this booking has just read need not be looked up again by the referential-integrity check: the Slot,
  // the practitioners of its Schedule (public), and the patient who books for themself (their own record). A
  // patient booked by someone else is checked as usual, under the caller's access.
  const verified = new Set([`Slot/${slot.id}`, ...read.existing, ...read.followed.map((v) => `${v.resourceType}/${v.id}`)]);
  event.verifiedTargets = verified;
  if (patients[0].participant.status !== 'accepted') throw unprocessable("The Patient's participant status is accepted when booking", 'Appointment.participant');
  if (practitioners.some((p) => p.participant.status !== 'needs-action')) {
    throw unprocessable("The Practitioner's participant status is needs-action until they answer", 'Appointment.participant');
  }

  const minutes = next.minutesDuration ?? DEFAULT_MINUTES;
  if (!Number.isInteger(minutes) || minutes < 1 || minutes > 24 * 60) throw unprocessable('minutesDuration must be 1 to 1440', 'Appointment.minutesDuration');
  const start = new Date(Date.parse(slotContent.start));
  const end = new Date(start.getTime() + minutes * 60_000);
  next.start = slotContent.start;
  next.minutesDuration = minutes;
  next.end = end.toISOString();
  next.extension = [...(next.extension ?? []).filter((e) => e.url !== VIRTUAL_SERVICE), videoRoom(settings)];

  const rows: OutboxRow[] = [{ kind: 'mail.booking-requested', payload: { appointment: id } }];
  if (start.getTime() - 24 * HOUR > Date.now()) rows.push({ kind: 'mail.reminder', payload: { appointment: id }, dueAt: new Date(start.getTime() - 24 * HOUR) });
  const actors = [...new Set(who.map((p) => p.key))].sort();
  const period = { start: start.toISOString(), end: end.toISOString() };
  // The Slot (busy-tentative), the Appointment, the holds and the outbox rows: one statement, written by
  // storeVersion once the Appointment is validated and its references checked.
  event.write = async (version) => {
    const slotVersionId = slot.versionId + 1;
    const slotNext = withMeta({ ...slotContent, status: 'busy-tentative' }, slot.id, slotVersionId, version.lastUpdated);
    try {
      const written = await writeBooking(
        q,
        {
          slot: { resourceType: 'Slot', id: slot.id, versionId: slotVersionId, lastUpdated: version.lastUpdated, method: 'PUT', resource: slotNext, previous: slotContent },
          appointment: version as NewVersion & { resource: Appointment },
          actors,
          // Inside a transaction Bundle the constraints alone decide (see holdTime)
          lockActors: ctx.tx ? [] : actors,
          start: period.start,
          end: period.end,
          outbox: rows,
        },
        ctx.settings.fhirBaseUrl,
      );
      if (written) return true;
    } catch (err) {
      if (!isConstraintViolation(err)) throw err;
      if ((err as { constraint?: string }).constraint === 'slot_hold_pkey') throw conflict(`Slot/${slot.id} is already booked`);
      // The statement (and, in a Bundle, its transaction) is void: name the clash from outside it, where that is
      // possible (PGlite's one connection is the Bundle's).
      throw ctx.tx ? conflict('A participant already has another Appointment at that time') : await clash(ctx, ctx.db, id, actors, period);
    }
    // The Slot changed after it was read: taken, freed again, blocked or deleted by someone else meanwhile.
    const now = await readCurrent(q, 'Slot', slot.id);
    if (!now || now.deleted || !now.resource) throw conflict(`Slot/${slot.id} was deleted`);
    const status = (now.resource as Slot).status;
    throw status === 'free' ? conflict(`Slot/${slot.id} was changed while it was booked; retry`) : conflict(`Slot/${slot.id} is not free (${status})`);
  };
}

/** The 409 naming the live Appointment a participant already holds at that time (when the caller may read it). */
async function clash(ctx: FhirContext, q: Queryable, id: string, actors: string[], period: { start: string; end: string }): Promise<Error> {
  const found = await q.query<{ appointment_id: string; actor: string }>(
    `SELECT appointment_id, actor FROM appointment_hold
      WHERE actor = ANY($1::text[]) AND period && tstzrange($2::timestamptz, $3::timestamptz) AND appointment_id <> $4 ORDER BY actor LIMIT 1`,
    [actors, period.start, period.end, id],
    'appointment_hold_clash',
  );
  const other = found.rows[0];
  if (!other) return conflict('A participant already has another Appointment at that time');
  const named = (await nameVisible(ctx.access, q, [`Appointment/${other.appointment_id}`])).visible.length > 0 ? `Appointment/${other.appointment_id}` : 'another Appointment';
  return conflict(`${other.actor} already has ${named} at that time`);
}

/**
 * The consultation room: https://hl7.org/fhir/5.0/StructureDefinition/extension-Appointment.virtualService with
 * `addressUrl` under VIDEO_BASE_URL. 144 random bits: a room is found by whoever reads the Appointment, not by
 * guessing.
 */
function videoRoom(settings: SchedulingSettings): Extension {
  const room = `healthmed-${randomBytes(18).toString('base64url')}`;
  return { url: VIRTUAL_SERVICE, extension: [{ url: 'addressUrl', valueUrl: `${settings.videoBaseUrl}/${room}` }] };
}

/** The Slot's Schedule: the one read with it when its reference names it, else read now. */
async function scheduleOf(ctx: FhirContext, q: Queryable, slot: Slot, followed: StoredVersion[]): Promise<StoredVersion | undefined> {
  const ref = localReference(slot.schedule?.reference, ctx.settings.fhirBaseUrl);
  if (ref?.type !== 'Schedule') return undefined;
  return followed.find((v) => v.resourceType === 'Schedule' && v.id === ref.id) ?? (await readCurrent(q, 'Schedule', ref.id));
}

/** "Practitioner/<id>" of every actor of the Schedule. */
async function scheduleActors(ctx: FhirContext, q: Queryable, schedule: StoredVersion | undefined): Promise<Set<string>> {
  const out = new Set<string>();
  for (const actor of (schedule?.resource as { actor?: { reference?: string }[] } | undefined)?.actor ?? []) {
    const a = localReference(actor.reference, ctx.settings.fhirBaseUrl);
    if (a?.type === 'Practitioner' || a?.type === 'PractitionerRole') {
      const practitioner = await practitionerOf(ctx, q, `${a.type}/${a.id}`);
      if (practitioner) out.add(practitioner);
    }
  }
  return out;
}

/**
 * Holds the participants' time (and the Slot, and writes the booking's outbox rows) in one statement: the
 * per-participant locks first, then every row at once. No participant holds two live Appointments at once: 409
 * naming the other one when the caller may read it; the constraints decide, whatever the race.
 */
async function holdTime(
  ctx: FhirContext,
  q: Queryable,
  id: string,
  who: Party[],
  start: string,
  end: string,
  also: { slotId?: string; outbox?: OutboxRow[] } = {},
): Promise<void> {
  const actors = [...new Set(who.map((p) => p.key))].sort();
  const period = [new Date(Date.parse(start)).toISOString(), new Date(Date.parse(end)).toISOString()];
  if (!(Date.parse(period[1]) > Date.parse(period[0]))) throw unprocessable('An Appointment must end after it starts', 'Appointment.end');
  // One booking at a time per participant, locked in one order before any row is inserted (the materialized CTE
  // is the inserts' one-time filter): two bookings of one doctor's overlapping Slots would otherwise each wait on
  // the other's uncommitted hold (the exclusion constraint) and deadlock. A hold that conflicts with a committed
  // one is not inserted (ON CONFLICT DO NOTHING, which exclusion constraints honour) and the clash is named below.
  // Inside a transaction Bundle that books several Appointments, locks taken booking by booking would not be in
  // one global order (two such Bundles could deadlock on them): there the constraints alone decide, and a
  // deadlock between overlapping Bundles is a 409 to retry (src/http/errors.ts).
  const lockActors = ctx.tx ? [] : actors;
  const rows = also.outbox ?? [];
  const r = await q.query<{ slot_held: number; actors_held: number }>(
    `WITH ${participantLocks('$9')},
     slot AS (INSERT INTO slot_hold (slot_id, appointment_id) SELECT $5::text, $1 WHERE $5::text IS NOT NULL AND (SELECT count(*) FROM locks) >= 0
              ON CONFLICT DO NOTHING RETURNING 1),
     held AS (INSERT INTO appointment_hold (appointment_id, actor, period)
              SELECT $1, actor, tstzrange($3::timestamptz, $4::timestamptz) FROM unnest($2::text[]) WITH ORDINALITY AS a(actor, n)
               WHERE (SELECT count(*) FROM locks) >= 0 ORDER BY n
              ON CONFLICT DO NOTHING RETURNING 1),
     outbox AS (INSERT INTO outbox (kind, payload, due_at) SELECT kind, payload, COALESCE(due_at, now())
                  FROM unnest($6::text[], $7::jsonb[], $8::timestamptz[]) AS r(kind, payload, due_at))
     SELECT (SELECT count(*) FROM slot)::int AS slot_held, (SELECT count(*) FROM held)::int AS actors_held`,
    [
      id,
      actors,
      period[0],
      period[1],
      also.slotId ?? null,
      rows.map((r) => r.kind),
      rows.map((r) => JSON.stringify(r.payload)),
      rows.map((r) => r.dueAt?.toISOString() ?? null),
      lockActors,
    ],
    'appointment_hold',
  );
  const { slot_held: slotHeld, actors_held: actorsHeld } = r.rows[0];
  if (also.slotId && slotHeld === 0) throw conflict(`Slot/${also.slotId} is already booked`);
  if (actorsHeld < actors.length) throw await clash(ctx, q, id, actors, { start: period[0], end: period[1] });
}

async function release(q: Queryable, appointmentId: string): Promise<void> {
  await q.query(
    'WITH slot AS (DELETE FROM slot_hold WHERE appointment_id = $1) DELETE FROM appointment_hold WHERE appointment_id = $1',
    [appointmentId],
    'appointment_release',
  );
}

/** The workflow's own write of the Slot (the Slot's rules let it through: src/workflows/scheduling/slots.ts). */
async function setSlotStatus(ctx: FhirContext, q: Queryable, slot: StoredVersion, status: Slot['status']): Promise<void> {
  const resource = { ...(slot.resource as Slot), status };
  await storeVersion({ ...ctx, byWorkflow: true }, q, { resourceType: 'Slot', id: slot.id, versionId: slot.versionId + 1, method: 'PUT', resource }, slot.resource);
}

async function slotOf(ctx: FhirContext, q: Queryable, appointment: Appointment): Promise<StoredVersion | undefined> {
  const ref = localReference(appointment.slot?.[0]?.reference, ctx.settings.fhirBaseUrl);
  if (ref?.type !== 'Slot') return undefined;
  const slot = await readCurrent(q, 'Slot', ref.id, { forUpdate: true });
  return slot && !slot.deleted ? slot : undefined;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

async function transition(ctx: FhirContext, q: Queryable, id: string, previous: Appointment, next: Appointment): Promise<void> {
  const from = previous.status;
  const to = next.status;
  // The room is the server's: kept as booked, whatever the client sends.
  const room = previous.extension?.filter((e) => e.url === VIRTUAL_SERVICE) ?? [];
  next.extension = [...(next.extension ?? []).filter((e) => e.url !== VIRTUAL_SERVICE), ...room];
  if (next.extension.length === 0) delete next.extension;

  if (!same(previous.slot, next.slot) || !same(previous.start, next.start) || !same(previous.end, next.end) || !same(previous.minutesDuration, next.minutesDuration)) {
    throw unprocessable('The Slot, start, end and minutesDuration of an Appointment do not change: cancel it and book another Slot', 'Appointment');
  }
  const before = await parties(ctx, q, previous);
  const after = await parties(ctx, q, next);
  if (!same(before.map((p) => p.key), after.map((p) => p.key)) || (previous.participant?.length ?? 0) !== (next.participant?.length ?? 0)) {
    throw unprocessable('The participants of an Appointment do not change', 'Appointment.participant');
  }
  const caller = callerKey(ctx);
  const admin = isAdmin(ctx);
  const changed = after.filter((p, i) => p.participant.status !== before[i].participant.status);
  for (const p of changed) {
    if (!admin && caller !== p.key) throw forbidden(`Only ${p.key} answers for themself in this Appointment`);
  }
  const doctor = changed.find((p) => p.kind === 'practitioner');
  const rows: OutboxRow[] = [];

  if (doctor && from === 'pending' && doctor.participant.status === 'accepted' && (to === 'pending' || to === 'booked') && changed.length === 1) {
    next.status = 'booked';
    const slot = await slotOf(ctx, q, next);
    if (slot) await setSlotStatus(ctx, q, slot, 'busy');
    rows.push({ kind: 'mail.booking-answered', payload: { appointment: id, answer: 'accepted' } });
  } else if (doctor && from === 'pending' && doctor.participant.status === 'declined' && (to === 'pending' || to === 'cancelled') && changed.length === 1) {
    next.status = 'cancelled';
    await freeSlot(ctx, q, id, next);
    rows.push({ kind: 'mail.booking-answered', payload: { appointment: id, answer: 'declined' } });
  } else if (to === 'cancelled' && LIVE.has(from) && changed.length === 0) {
    if (!admin && !after.some((p) => p.key === caller)) throw forbidden('Only a participant cancels an Appointment');
    if (!next.cancelationReason?.text?.trim()) {
      throw unprocessable('Cancelling needs a written justification in cancelationReason.text', 'Appointment.cancelationReason.text');
    }
    if (previous.start && Date.parse(previous.start) <= Date.now()) throw unprocessable('The consultation has already started: it can no longer be cancelled', 'Appointment.status');
    await freeSlot(ctx, q, id, next);
    // The one who cancelled is not told what they did
    const by = after.some((p) => p.key === caller) ? caller : undefined;
    rows.push({ kind: 'mail.appointment-cancelled', payload: by ? { appointment: id, by } : { appointment: id } });
  } else if (AFTER.has(to) && (from === 'booked' || (AFTER.has(from) && from !== 'fulfilled' && from !== 'noshow')) && changed.length === 0) {
    // The consultation happened (or not): the practitioner or an admin records it; the time is no longer held.
    if (!admin && !after.some((p) => p.kind === 'practitioner' && p.key === caller)) throw forbidden(`Only the practitioner records that an Appointment is ${to}`);
    await release(q, id);
  } else if (from !== to || changed.length > 0) {
    throw unprocessable(`An Appointment cannot go from ${from} to ${to}${changed.length > 0 ? ' with this participant answer' : ''}`, 'Appointment.status');
  }
  await enqueue(q, rows);
}

/** Frees the Slot of a cancelled or declined booking, and the participants' time. */
async function freeSlot(ctx: FhirContext, q: Queryable, id: string, appointment: Appointment): Promise<void> {
  await release(q, id);
  const slot = await slotOf(ctx, q, appointment);
  if (slot && (slot.resource as Slot).status !== 'free') await setSlotStatus(ctx, q, slot, 'free');
}
