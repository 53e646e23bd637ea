/**
 * Free Slots materialized from a Schedule's availability rules (availability.ts), and the rolling window that
 * keeps them `planningHorizon` (default 60 days) ahead as days pass (https://hl7.org/fhir/R4/schedule.html,
 * https://hl7.org/fhir/R4/slot.html).
 *
 * Idempotent and safe under concurrency: a generation first takes a transaction-scoped lock on its Schedule, then
 * skips every time that overlaps a Slot the Schedule already has (slot_period, kept by the Slot workflow in
 * slots.ts), in one set query. Running it twice, or on two servers at once, creates nothing twice; the exclusion
 * constraint on slot_period is the last guard. Slots are written through storeVersion, as a workflow's own writes
 * (`byWorkflow`), inside the caller's transaction, so each one passes through the Slot workflow.
 */
import type { Schedule, Slot } from '@medplum/fhirtypes';
import { DateTime } from 'luxon';
import { systemContext } from '../../access/context';
import type { FhirContext, FhirServices } from '../../fhir/context';
import { runDeferredChecks, storeVersion } from '../../fhir/interactions/write';
import { OperationOutcomeError, outcome } from '../../fhir/outcomes';
import { newResourceId } from '../../fhir/resources';
import type { Queryable } from '../../storage/database';
import { readCurrent, type StoredVersion } from '../../storage/repository';
import { enqueue } from '../outbox/enqueue';
import { DEFAULT_TIME_ZONE, activeRules, slotTimes, type AvailabilityRule, type SlotTime } from './availability';

/** The outbox kind of the daily extension of one Schedule's window; payload `{ schedule: id }`. */
export const EXTEND_HORIZON_KIND = 'schedule.extend-horizon';
export const DEFAULT_HORIZON_DAYS = 60;
/** The longest window one generation covers (the operation's `end - start`, a planningHorizon far ahead). */
export const MAX_WINDOW_DAYS = 366;
/** Past this many new Slots in one generation the request is refused: it would hold a transaction for long. */
export const MAX_NEW_SLOTS = 5000;
export const DAY_MS = 86_400_000;

export interface Window {
  from: Date;
  to: Date;
}

/** Serializes the generations (and rule changes) of one Schedule until the transaction ends, across servers. */
export async function lockSchedule(q: Queryable, scheduleId: string): Promise<void> {
  await q.query(`SELECT pg_advisory_xact_lock(hashtext('schedule:' || $1))`, [scheduleId]);
}

/**
 * The window the server keeps materialized: from now (or planningHorizon.start, if later) to planningHorizon.end
 * (inclusive, https://hl7.org/fhir/R4/datatypes.html#Period), or DEFAULT_HORIZON_DAYS ahead without one; never
 * more than MAX_WINDOW_DAYS. A date without a time is read in the Schedule's zone (its first rule's).
 */
export function horizonWindow(schedule: Schedule, now: Date): Window {
  const zone = rulesOrNone(schedule)[0]?.timeZone ?? DEFAULT_TIME_ZONE;
  const start = periodBound(schedule.planningHorizon?.start, zone, false);
  const end = periodBound(schedule.planningHorizon?.end, zone, true);
  const from = start && start > now ? start : now;
  const limit = new Date(from.getTime() + MAX_WINDOW_DAYS * DAY_MS);
  const to = end ?? new Date(now.getTime() + DEFAULT_HORIZON_DAYS * DAY_MS);
  return { from, to: to < limit ? to : limit };
}

/** A Period bound as an instant; an end given to the day (or month, or year) includes all of it. */
function periodBound(value: string | undefined, zone: string, end: boolean): Date | undefined {
  if (!value) return undefined;
  const t = DateTime.fromISO(value, { zone });
  if (!t.isValid) return undefined;
  const whole = value.length <= 4 ? { years: 1 } : value.length <= 7 ? { months: 1 } : value.length <= 10 ? { days: 1 } : undefined;
  return (end && whole ? t.plus(whole) : t).toJSDate();
}

/** A workflow's own writes, with their referential-integrity checks run together at the end (one query). */
function workflowWrites(ctx: FhirContext): { ctx: FhirContext; finish(q: Queryable): Promise<void> } {
  if (ctx.deferred) return { ctx: { ...ctx, byWorkflow: true }, finish: async () => {} };
  const inner: FhirContext = { ...ctx, byWorkflow: true, deferred: { references: new Map(), deletes: new Set() } };
  return { ctx: inner, finish: (q) => runDeferredChecks(inner, q) };
}

/**
 * Creates the free Slots the rules make in the window that the Schedule does not have yet (none overlapping one
 * it has). The caller holds lockSchedule. Returns the Slots created.
 */
