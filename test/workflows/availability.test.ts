/**
 * Weekly availability rules and the Slot times they make (src/workflows/scheduling/availability.ts), in wall-clock
 * time of the rule's IANA zone: https://hl7.org/fhir/R4/practitionerrole-definitions.html#PractitionerRole.availableTime
 * Daylight saving in America/New_York: clocks spring forward on 2027-03-14 (02:00 EST -> 03:00 EDT) and fall back on
 * 2026-11-01 (02:00 EDT -> 01:00 EST).
 */
import * as fs from 'fs';
import * as path from 'path';
import type { Extension, Schedule, StructureDefinition } from '@medplum/fhirtypes';
import { DateTime } from 'luxon';
import { baseDefinitions } from '../../src/fhir/definitions';
import { OperationOutcomeError } from '../../src/fhir/outcomes';
import { generateSnapshot } from '../../src/fhir/validation/snapshot';
import { loadValidator } from '../../src/fhir/validation';
import { AVAILABILITY_URL, readAvailability, slotTimes, type AvailabilityRule, type SlotTime } from '../../src/workflows/scheduling/availability';

const NY = 'America/New_York';

const rule = (r: Partial<AvailabilityRule>): AvailabilityRule => ({
  daysOfWeek: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'],
  availableStartTime: '09:00:00',
  availableEndTime: '12:00:00',
  slotMinutes: 60,
  gapMinutes: 0,
  timeZone: NY,
  ...r,
});

/** Local wall-clock view of the slots: "2027-03-14 09:00-10:00 -04:00". */
const local = (times: SlotTime[], zone = NY) =>
  times.map((t) => {
    const s = DateTime.fromISO(t.start, { zone });
    const e = DateTime.fromISO(t.end, { zone });
    return `${s.toFormat('yyyy-MM-dd HH:mm')}-${e.toFormat('HH:mm')} ${s.toFormat('ZZ')}`;
  });

const minutes = (t: SlotTime) => (Date.parse(t.end) - Date.parse(t.start)) / 60000;

