/**
 * POST Schedule/[id]/$generate-slots (issue 12): materializes the free Slots the Schedule's availability rules
 * make with a start in [start, end), on demand, as the server does for the planning horizon and daily after.
 * Idempotent: what exists is not made again (src/workflows/scheduling/generate.ts).
 *
 * In (a Parameters body or the query string): `start` (dateTime, default now; earlier times are not made) and
 * `end` (dateTime, default the end of the planning horizon), at most MAX_WINDOW_DAYS apart. A date without a time
 * is midnight in the Schedule's time zone (its first rule's). An explicit Schedule.planningHorizon bounds them.
 * Out (Parameters): `start` and `end` as used, `created` (integer), one `slot` per Slot created (the resource),
 * one `outsideRules` per booked Slot in the window that the rules no longer make (a reference; kept as it is).
 * Who may: whoever may update the Schedule (its actor, or an admin), as for PUT.
 */
import type { Parameters, ParametersParameter, Schedule } from '@medplum/fhirtypes';
import { DateTime } from 'luxon';
import { assertAllowed } from '../../access/context';
import { findVisible, gate } from '../../access/visible';
import { readCurrent } from '../../storage/repository';
import { DEFAULT_TIME_ZONE, activeRules } from '../../workflows/scheduling/availability';
import { DAY_MS, MAX_WINDOW_DAYS, bookedOutsideRules, generateSlots as materialize, horizonWindow, lockSchedule, type Window } from '../../workflows/scheduling/generate';
import { inTransaction, type FhirContext, type FhirRequest, type FhirResponse } from '../context';
import { badRequest, gone, notFound } from '../outcomes';
import type { FhirOperation } from '.';

const NAME = 'generate-slots';

/** https://hl7.org/fhir/R4/datatypes.html#dateTime */
const DATE_TIME =
  /^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?$/;

export const generateSlotsOperation: FhirOperation = {
  name: NAME,
  definition: 'http://fhir.healthmed.com.br/OperationDefinition/Schedule-generate-slots',
  levels: ['instance'],
  resourceTypes: ['Schedule'],
  methods: ['POST'],
  parameters: [
    { name: 'start', use: 'in', min: 0, max: '1', type: 'dateTime', documentation: 'First start time to make (default: now)' },
    { name: 'end', use: 'in', min: 0, max: '1', type: 'dateTime', documentation: `Slots start before this (default: planningHorizon.end, or now + 60 days); at most ${MAX_WINDOW_DAYS} days after start` },
    { name: 'start', use: 'out', min: 1, max: '1', type: 'dateTime', documentation: 'The start used' },
    { name: 'end', use: 'out', min: 1, max: '1', type: 'dateTime', documentation: 'The end used' },
    { name: 'created', use: 'out', min: 1, max: '1', type: 'integer', documentation: 'How many free Slots were created' },
    { name: 'slot', use: 'out', min: 0, max: '*', type: 'Slot', documentation: 'Each Slot created' },
    { name: 'outsideRules', use: 'out', min: 0, max: '*', type: 'Reference', documentation: 'Each booked Slot in the window that the rules no longer make (left as it is)' },
  ],
  documentation:
    'Makes the free Slots that the availability rules (extension http://fhir.healthmed.com.br/StructureDefinition/availability) make in [start, end), ' +
    'skipping every time the Schedule already has a Slot for; lists the booked Slots outside the rules.',
  run: (ctx, req, { id }) => run(ctx, req, id as string),
};