export async function generateSlots(ctx: FhirContext, q: Queryable, scheduleId: string, rules: AvailabilityRule[], window: Window): Promise<StoredVersion[]> {
  if (rules.length === 0 || window.to <= window.from) return [];
  const candidates = slotTimes(rules, window.from, window.to);
  if (candidates.length === 0) return [];
  const free = await q.query<{ i: number }>(
    `SELECT c.i::int AS i FROM unnest($2::timestamptz[], $3::timestamptz[]) WITH ORDINALITY AS c(s, e, i)
      WHERE NOT EXISTS (SELECT 1 FROM slot_period p WHERE p.schedule_id = $1 AND p.period && tstzrange(c.s, c.e))
      ORDER BY c.i`,
    [scheduleId, candidates.map((c) => c.start), candidates.map((c) => c.end)],
  );
  const missing = free.rows.map((r) => candidates[Number(r.i) - 1]);
  if (missing.length > MAX_NEW_SLOTS) {
    throw new OperationOutcomeError(
      400,
      outcome(
        'error',
        'too-costly',
        `The availability rules make ${missing.length} new Slots between ${window.from.toISOString()} and ${window.to.toISOString()}; ` +
          `at most ${MAX_NEW_SLOTS} are made at once: ask for a shorter window (a nearer planningHorizon.end, or $generate-slots in parts)`,
      ),
    );
  }
  const writes = workflowWrites(ctx);
  const created: StoredVersion[] = [];
  for (const time of missing) {
    created.push(await storeVersion(writes.ctx, q, { resourceType: 'Slot', id: newResourceId(), versionId: 1, method: 'POST', resource: freeSlot(scheduleId, time) }));
  }
  await writes.finish(q);
  return created;
}

function freeSlot(scheduleId: string, time: SlotTime): Slot {
  return { resourceType: 'Slot', schedule: { reference: `Schedule/${scheduleId}` }, status: 'free', start: time.start, end: time.end };
}

/** A Slot of the Schedule as the rules see it. */
interface ExistingSlot {
  id: string;
  versionId: number;
  start: number;
  end: number;
  status: string;
  /** A live Appointment holds it (slot_hold). */
  held: boolean;
  resource: Slot;
}

/** The Schedule's Slots starting in [from, to) (to: unbounded when undefined), with their bookings. */
async function slotsOf(q: Queryable, scheduleId: string, from: Date, to?: Date): Promise<ExistingSlot[]> {
  const r = await q.query<{ id: string; version_id: string | number; start_ms: number | string; end_ms: number | string; content: Slot | string; held: boolean }>(
    `SELECT p.slot_id AS id, r.version_id, r.content,
            (extract(epoch FROM lower(p.period)) * 1000)::float8 AS start_ms,
            (extract(epoch FROM upper(p.period)) * 1000)::float8 AS end_ms,
            EXISTS (SELECT 1 FROM slot_hold h WHERE h.slot_id = p.slot_id) AS held
       FROM slot_period p
       JOIN resources r ON r.resource_type = 'Slot' AND r.id = p.slot_id AND NOT r.deleted
      WHERE p.schedule_id = $1 AND lower(p.period) >= $2::timestamptz AND ($3::timestamptz IS NULL OR lower(p.period) < $3::timestamptz)
      ORDER BY lower(p.period)`,
    [scheduleId, from.toISOString(), to?.toISOString() ?? null],
  );
  return r.rows.map((row) => {
    const resource = (typeof row.content === 'string' ? JSON.parse(row.content) : row.content) as Slot;
    return { id: row.id, versionId: Number(row.version_id), start: Number(row.start_ms), end: Number(row.end_ms), status: resource.status, held: row.held, resource };
  });
}

/** Booked: a live Appointment holds it, or its status says a booking has it (https://hl7.org/fhir/R4/valueset-slotstatus.html). */
const isBooked = (s: ExistingSlot) => s.held || s.status === 'busy' || s.status === 'busy-tentative';

/** Whether the rules make exactly this Slot. */
function fitter(rules: AvailabilityRule[], slots: ExistingSlot[]): (s: ExistingSlot) => boolean {
  if (slots.length === 0) return () => false;
  const from = new Date(slots[0].start);
  const to = new Date(slots.reduce((latest, s) => Math.max(latest, s.start), 0) + 1);
  const made = new Set(slotTimes(rules, from, to).map((t) => `${Date.parse(t.start)}/${Date.parse(t.end)}`));
  return (s) => made.has(`${s.start}/${s.end}`);
}

/** A booked Slot the rules no longer make. */
export interface SlotOutside {
  id: string;
  start: string;
  end: string;
}

const outsideRef = (s: ExistingSlot): SlotOutside => ({ id: s.id, start: s.resource.start, end: s.resource.end });

/** Booked Slots of the Schedule starting in the window that the rules no longer make: kept, and reported. */
export async function bookedOutsideRules(q: Queryable, scheduleId: string, rules: AvailabilityRule[], window: Window): Promise<SlotOutside[]> {
  const slots = (await slotsOf(q, scheduleId, window.from, window.to)).filter(isBooked);
  const fits = fitter(rules, slots);
  return slots.filter((s) => !fits(s)).map(outsideRef);
}

