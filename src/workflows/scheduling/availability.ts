/**
 * A doctor's weekly availability, carried on their Schedule as repeating extensions
 * http://fhir.healthmed.com.br/StructureDefinition/availability (fhir-profiles/StructureDefinition-availability.json),
 * shaped like R4 PractitionerRole.availableTime (https://hl7.org/fhir/R4/practitionerrole-definitions.html#PractitionerRole.availableTime)
 * plus the slot length, the gap between slots and the IANA time zone the times are read in.
 *
 * Slot times are wall-clock times in the rule's zone, computed with luxon (never by hand): across a daylight-saving
 * change a 09:00 rule stays at 09:00 local time and its UTC offset changes. A slot whose start or end does not
 * exist that day (the hour skipped when clocks spring forward), or that spans a change (so it would not last
 * slotMinutes), is left out; a local time that occurs twice (clocks fall back) is taken once, at its first
 * occurrence.
 */
import type { Extension, OperationOutcomeIssue, Schedule } from '@medplum/fhirtypes';
import { DateTime, FixedOffsetZone, IANAZone } from 'luxon';
import { OperationOutcomeError, issuesOutcome } from '../../fhir/outcomes';

export const AVAILABILITY_URL = 'http://fhir.healthmed.com.br/StructureDefinition/availability';
export const DEFAULT_TIME_ZONE = 'America/Sao_Paulo';
/** Shorter slots would let one Schedule write create tens of thousands of Slots; no consultation is that short. */
export const MIN_SLOT_MINUTES = 5;

/** https://hl7.org/fhir/R4/valueset-days-of-week.html, in luxon's weekday order (1 = Monday). */
export const DAYS_OF_WEEK = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type DayOfWeek = (typeof DAYS_OF_WEEK)[number];

export interface AvailabilityRule {
  daysOfWeek: DayOfWeek[];
  /** FHIR `time` (hh:mm:ss), local to timeZone. */
  availableStartTime: string;
  availableEndTime: string;
  slotMinutes: number;
  gapMinutes: number;
  /** IANA zone name. */
  timeZone: string;
}

/** One Slot to be: ISO 8601 instants with the rule zone's offset at that time. */
export interface SlotTime {
  start: string;
  end: string;
}

const SUB_EXTENSIONS = new Set(['daysOfWeek', 'availableStartTime', 'availableEndTime', 'slotMinutes', 'gapMinutes', 'timeZone']);
/** https://hl7.org/fhir/R4/datatypes.html#time */
const TIME = /^([01][0-9]|2[0-3]):([0-5][0-9]):([0-5][0-9])(\.[0-9]+)?$/;

/**
 * The availability rules of a Schedule, or a 422 listing every rule that cannot be used (each issue's expression
 * names the extension). The structure is the validator's job (the extension definition); this checks what a
 * definition cannot say: times that make sense, a real time zone, slots that fit in the window.
 */
export function readAvailability(schedule: Schedule): AvailabilityRule[] {
  const rules: AvailabilityRule[] = [];
  const issues: OperationOutcomeIssue[] = [];
  (schedule.extension ?? []).forEach((ext, i) => {
    if (ext?.url !== AVAILABILITY_URL) return;
    const problems: string[] = [];
    const rule = parseRule(ext, problems);
    if (rule) rules.push(rule);
    for (const diagnostics of problems) issues.push({ severity: 'error', code: 'business-rule', diagnostics, expression: [`Schedule.extension[${i}]`] });
  });
  const weekly = rules.reduce((n, r) => n + r.daysOfWeek.length * slotsPerDay(r), 0);
  if (weekly > MAX_WEEKLY_SLOTS) {
    issues.push({
      severity: 'error',
      code: 'business-rule',
      diagnostics: `The availability rules offer ${weekly} Slots a week, more than a week holds (${MAX_WEEKLY_SLOTS} of ${MIN_SLOT_MINUTES} minutes): they overlap`,
      expression: ['Schedule.extension'],
    });
  }
  if (issues.length > 0) throw new OperationOutcomeError(422, issuesOutcome(issues));
  return rules;
}

/** As many of the shortest Slots as a week holds: rules offering more than this overlap one another. */
const MAX_WEEKLY_SLOTS = (7 * 24 * 60) / MIN_SLOT_MINUTES;

