/**
 * A booking's writes in one statement (issue 12): the Slot's new version (only if it is still the version the
 * booking read: optimistic, no row lock held across round trips), the Appointment's first version, both with
 * their history and index rows, the participants' holds and the Slot's hold (migrations/0008_scheduling.sql),
 * and the booking's outbox rows. One statement is one atomic transaction on its own: nothing is half-written, and
 * a conflict any constraint finds (two live Appointments of one participant overlapping, a Slot held twice)
 * aborts all of it with the driver's error (23P01, 23505), which the caller names.
 *
 * The per-participant advisory locks come first (the inserts' one-time filter): two bookings of overlapping times
 * of one participant wait for each other instead of deadlocking on each other's uncommitted holds.
 */
import type { Resource } from '@medplum/fhirtypes';
import type { Queryable } from './database';
import { indexCtes, insertIndexCtes } from './indexWrite';
import { cachedStatement, COLUMNS, type NewVersion } from './repository';

/**
 * The CTE `locks` that takes the per-participant advisory locks of the actors in the array parameter `param`, in one
 * order; a statement makes its inserts wait for it with `(SELECT count(*) FROM locks) >= 0`.
 */
export const participantLocks = (param: string) => `locks AS MATERIALIZED (
       SELECT pg_advisory_xact_lock(k) FROM (SELECT hashtext('appointment-hold:' || a) AS k FROM unnest(${param}::text[]) AS a ORDER BY 1 OFFSET 0) AS l
     )`;

export interface BookingWrite {
  /** The Slot's next version (versionId = the read one + 1) and the content it replaces. */
  slot: NewVersion & { resource: Resource; previous: Resource };
  /** The Appointment's first version. */
  appointment: NewVersion & { resource: Resource };
  /** "Patient/<id>" and "Practitioner/<id>" taking part, and those to lock (none inside a Bundle). */
  actors: string[];
  lockActors: string[];
  start: string;
  end: string;
  outbox: { kind: string; payload: unknown; dueAt?: Date }[];
}

/** Whether the Slot was still the version read (else nothing was written). Throws what a constraint raised. */
export async function writeBooking(q: Queryable, w: BookingWrite, fhirBaseUrl: string): Promise<boolean> {
  // $1..$14 below; the Slot's index CTEs from $15, the Appointment's after them
  const slotIndex = indexCtes(w.slot.resource, fhirBaseUrl, 15, w.slot.previous, { cur: 's_cur', type: "'Slot'", id: '$1', prefix: 's_' });
  const apptIndex = insertIndexCtes([w.appointment.resource], fhirBaseUrl, 15 + slotIndex.params.length);
  const statement = cachedStatement(`booking/${slotIndex.shape}/${apptIndex.shape}`, () => `WITH ${participantLocks('$9')}
     , s_cur AS (
       UPDATE resources SET version_id = $2, last_updated = $3, content = $4::jsonb
        WHERE resource_type = 'Slot' AND id = $1 AND version_id = $2::bigint - 1 AND NOT deleted AND (SELECT count(*) FROM locks) >= 0
       RETURNING resource_type, id, content)
     , s_hist AS (INSERT INTO resource_history (${COLUMNS}, method) SELECT 'Slot', $1, $2, $3, false, s_cur.content, 'PUT' FROM s_cur)
     ${slotIndex.ctes}
     , held AS (INSERT INTO appointment_hold (appointment_id, actor, period)
                SELECT $5, actor, tstzrange($7::timestamptz, $8::timestamptz) FROM unnest($6::text[]) WITH ORDINALITY AS a(actor, n)
                 WHERE EXISTS (SELECT 1 FROM s_cur) ORDER BY n)
     , slot_held AS (INSERT INTO slot_hold (slot_id, appointment_id) SELECT $1, $5 WHERE EXISTS (SELECT 1 FROM s_cur))
     , mail AS (INSERT INTO outbox (kind, payload, due_at) SELECT kind, payload, COALESCE(due_at, now())
                  FROM unnest($10::text[], $11::jsonb[], $12::timestamptz[]) AS r(kind, payload, due_at) WHERE EXISTS (SELECT 1 FROM s_cur))
     , cur AS (
       INSERT INTO resources (${COLUMNS}) SELECT 'Appointment', $5, 1, $13, false, $14::jsonb WHERE EXISTS (SELECT 1 FROM s_cur)
       RETURNING resource_type, id, last_updated, content)
     , hist AS (INSERT INTO resource_history (${COLUMNS}, method) SELECT cur.resource_type, cur.id, 1, cur.last_updated, false, cur.content, 'POST' FROM cur)
     ${apptIndex.ctes}
     SELECT (SELECT count(*) FROM s_cur)::int AS slot, (SELECT count(*) FROM cur)::int AS appointment`);
  const r = await q.query<{ slot: number; appointment: number }>(
    statement.sql,
    [
      w.slot.id,
      w.slot.versionId,
      w.slot.lastUpdated,
      JSON.stringify(w.slot.resource),
      w.appointment.id,
      w.actors,
      w.start,
      w.end,
      w.lockActors,
      w.outbox.map((o) => o.kind),
      w.outbox.map((o) => JSON.stringify(o.payload)),
      w.outbox.map((o) => o.dueAt?.toISOString() ?? null),
      w.appointment.lastUpdated,
      JSON.stringify(w.appointment.resource),
      ...slotIndex.params,
      ...apptIndex.params,
    ],
    statement.name,
  );
  return r.rows[0]?.slot === 1 && r.rows[0]?.appointment === 1;
}