export interface Replacement {
  /** Free Slots deleted (or, when other resources still reference them, withdrawn as entered-in-error). */
  removed: string[];
  /** Booked Slots the rules no longer make: left as they are. */
  bookedOutside: SlotOutside[];
}

/**
 * After the rules changed: the Schedule's future free Slots that the rules no longer make go away. A Slot that
 * started already, a booked one (kept and reported) and a blocked one (`busy-unavailable`, the doctor's own) stay.
 * A free Slot that other resources reference (a cancelled Appointment keeps naming its Slot) cannot be deleted
 * under referential integrity: it becomes `entered-in-error`, which takes no time and cannot be booked.
 * The caller holds lockSchedule.
 */
export async function removeOutsideRules(ctx: FhirContext, q: Queryable, scheduleId: string, rules: AvailabilityRule[], now: Date): Promise<Replacement> {
  const slots = await slotsOf(q, scheduleId, now);
  const fits = fitter(rules, slots);
  const outside = slots.filter((s) => !fits(s));
  const free = outside.filter((s) => !isBooked(s) && s.status === 'free');
  const referenced = await referencedSlots(ctx, q, free.map((s) => s.id));
  const writes = workflowWrites(ctx);
  for (const s of free) {
    const v = { resourceType: 'Slot', id: s.id, versionId: s.versionId + 1 };
    if (referenced.has(s.id)) await storeVersion(writes.ctx, q, { ...v, method: 'PUT', resource: { ...s.resource, status: 'entered-in-error' } }, s.resource);
    else await storeVersion(writes.ctx, q, { ...v, method: 'DELETE' }, s.resource);
  }
  await writes.finish(q);
  return { removed: free.map((s) => s.id), bookedOutside: outside.filter(isBooked).map(outsideRef) };
}

/** Of these Slots, those other resources reference (when deletes are refused for referenced resources). */
async function referencedSlots(ctx: FhirContext, q: Queryable, ids: string[]): Promise<Set<string>> {
  if (ids.length === 0 || !ctx.settings.enforceReferentialIntegrityOnDelete) return new Set();
  const r = await q.query<{ target_id: string }>(
    `SELECT DISTINCT target_id FROM resource_references
      WHERE target_type = 'Slot' AND target_id = ANY($1::text[]) AND NOT (resource_type = 'Slot' AND resource_id = target_id)`,
    [ids],
  );
  return new Set(r.rows.map((row) => row.target_id));
}

/** The rules of a stored Schedule; none when they cannot be used (stored before they were checked). */
export function rulesOrNone(schedule: Schedule): AvailabilityRule[] {
  try {
    return activeRules(schedule);
  } catch (err) {
    if (err instanceof OperationOutcomeError) return [];
    throw err;
  }
}

/** The next extension of a Schedule's window, a day from now: it makes what lies past `through`. */
function extension(scheduleId: string, through: Date, now: Date) {
  return { kind: EXTEND_HORIZON_KIND, payload: { schedule: scheduleId, through: through.toISOString() }, dueAt: new Date(now.getTime() + DAY_MS) };
}

/** Starts the daily extension of a Schedule's window (made through `through`), unless one is pending already. */
export async function startExtending(q: Queryable, scheduleId: string, through: Date, now: Date): Promise<void> {
  const pending = await q.query(`SELECT 1 FROM outbox WHERE kind = $1 AND state = 'pending' AND payload->>'schedule' = $2 LIMIT 1`, [EXTEND_HORIZON_KIND, scheduleId]);
  if (pending.rows.length > 0) return;
  await enqueue(q, [extension(scheduleId, through, now)]);
}

/**
 * The outbox handler of EXTEND_HORIZON_KIND (payload `{ schedule: id, through?: instant }`): as the server itself,
 * makes the Slots of the Schedule's window that lie past `through` (what the previous run made), and comes back in a
 * day. Only the new part of the window: a free Slot the doctor deleted inside it is not made again. The chain
 * ends when the Schedule is deleted or has no rules left; the Schedule workflow starts it again when rules come
 * back (schedule.ts).
 */
export function extendHorizonHandler(services: FhirServices): (payload: Record<string, unknown>) => Promise<void> {
  return async (payload) => {
    const id = payload.schedule;
    if (typeof id !== 'string') return;
    const through = typeof payload.through === 'string' ? new Date(payload.through) : undefined;
    const ctx: FhirContext = { ...services, access: systemContext() };
    await services.db.transaction(async (q) => {
      await lockSchedule(q, id);
      const current = await readCurrent(q, 'Schedule', id);
      if (!current?.resource) return;
      const schedule = current.resource as Schedule;
      const rules = rulesOrNone(schedule);
      if (rules.length === 0) return;
      const now = new Date();
      const window = horizonWindow(schedule, now);
      if (through && through > window.from) window.from = through;
      await generateSlots(ctx, q, id, rules, window);
      await enqueue(q, [extension(id, window.to > window.from ? window.to : window.from, now)]);
    });
  };
}