async function run(ctx: FhirContext, req: FhirRequest, id: string): Promise<FhirResponse> {
  gate(ctx.access, 'update', 'Schedule');
  const asked = inputs(req);
  return inTransaction(ctx, async (q) => {
    const found = await findVisible(ctx.access, q, 'update', 'Schedule', id, { fhirBaseUrl: ctx.settings.fhirBaseUrl });
    if (!found) throw notFound(`Schedule/${id} not found`);
    if (found.deleted) throw gone(`Schedule/${id} is deleted`);
    assertAllowed(ctx.access, 'update', 'Schedule', found.resource);
    await lockSchedule(q, id);
    // Read again under the lock: a rule change that committed meanwhile is what this generation follows.
    const current = await readCurrent(q, 'Schedule', id);
    if (!current?.resource) throw gone(`Schedule/${id} is deleted`);
    const schedule = current.resource as Schedule;
    const rules = activeRules(schedule);
    const window = windowOf(schedule, asked, rules[0]?.timeZone ?? DEFAULT_TIME_ZONE);
    const created = await materialize(ctx, q, id, rules, window);
    const outside = await bookedOutsideRules(q, id, rules, window);
    const parameter: ParametersParameter[] = [
      { name: 'start', valueDateTime: window.from.toISOString() },
      { name: 'end', valueDateTime: window.to.toISOString() },
      { name: 'created', valueInteger: created.length },
      ...created.map((v) => ({ name: 'slot', resource: v.resource })),
      ...outside.map((s) => ({ name: 'outsideRules', valueReference: { reference: `Slot/${s.id}`, display: `${s.start} to ${s.end}` } })),
    ];
    const body: Parameters = { resourceType: 'Parameters', parameter };
    return { status: 200, body };
  });
}

interface Asked {
  start?: string;
  end?: string;
}

/** `start` and `end` from a Parameters body or the query string (not both), checked as FHIR dateTimes. */
function inputs(req: FhirRequest): Asked {
  const asked: Asked = {};
  const body = req.body as Parameters | undefined;
  if (body !== undefined && body?.resourceType !== 'Parameters') throw badRequest(`$${NAME} takes a Parameters body (or none)`);
  for (const name of ['start', 'end'] as const) {
    const fromBody = (body?.parameter ?? []).filter((p) => p?.name === name);
    const fromQuery = req.query.getAll(name);
    if (fromBody.length + fromQuery.length > 1) throw badRequest(`$${NAME}: '${name}' is given more than once`, name);
    const value = fromBody.length > 0 ? fromBody[0].valueDateTime : fromQuery[0];
    if (fromBody.length > 0 && typeof value !== 'string') throw badRequest(`$${NAME}: '${name}' must be a valueDateTime`, name);
    if (value === undefined) continue;
    if (!DATE_TIME.test(value)) throw badRequest(`$${NAME}: '${name}' must be a FHIR dateTime (with a time zone when it has a time): ${value.slice(0, 40)}`, name);
    asked[name] = value;
  }
  return asked;
}

/** The window to make: what was asked, within an explicit planningHorizon, from now on, at most a year long. */
function windowOf(schedule: Schedule, asked: Asked, zone: string): Window {
  const now = new Date();
  const horizon = horizonWindow(schedule, now);
  const start = asked.start ? instant(asked.start, zone, 'start') : now;
  const end = asked.end ? instant(asked.end, zone, 'end') : horizon.to;
  if (end <= start) throw badRequest(`$${NAME}: end (${end.toISOString()}) must be after start (${start.toISOString()})`, 'end');
  if (end.getTime() - start.getTime() > MAX_WINDOW_DAYS * DAY_MS) throw badRequest(`$${NAME}: at most ${MAX_WINDOW_DAYS} days from start to end`, 'end');
  let from = start > now ? start : now;
  let to = end;
  if (schedule.planningHorizon?.start && horizon.from > from) from = horizon.from;
  if (schedule.planningHorizon?.end && horizon.to < to) to = horizon.to;
  return { from, to: to > from ? to : from };
}

function instant(value: string, zone: string, name: string): Date {
  const t = DateTime.fromISO(value, { zone });
  if (!t.isValid) throw badRequest(`$${NAME}: '${name}' is not a date that exists: ${value}`, name);
  return t.toJSDate();
}