describe('slot times across daylight-saving changes (America/New_York)', () => {
  test('a week across the spring-forward change: 09:00 stays 09:00 local, the offset changes', () => {
    const times = slotTimes([rule({ availableEndTime: '11:00:00' })], new Date('2027-03-11T00:00:00-05:00'), new Date('2027-03-18T00:00:00-04:00'));
    expect(local(times)).toEqual([
      '2027-03-11 09:00-10:00 -05:00',
      '2027-03-11 10:00-11:00 -05:00',
      '2027-03-12 09:00-10:00 -05:00',
      '2027-03-12 10:00-11:00 -05:00',
      '2027-03-13 09:00-10:00 -05:00',
      '2027-03-13 10:00-11:00 -05:00',
      '2027-03-14 09:00-10:00 -04:00',
      '2027-03-14 10:00-11:00 -04:00',
      '2027-03-15 09:00-10:00 -04:00',
      '2027-03-15 10:00-11:00 -04:00',
      '2027-03-16 09:00-10:00 -04:00',
      '2027-03-16 10:00-11:00 -04:00',
      '2027-03-17 09:00-10:00 -04:00',
      '2027-03-17 10:00-11:00 -04:00',
    ]);
    // the instants themselves: 14:00Z before the change, 13:00Z after
    expect(times[0].start).toBe('2027-03-11T09:00:00-05:00');
    expect(new Date(times[0].start).toISOString()).toBe('2027-03-11T14:00:00.000Z');
    expect(new Date(times[6].start).toISOString()).toBe('2027-03-14T13:00:00.000Z');
  });

  test('a week across the fall-back change', () => {
    const times = slotTimes([rule({ availableEndTime: '10:00:00' })], new Date('2026-10-29T00:00:00-04:00'), new Date('2026-11-05T00:00:00-05:00'));
    expect(local(times)).toEqual([
      '2026-10-29 09:00-10:00 -04:00',
      '2026-10-30 09:00-10:00 -04:00',
      '2026-10-31 09:00-10:00 -04:00',
      '2026-11-01 09:00-10:00 -05:00',
      '2026-11-02 09:00-10:00 -05:00',
      '2026-11-03 09:00-10:00 -05:00',
      '2026-11-04 09:00-10:00 -05:00',
    ]);
  });

  test('spring forward: no slot starts or ends at a local time that does not exist', () => {
    const night = rule({ daysOfWeek: ['sun'], availableStartTime: '01:00:00', availableEndTime: '04:00:00', slotMinutes: 30 });
    const times = slotTimes([night], new Date('2027-03-14T00:00:00-05:00'), new Date('2027-03-15T00:00:00-04:00'));
    // 01:30-02:00, 02:00-02:30 and 02:30-03:00 would start or end in the skipped hour
    expect(local(times)).toEqual(['2027-03-14 01:00-01:30 -05:00', '2027-03-14 03:00-03:30 -04:00', '2027-03-14 03:30-04:00 -04:00']);
    expect(times.map(minutes)).toEqual([30, 30, 30]);
  });

  test('fall back: a local time that occurs twice is taken once (its first occurrence), and no slot spans the change', () => {
    const night = rule({ daysOfWeek: ['sun'], availableStartTime: '00:30:00', availableEndTime: '03:00:00', slotMinutes: 30 });
    const times = slotTimes([night], new Date('2026-11-01T00:00:00-04:00'), new Date('2026-11-02T00:00:00-05:00'));
    expect(local(times)).toEqual([
      '2026-11-01 00:30-01:00 -04:00',
      '2026-11-01 01:00-01:30 -04:00',
      // 01:30 EDT to 02:00 EST would last 90 minutes
      '2026-11-01 02:00-02:30 -05:00',
      '2026-11-01 02:30-03:00 -05:00',
    ]);
    expect(times.map(minutes)).toEqual([30, 30, 30, 30]);
    expect(new Set(times.map((t) => t.start)).size).toBe(times.length);
  });
});

describe('slot times', () => {
  const monday = new Date('2027-03-01T00:00:00-03:00');
  const nextMonday = new Date('2027-03-08T00:00:00-03:00');
  const sp = (r: Partial<AvailabilityRule>) => rule({ timeZone: 'America/Sao_Paulo', daysOfWeek: ['mon'], ...r });

  test('a gap between slots', () => {
    const times = slotTimes([sp({ slotMinutes: 50, gapMinutes: 10 })], monday, nextMonday);
    expect(local(times, 'America/Sao_Paulo')).toEqual(['2027-03-01 09:00-09:50 -03:00', '2027-03-01 10:00-10:50 -03:00', '2027-03-01 11:00-11:50 -03:00']);
  });

  test('a slot length that does not divide the window: the last slot ends by the end time', () => {
    const times = slotTimes([sp({ slotMinutes: 50 })], monday, nextMonday);
    expect(local(times, 'America/Sao_Paulo')).toEqual(['2027-03-01 09:00-09:50 -03:00', '2027-03-01 09:50-10:40 -03:00', '2027-03-01 10:40-11:30 -03:00']);
  });

  test('days of the week, and several rules in different zones', () => {
    const times = slotTimes(
      [sp({ daysOfWeek: ['mon', 'wed'], availableStartTime: '08:00:00', availableEndTime: '09:00:00' }), rule({ daysOfWeek: ['fri'], availableStartTime: '14:00:00', availableEndTime: '15:00:00', timeZone: 'Europe/Lisbon' })],
      monday,
      nextMonday,
    );
    expect(times).toEqual([
      { start: '2027-03-01T08:00:00-03:00', end: '2027-03-01T09:00:00-03:00' },
      { start: '2027-03-03T08:00:00-03:00', end: '2027-03-03T09:00:00-03:00' },
      { start: '2027-03-05T14:00:00+00:00', end: '2027-03-05T15:00:00+00:00' },
    ]);
  });

  test('overlapping rules make no overlapping slots: the one that starts first is kept', () => {
    const times = slotTimes([sp({ availableStartTime: '09:00:00', availableEndTime: '11:00:00' }), sp({ availableStartTime: '09:30:00', availableEndTime: '11:30:00' })], monday, nextMonday);
    expect(local(times, 'America/Sao_Paulo')).toEqual(['2027-03-01 09:00-10:00 -03:00', '2027-03-01 10:00-11:00 -03:00']);
  });

  test('the window holds the slots that start in [from, to)', () => {
    const times = slotTimes([sp({})], new Date('2027-03-01T10:00:00-03:00'), new Date('2027-03-01T11:00:00-03:00'));
    expect(local(times, 'America/Sao_Paulo')).toEqual(['2027-03-01 10:00-11:00 -03:00']);
  });
});