function slotsPerDay(rule: AvailabilityRule): number {
  const window = (secondsOfDay(rule.availableEndTime) as number) - (secondsOfDay(rule.availableStartTime) as number);
  const slot = rule.slotMinutes * 60;
  return Math.floor((window - slot) / (slot + rule.gapMinutes * 60)) + 1;
}

/** The rules that make Slots: none while the Schedule is not in active use (https://hl7.org/fhir/R4/schedule-definitions.html#Schedule.active). */
export function activeRules(schedule: Schedule): AvailabilityRule[] {
  return schedule.active === false ? [] : readAvailability(schedule);
}

function parseRule(ext: Extension, problems: string[]): AvailabilityRule | undefined {
  const parts = ext.extension ?? [];
  for (const p of parts) if (!SUB_EXTENSIONS.has(p?.url)) problems.push(`Unknown part '${String(p?.url).slice(0, 40)}' of an availability rule`);
  /** The values of one part, each of the type it must have. */
  const values = <K extends keyof Extension>(url: string, key: K, max: number): Extension[K][] => {
    const found = parts.filter((p) => p?.url === url);
    if (found.length > max) problems.push(`An availability rule has at most ${max} ${url}, not ${found.length}`);
    for (const p of found) if (p[key] === undefined) problems.push(`${url} must be given as ${key}`);
    return found.map((p) => p[key]).filter((v) => v !== undefined);
  };

  const days = values('daysOfWeek', 'valueCode', Infinity);
  if (days.length === 0) problems.push('An availability rule needs at least one daysOfWeek');
  for (const d of days) if (!DAYS_OF_WEEK.includes(d as DayOfWeek)) problems.push(`daysOfWeek '${String(d).slice(0, 20)}' is not one of ${DAYS_OF_WEEK.join(', ')}`);

  const [start] = values('availableStartTime', 'valueTime', 1);
  const [end] = values('availableEndTime', 'valueTime', 1);
  const startSeconds = secondsOfDay(start);
  const endSeconds = secondsOfDay(end);
  if (startSeconds === undefined) problems.push('availableStartTime must be a time (hh:mm:ss)');
  if (endSeconds === undefined) problems.push('availableEndTime must be a time (hh:mm:ss)');

  const [slotMinutes] = values('slotMinutes', 'valuePositiveInt', 1);
  if (!Number.isInteger(slotMinutes) || (slotMinutes as number) < MIN_SLOT_MINUTES) {
    problems.push(`slotMinutes must be a whole number of minutes, at least ${MIN_SLOT_MINUTES}`);
  }
  const [gapMinutes = 0] = values('gapMinutes', 'valueUnsignedInt', 1);
  if (!Number.isInteger(gapMinutes) || gapMinutes < 0) problems.push('gapMinutes must be a whole number of minutes, 0 or more');

  const [timeZone = DEFAULT_TIME_ZONE] = values('timeZone', 'valueCode', 1);
  if (typeof timeZone !== 'string' || !IANAZone.isValidZone(timeZone)) {
    problems.push(`timeZone '${String(timeZone).slice(0, 60)}' is not an IANA time zone (e.g. America/Sao_Paulo)`);
  }

  if (startSeconds !== undefined && endSeconds !== undefined) {
    if (endSeconds <= startSeconds) problems.push(`availableEndTime ${end} must be after availableStartTime ${start} (a rule lies within one day)`);
    else if (Number.isInteger(slotMinutes) && (slotMinutes as number) * 60 > endSeconds - startSeconds) {
      problems.push(`A ${slotMinutes}-minute slot does not fit between ${start} and ${end}`);
    }
  }
  if (problems.length > 0) return undefined;
  return {
    daysOfWeek: [...new Set(days as DayOfWeek[])],
    availableStartTime: start as string,
    availableEndTime: end as string,
    slotMinutes: slotMinutes as number,
    gapMinutes,
    timeZone,
  };
}

/** Seconds since local midnight of a FHIR time (fractions of a second dropped), or undefined. */
function secondsOfDay(time: unknown): number | undefined {
  const m = typeof time === 'string' ? TIME.exec(time) : null;
  return m ? Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]) : undefined;
}

/** A comparable form of the rules (what decides whether a Schedule write changed its availability). */
export function rulesKey(rules: AvailabilityRule[]): string {
  return JSON.stringify(rules.map((r) => ({ ...r, daysOfWeek: [...r.daysOfWeek].sort() })));
}

