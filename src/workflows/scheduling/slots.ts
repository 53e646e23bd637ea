/**
 * The rules of a Slot (CONTRACT section 5; https://hl7.org/fhir/R4/slot.html): two Slots of one Schedule never
 * overlap (409 naming the other one), and a Slot that holds a live Appointment is not deleted, moved or freed by
 * a client (409): only the booking workflow changes it. `busy-tentative` is the booking's own status: a client
 * does not set it. Who may write which Slot (the Schedule's actor, or an admin) is decided by access
 * (src/access/practitioner.ts) before this runs.
 * The database keeps the guarantee (slot_period's exclusion constraint, migrations/0008_scheduling.sql); the
 * queries here only name the other Slot in the answer.
 */
import type { Slot } from '@medplum/fhirtypes';
import type { FhirContext, WriteEvent } from '../../fhir/context';
import { conflict, unprocessable } from '../../fhir/outcomes';
import { localReference } from '../../access/compartment';
import { writesEverywhere } from '../../access/visible';
import type { Queryable } from '../../storage/database';
import type { TypeHook } from '..';
import { isConstraintViolation } from './constraints';

/** The Appointment holding the Slot, if any (a live booking). */
export async function appointmentHolding(q: Queryable, slotId: string): Promise<string | undefined> {
  const r = await q.query<{ appointment_id: string }>('SELECT appointment_id FROM slot_hold WHERE slot_id = $1', [slotId]);
  return r.rows[0]?.appointment_id;
}

export const slotHook: TypeHook = {
  async beforeWrite(ctx: FhirContext, q: Queryable, event: WriteEvent): Promise<void> {
    const previous = event.previous as Slot | undefined;
    const next = event.next as Slot | undefined;
    if (ctx.byWorkflow && previous && next && samePeriod(previous, next)) {
      // A booking changing the status of its own Slot: the time it takes is unchanged.
      return;
    }
    const heldBy = previous ? await appointmentHolding(q, event.id) : undefined;
    if (!next) {
      if (heldBy) throw conflict(`Slot/${event.id} is held by Appointment/${heldBy}: cancel the Appointment first`);
      await q.query('DELETE FROM slot_period WHERE slot_id = $1', [event.id]);
      return;
    }
    if (!ctx.byWorkflow) guardClientChange(ctx, event.id, previous, next, heldBy);
    await recordPeriod(ctx, q, event.id, next);
  },
};

/** Same time, same Schedule, and taking time before and after (not entered in error). */
function samePeriod(a: Slot, b: Slot): boolean {
  return a.start === b.start && a.end === b.end && a.schedule?.reference === b.schedule?.reference && a.status !== 'entered-in-error' && b.status !== 'entered-in-error';
}

/** What a client may not do to a Slot, whatever its access. */
function guardClientChange(ctx: FhirContext, id: string, previous: Slot | undefined, next: Slot, heldBy: string | undefined): void {
  if (heldBy && previous) {
    if (previous.start !== next.start || previous.end !== next.end || previous.schedule?.reference !== next.schedule?.reference) {
      throw conflict(`Slot/${id} is held by Appointment/${heldBy}: it cannot be moved`);
    }
    if (previous.status !== next.status) {
      throw conflict(`Slot/${id} is held by Appointment/${heldBy}: its status follows the Appointment (cancel or decline it to free the Slot)`);
    }
  }
  // busy-tentative means "a booking waits for the doctor's answer": only a booking sets it. An admin importing
  // an agenda from elsewhere may still write it.
  const admin = ctx.access.caller.kind !== 'patient' && ctx.access.caller.kind !== 'practitioner' && writesEverywhere(ctx.access, previous ? 'update' : 'create', 'Slot');
  if (next.status === 'busy-tentative' && previous?.status !== 'busy-tentative' && !admin) {
    throw unprocessable(`A Slot becomes busy-tentative when it is booked (POST Appointment), not by writing it`, 'Slot.status');
  }
}

/** Keeps slot_period in step with the Slot: a Slot entered in error takes no time. */
async function recordPeriod(ctx: FhirContext, q: Queryable, id: string, slot: Slot): Promise<void> {
  if (slot.status === 'entered-in-error') {
    await q.query('DELETE FROM slot_period WHERE slot_id = $1', [id]);
    return;
  }
  const schedule = localReference(slot.schedule?.reference, ctx.settings.fhirBaseUrl);
  if (schedule?.type !== 'Schedule') throw unprocessable('Slot.schedule must refer to a Schedule on this server', 'Slot.schedule');
  const start = Date.parse(slot.start ?? '');
  const end = Date.parse(slot.end ?? '');
  if (!(end > start)) throw unprocessable('A Slot must end after it starts', 'Slot.end');
  const period = [new Date(start).toISOString(), new Date(end).toISOString()];
  const other = await q.query<{ slot_id: string }>(
    `SELECT slot_id FROM slot_period WHERE schedule_id = $1 AND period && tstzrange($2::timestamptz, $3::timestamptz) AND slot_id <> $4 LIMIT 1`,
    [schedule.id, period[0], period[1], id],
  );
  if (other.rows[0]) throw conflict(`Slot/${id} would overlap Slot/${other.rows[0].slot_id} of Schedule/${schedule.id}`);
  try {
    await q.query(
      `INSERT INTO slot_period (slot_id, schedule_id, period) VALUES ($1, $2, tstzrange($3::timestamptz, $4::timestamptz))
       ON CONFLICT (slot_id) DO UPDATE SET schedule_id = EXCLUDED.schedule_id, period = EXCLUDED.period`,
      [id, schedule.id, period[0], period[1]],
    );
  } catch (err) {
    // A concurrent write took the time between the check and the insert: the constraint decided.
    if (isConstraintViolation(err)) throw conflict(`Slot/${id} would overlap another Slot of Schedule/${schedule.id}`);
    throw err;
  }
}