describe('reading the rules of a Schedule', () => {
  const part = (url: string, value: Record<string, unknown>): Extension => ({ url, ...value });
  const availability = (...parts: Extension[]): Extension => ({ url: AVAILABILITY_URL, extension: parts });
  const basic = [part('daysOfWeek', { valueCode: 'mon' }), part('daysOfWeek', { valueCode: 'thu' }), part('availableStartTime', { valueTime: '09:00:00' }), part('availableEndTime', { valueTime: '12:00:00' }), part('slotMinutes', { valuePositiveInt: 50 })];
  const schedule = (...extension: Extension[]): Schedule => ({ resourceType: 'Schedule', actor: [{ reference: 'Practitioner/1' }], extension });
  const issuesOf = (s: Schedule) => {
    try {
      readAvailability(s);
    } catch (err) {
      expect(err).toBeInstanceOf(OperationOutcomeError);
      expect((err as OperationOutcomeError).status).toBe(422);
      return (err as OperationOutcomeError).outcome.issue?.map((i) => `${i.code} ${i.expression?.[0]}: ${i.diagnostics}`);
    }
    return [];
  };

  test('defaults: no gap, America/Sao_Paulo', () => {
    expect(readAvailability(schedule(availability(...basic)))).toEqual([
      { daysOfWeek: ['mon', 'thu'], availableStartTime: '09:00:00', availableEndTime: '12:00:00', slotMinutes: 50, gapMinutes: 0, timeZone: 'America/Sao_Paulo' },
    ]);
    expect(readAvailability(schedule({ url: 'http://example.org/other', valueString: 'x' }))).toEqual([]);
  });

  test('what a definition cannot say is a 422 naming the rule', () => {
    expect(issuesOf(schedule(availability(...basic), availability(...basic, part('timeZone', { valueCode: 'Mars/Olympus' }))))).toEqual([
      "business-rule Schedule.extension[1]: timeZone 'Mars/Olympus' is not an IANA time zone (e.g. America/Sao_Paulo)",
    ]);
    const endBeforeStart = [...basic.slice(0, 2), part('availableStartTime', { valueTime: '12:00:00' }), part('availableEndTime', { valueTime: '09:00:00' }), basic[4]];
    expect(issuesOf(schedule(availability(...endBeforeStart)))).toEqual(['business-rule Schedule.extension[0]: availableEndTime 09:00:00 must be after availableStartTime 12:00:00 (a rule lies within one day)']);
    const tooLong = [...basic.slice(0, 4), part('slotMinutes', { valuePositiveInt: 181 })];
    expect(issuesOf(schedule(availability(...tooLong)))).toEqual(['business-rule Schedule.extension[0]: A 181-minute slot does not fit between 09:00:00 and 12:00:00']);
    const wrongTypes = [part('daysOfWeek', { valueString: 'mon' }), ...basic.slice(2, 4), part('slotMinutes', { valuePositiveInt: 2 })];
    expect(issuesOf(schedule(availability(...wrongTypes)))).toEqual([
      'business-rule Schedule.extension[0]: daysOfWeek must be given as valueCode',
      'business-rule Schedule.extension[0]: An availability rule needs at least one daysOfWeek',
      'business-rule Schedule.extension[0]: slotMinutes must be a whole number of minutes, at least 5',
    ]);
  });

  test('rules that offer more slots than a week holds overlap: 422', () => {
    const dense = availability(...['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].map((d) => part('daysOfWeek', { valueCode: d })), part('availableStartTime', { valueTime: '00:00:00' }), part('availableEndTime', { valueTime: '23:59:59' }), part('slotMinutes', { valuePositiveInt: 5 }));
    expect(readAvailability(schedule(dense))).toHaveLength(1);
    expect(issuesOf(schedule(dense, dense))).toEqual([expect.stringMatching(/^business-rule Schedule.extension: The availability rules offer 4018 Slots a week/)]);
  });
});

describe('the extension definition', () => {
  const file = path.resolve(__dirname, '../../fhir-profiles/StructureDefinition-availability.json');
  const sd = JSON.parse(fs.readFileSync(file, 'utf8')) as StructureDefinition;

  test('its snapshot is the one generated from its differential', () => {
    const validator = loadValidator(path.resolve(__dirname, '../../fhir-profiles'));
    expect(generateSnapshot({ ...sd, snapshot: undefined }, baseDefinition)).toEqual(sd.snapshot?.element);
    expect(validator.conformanceResources.some((r) => r.resourceType === 'StructureDefinition' && r.url === AVAILABILITY_URL)).toBe(true);
  });

  test('the validator enforces it wherever it is used', () => {
    const validator = loadValidator(path.resolve(__dirname, '../../fhir-profiles'));
    const parts = (extra: Extension[] = [], without = '') => [
      ...[{ url: 'daysOfWeek', valueCode: 'mon' }, { url: 'availableStartTime', valueTime: '09:00:00' }, { url: 'availableEndTime', valueTime: '12:00:00' }, { url: 'slotMinutes', valuePositiveInt: 50 }].filter((p) => p.url !== without),
      ...extra,
    ];
    const on = (extension: Extension[]) => validator.validate({ resourceType: 'Schedule', actor: [{ reference: 'Practitioner/1' }], extension: [{ url: AVAILABILITY_URL, extension }] }).filter((i) => i.severity === 'error');
    expect(on(parts([{ url: 'gapMinutes', valueUnsignedInt: 10 }, { url: 'timeZone', valueCode: NY }]))).toEqual([]);
    expect(on(parts([], 'slotMinutes')).map((i) => i.diagnostics)).toEqual([expect.stringContaining("slice 'slotMinutes' requires 1..1 values, but found 0")]);
    expect(on(parts([{ url: 'slotMinute', valuePositiveInt: 5 }])).map((i) => i.diagnostics)).toEqual([expect.stringContaining('matches none of the slices, and the slicing is closed')]);
    expect(on(parts([{ url: 'daysOfWeek', valueCode: 'monday' }])).map((i) => i.diagnostics)).toEqual([expect.stringContaining('hm-availability-2')]);
    const backwards = [{ url: 'daysOfWeek', valueCode: 'mon' }, { url: 'availableStartTime', valueTime: '12:00:00' }, { url: 'availableEndTime', valueTime: '09:00:00' }, { url: 'slotMinutes', valuePositiveInt: 50 }];
    expect(on(backwards).map((i) => i.diagnostics)).toEqual([expect.stringContaining('hm-availability-1')]);
  });
});

/** A base R4 definition by URL (the Extension type, here). */
function baseDefinition(url: string): StructureDefinition | undefined {
  return (baseDefinitions().types.entry ?? []).map((e) => e.resource as StructureDefinition).find((d) => d?.url === url);
}
