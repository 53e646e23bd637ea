/**
 * The rules of a Schedule (https://hl7.org/fhir/R4/schedule.html; CONTRACT section 5): its availability rules
 * (availability.ts) must make sense (422), and its free Slots follow them.
 * - Created, or its rules (or planningHorizon, or `active`) changed: the future free Slots the rules no longer
 *   make go away and the missing ones are made up to the horizon (generate.ts). Booked Slots are never touched;
 *   those the new rules no longer make are listed as warnings in the answer (an OperationOutcome answer, asked
 *   for with `Prefer: return=OperationOutcome` (https://hl7.org/fhir/R4/http.html#ops), and a batch or
 *   transaction entry's `response.outcome`). From the first rules on, the outbox extends the window daily.
 * - Deleted: refused (409) while one of its Slots is booked; otherwise its future free Slots go with it.
 * Who may write the Schedule (its actor, or an admin) is decided by access before this runs.
 */
import type { OperationOutcomeIssue, Schedule } from '@medplum/fhirtypes';
import type { FhirContext, WriteEvent } from '../../fhir/context';
import { conflict } from '../../fhir/outcomes';
import type { Queryable } from '../../storage/database';
import type { TypeHook } from '..';
import { activeRules, rulesKey } from './availability';
import { generateSlots, horizonWindow, lockSchedule, removeOutsideRules, rulesOrNone, startExtending } from './generate';

export function scheduleHook(): TypeHook {
  return {
    async beforeWrite(ctx: FhirContext, q: Queryable, event: WriteEvent): Promise<void> {
      if (!event.next) return beforeDelete(ctx, q, event.id);
      // The structure first (the extension definition), so that the rules read here are well formed.
      ctx.validator.assertValid(event.next);
      activeRules(event.next as Schedule);
    },

    async afterWrite(ctx: FhirContext, q: Queryable, event: WriteEvent): Promise<void> {
      const next = event.next as Schedule | undefined;
      if (!next) return;
      const previous = event.previous as Schedule | undefined;
      const rules = activeRules(next);
      const before = previous ? rulesOrNone(previous) : [];
      if (previous ? rulesKey(before) === rulesKey(rules) && horizonKey(previous) === horizonKey(next) : rules.length === 0) return;
      const now = new Date();
      await lockSchedule(q, event.id);
      // Existing Slots first: the time a removed Slot frees may be taken by a new one.
      const replaced = await removeOutsideRules(ctx, q, event.id, rules, now);
      const window = horizonWindow(next, now);
      const created = await generateSlots(ctx, q, event.id, rules, window);
      if (rules.length > 0 && before.length === 0) await startExtending(q, event.id, window.to, now);
      const notes: OperationOutcomeIssue[] = replaced.bookedOutside.map((s) => ({
        severity: 'warning',
        code: 'business-rule',
        diagnostics: `Slot/${s.id} (${s.start} to ${s.end}) is booked and the availability rules no longer make it: it was kept`,
        expression: ['Schedule.extension'],
      }));
      notes.unshift({
        severity: 'information',
        code: 'informational',
        diagnostics: `Availability of Schedule/${event.id}: ${created.length} free Slots created, ${replaced.removed.length} free Slots that no longer fit removed, ${replaced.bookedOutside.length} booked Slots outside the rules kept`,
      });
      ctx.notes?.push(...notes);
    },
  };
}

function horizonKey(schedule: Schedule): string {
  return `${schedule.planningHorizon?.start ?? ''}/${schedule.planningHorizon?.end ?? ''}`;
}

/** A Schedule with a booked Slot stays; otherwise its future free Slots are removed with it. */
async function beforeDelete(ctx: FhirContext, q: Queryable, id: string): Promise<void> {
  await lockSchedule(q, id);
  const held = await q.query<{ slot_id: string }>(
    `SELECT p.slot_id FROM slot_period p JOIN slot_hold h ON h.slot_id = p.slot_id WHERE p.schedule_id = $1 ORDER BY lower(p.period) LIMIT 5`,
    [id],
  );
  if (held.rows.length > 0) {
    const names = held.rows.map((r) => `Slot/${r.slot_id}`).join(', ');
    throw conflict(`Schedule/${id} cannot be deleted: it has booked Slots (${names}${held.rows.length === 5 ? ', ...' : ''}); cancel their Appointments first`);
  }
  // No rules: every future free Slot is outside them. What stays (past or blocked Slots) still refers to the Schedule.
  await removeOutsideRules(ctx, q, id, [], new Date());
}