/**
 * The Slot times the rules make with a start in [from, to), in start order. Where rules overlap, the Slot that
 * starts first is kept and those overlapping it are dropped, so no two times returned overlap.
 */
export function slotTimes(rules: AvailabilityRule[], from: Date, to: Date): SlotTime[] {
  const times: { start: DateTime; end: DateTime }[] = [];
  for (const rule of rules) times.push(...ruleTimes(rule, from, to));
  times.sort((a, b) => a.start.toMillis() - b.start.toMillis() || a.end.toMillis() - b.end.toMillis());
  const out: SlotTime[] = [];
  let lastEnd = -Infinity;
  for (const t of times) {
    if (t.start.toMillis() < lastEnd) continue;
    lastEnd = t.end.toMillis();
    out.push({ start: iso(t.start), end: iso(t.end) });
  }
  return out;
}

function ruleTimes(rule: AvailabilityRule, from: Date, to: Date): { start: DateTime; end: DateTime }[] {
  const zone = IANAZone.create(rule.timeZone);
  const days = new Set(rule.daysOfWeek.map((d) => DAYS_OF_WEEK.indexOf(d) + 1));
  const first = secondsOfDay(rule.availableStartTime) as number;
  const last = secondsOfDay(rule.availableEndTime) as number;
  const slot = rule.slotMinutes * 60;
  const step = slot + rule.gapMinutes * 60;
  const out: { start: DateTime; end: DateTime }[] = [];
  // Calendar dates, stepped in UTC (which has no daylight saving); each date's times are then read in the zone.
  const lastDate = DateTime.fromJSDate(to, { zone }).toISODate() as string;
  for (let date = DateTime.fromISO(DateTime.fromJSDate(from, { zone }).toISODate() as string, { zone: 'utc' }); (date.toISODate() as string) <= lastDate; date = date.plus({ days: 1 })) {
    if (!days.has(date.weekday)) continue;
    const steady = steadyOn(date, zone);
    for (let s = first; s + slot <= last; s += step) {
      let start: DateTime | undefined;
      let end: DateTime | undefined;
      if (steady) {
        start = DateTime.fromObject(localTime(date, s), { zone });
        end = start.plus({ seconds: slot });
      } else {
        start = wallClock(date, s, zone);
        end = wallClock(date, s + slot, zone);
        if (!start || !end || end.toMillis() - start.toMillis() !== slot * 1000) continue;
      }
      if (start.toMillis() < from.getTime() || start.toMillis() >= to.getTime()) continue;
      out.push({ start, end });
    }
  }
  return out;
}

/**
 * The instant a local date and time of day names in the zone: undefined when clocks skip it, the first
 * occurrence when clocks show it twice. Each offset the zone has around that time is tried (luxon reads the zone
 * database); an offset is right when the zone really has it at the instant it gives.
 */
function wallClock(date: DateTime, seconds: number, zone: IANAZone): DateTime | undefined {
  const local = localTime(date, seconds);
  const guess = DateTime.fromObject(local, { zone });
  const offsets = new Set([guess.offset, guess.minus({ hours: 6 }).offset, guess.plus({ hours: 6 }).offset]);
  let best: DateTime | undefined;
  for (const offset of offsets) {
    const candidate = DateTime.fromObject(local, { zone: FixedOffsetZone.instance(offset) }).setZone(zone);
    if (candidate.offset === offset && (!best || candidate < best)) best = candidate;
  }
  return best;
}

function localTime(date: DateTime, seconds: number) {
  return { year: date.year, month: date.month, day: date.day, hour: Math.floor(seconds / 3600), minute: Math.floor(seconds / 60) % 60, second: seconds % 60 };
}

/**
 * Whether the zone keeps one offset all this local day (most days): its offset 14 hours either side of local
 * noon is noon's, so no change falls between (a zone changes at most once a day).
 */
function steadyOn(date: DateTime, zone: IANAZone): boolean {
  const noon = DateTime.fromObject(localTime(date, 12 * 3600), { zone });
  return noon.minus({ hours: 14 }).offset === noon.offset && noon.plus({ hours: 14 }).offset === noon.offset;
}

/** `2027-03-15T09:00:00-04:00`: an instant with the zone's offset (https://hl7.org/fhir/R4/datatypes.html#instant). */
function iso(t: DateTime): string {
  return t.toISO({ suppressMilliseconds: true }) as string;
}
