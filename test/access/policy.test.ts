/**
 * The rules behind the matrix, one at a time: searchConditions shapes, v2 granular scopes, scope letters
 * per interaction, who a scope context reaches, the write rules, the practitioner's role, the consent
 * decision point and how refusals are answered.
 * https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html — CONTRACT sections 4-6
 */
import type { Resource } from '@medplum/fhirtypes';
import { assertAllowed, denialFor, systemContext } from '../../src/access/context';
import type { ConsentDecision } from '../../src/access/consent';
import { createAccessContext, type Grant } from '../../src/access/policy';
import { OperationOutcomeError } from '../../src/fhir/outcomes';
import { BASE, rowMatches } from './evaluate';

const patient = (id: string, ...scopes: string[]): Grant => ({ caller: { kind: 'patient', fhirUser: `Patient/${id}` }, scopes, patient: id });
const practitioner = (scopes: string[], extra: Partial<Grant> = {}): Grant => ({
  caller: { kind: 'practitioner', fhirUser: 'Practitioner/P' },
  scopes,
  ...extra,
});
const client = (...scopes: string[]): Grant => ({ caller: { kind: 'client', clientId: 'c' }, scopes });
const ctxOf = (g: Grant) => createAccessContext({ ...g, fhirBaseUrl: BASE });

const LAB = { system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' };
const VITALS = { system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' };
const obs = (subject: string, category = LAB, extra: object = {}): Resource => ({
  resourceType: 'Observation',
  id: `obs-${subject}-${category.code}`,
  status: 'final',
  category: [{ coding: [category] }],
  code: { text: 'x' },
  subject: { reference: `Patient/${subject}` },
  ...extra,
});
const COMPARTMENT_A = { kind: 'reference', codes: ['subject', 'performer'], targets: [{ type: 'Patient', id: 'A' }] };

describe('searchConditions', () => {
  test('a patient: their compartment, their Patient, the whole directory, nothing else', () => {
    const ctx = ctxOf(patient('A', 'patient/*.rs'));
    expect(ctx.searchConditions('Observation')).toEqual([COMPARTMENT_A]);
    expect(ctx.searchConditions('Appointment')).toEqual([{ kind: 'reference', codes: ['actor'], targets: [{ type: 'Patient', id: 'A' }] }]);
    expect(ctx.searchConditions('Patient')).toEqual([{ kind: 'id', ids: ['A'] }]);
    expect(ctx.searchConditions('Practitioner')).toEqual([]);
    expect(ctx.searchConditions('Slot')).toEqual([]);
    expect(ctx.searchConditions('Schedule')).toEqual([]);
    expect(ctx.searchConditions('ValueSet')).toEqual([{ kind: 'none' }]);
    expect(ctx.searchConditions('Binary')).toEqual([{ kind: 'none' }]);
  });

  test('no grant: nothing; system scopes: everything granted', () => {
    expect(ctxOf({ caller: { kind: 'anonymous' }, scopes: [] }).searchConditions('Practitioner')).toEqual([{ kind: 'none' }]);
    expect(ctxOf(client('system/*.*')).searchConditions('Observation')).toEqual([]);
    expect(ctxOf(client('system/DocumentReference.c')).searchConditions('DocumentReference')).toEqual([{ kind: 'none' }]);
    expect(ctxOf(client('system/Observation.rs')).searchConditions('Encounter')).toEqual([{ kind: 'none' }]);
  });

  test('a practitioner: Appointments they take part in, by Practitioner or PractitionerRole', () => {
    const ctx = ctxOf(practitioner(['user/*.cruds'], { practitionerRoles: ['R1'] }));
    expect(ctx.searchConditions('Appointment')).toEqual([
      {
        kind: 'reference',
        codes: ['actor'],
        targets: [
          { type: 'Practitioner', id: 'P' },
          { type: 'PractitionerRole', id: 'R1' },
        ],
      },
    ]);
    expect(ctx.searchConditions('Slot')).toEqual([]);
    expect(ctx.searchConditions('Observation')).toEqual([{ kind: 'none' }]);
  });

  test('v2 constraints narrow the search; several constrained scopes of one reach OR their constraints', () => {
    const lab = `patient/Observation.rs?category=${LAB.system}|${LAB.code}`;
    const vitals = `patient/Observation.rs?category=${VITALS.system}|${VITALS.code}`;
    const labToken = { kind: 'token', code: 'category', any: [{ system: LAB.system, value: 'laboratory' }] };
    const vitalsToken = { kind: 'token', code: 'category', any: [{ system: VITALS.system, value: 'vital-signs' }] };
    expect(ctxOf(patient('A', lab)).searchConditions('Observation')).toEqual([COMPARTMENT_A, labToken]);
    expect(ctxOf(patient('A', lab, vitals)).searchConditions('Observation')).toEqual([COMPARTMENT_A, { kind: 'or', any: [labToken, vitalsToken] }]);
    // an unconstrained scope of the same reach makes the constraint moot
    expect(ctxOf(patient('A', lab, 'patient/*.rs')).searchConditions('Observation')).toEqual([COMPARTMENT_A]);
    // patient/ and user/ scopes of a patient reach the same compartment
    expect(ctxOf(patient('A', lab, 'user/Observation.s')).searchConditions('Observation')).toEqual([COMPARTMENT_A]);
    // token syntax: |code (no system), code (any system), system| (any code)
    expect(ctxOf(patient('A', 'patient/Observation.rs?status=final,|amended&category=x|')).searchConditions('Observation')).toEqual([
      COMPARTMENT_A,
      { kind: 'token', code: 'status', any: [{ value: 'final' }, { system: null, value: 'amended' }] },
      { kind: 'token', code: 'category', any: [{ system: 'x' }] },
    ]);
  });

  test('constrained scopes of different reaches combine with and/or', () => {
    const ctx = ctxOf(practitioner(['user/Appointment.rs?status=booked', 'patient/Appointment.rs?status=pending'], { patient: 'A' }));
    const actor = { kind: 'reference', codes: ['actor'], targets: [{ type: 'Practitioner', id: 'P' }] };
    const status = (value: string) => ({ kind: 'token', code: 'status', any: [{ value }] });
    const compartment = { kind: 'reference', codes: ['actor'], targets: [{ type: 'Patient', id: 'A' }] };
    expect(ctx.searchConditions('Appointment')).toEqual([
      actor,
      { kind: 'or', any: [status('booked'), { kind: 'and', all: [compartment, status('pending')] }] },
    ]);
    const appt = (pat: string, s: string): Resource => ({
      resourceType: 'Appointment',
      status: s as never,
      participant: [
        { actor: { reference: `Patient/${pat}` }, status: 'accepted' },
        { actor: { reference: 'Practitioner/P' }, status: 'accepted' },
      ],
    });
    const cases = [appt('A', 'booked'), appt('B', 'booked'), appt('A', 'pending'), appt('B', 'pending'), appt('A', 'cancelled')];
    expect(cases.map((r) => ctx.can('search', 'Appointment', r))).toEqual([true, true, true, false, false]);
    for (const r of cases) expect(rowMatches(r, ctx.searchConditions('Appointment'))).toBe(ctx.can('search', 'Appointment', r));
  });

  test('the interaction picks the letter: _include rows are reads', () => {
    const ctx = ctxOf(patient('A', 'patient/Observation.r'));
    expect(ctx.searchConditions('Observation')).toEqual([{ kind: 'none' }]);
    expect(ctx.searchConditions('Observation', 'read')).toEqual([COMPARTMENT_A]);
  });
});

describe('v2 granular scopes', () => {
  const ctx = ctxOf(patient('A', `patient/Observation.rs?category=${LAB.system}|laboratory`));

  test('a read of a resource outside the constraint is refused, and hidden', () => {
    expect(ctx.can('read', 'Observation', obs('A'))).toBe(true);
    expect(ctx.can('read', 'Observation', obs('A', VITALS))).toBe(false);
    expect(denialFor(ctx, 'read', 'Observation', obs('A', VITALS))).toBe('not-found');
    expect(ctx.can('read', 'Observation', obs('B'))).toBe(false);
  });

  test('search results and SQL agree', () => {
    for (const r of [obs('A'), obs('A', VITALS), obs('B')]) {
      expect(rowMatches(r, ctx.searchConditions('Observation'))).toBe(ctx.can('search', 'Observation', r));
    }
  });

  test('a constraint the type cannot honour grants nothing (fail closed)', () => {
    const odd = ctxOf(patient('A', 'patient/Observation.rs?nonsense=1', 'patient/Observation.rs?value-quantity=5'));
    expect(odd.can('search', 'Observation')).toBe(false);
    expect(odd.can('read', 'Observation', obs('A'))).toBe(false);
    expect(odd.searchConditions('Observation')).toEqual([{ kind: 'none' }]);
  });

  test('reference constraints', () => {
    const c = ctxOf(client('system/Observation.rs?subject=Patient/A'));
    expect(c.can('read', 'Observation', obs('A'))).toBe(true);
    expect(c.can('read', 'Observation', obs('B'))).toBe(false);
    expect(c.searchConditions('Observation')).toEqual([{ kind: 'reference', codes: ['subject'], targets: [{ type: 'Patient', id: 'A' }] }]);
  });
});

describe('scope letters per interaction', () => {
  test('v1 read = rs, v1 write = cud', () => {
    const read = ctxOf(patient('A', 'patient/*.read'));
    expect(['read', 'vread', 'search', 'history-instance', 'history-type'].every((i) => read.can(i as never, 'Observation', obs('A')))).toBe(true);
    expect(['create', 'update', 'patch', 'delete'].some((i) => read.can(i as never, 'Observation', obs('A')))).toBe(false);
    const write = ctxOf(patient('A', 'patient/*.write'));
    expect(['create', 'update', 'patch', 'delete'].every((i) => write.can(i as never, 'Observation', obs('A')))).toBe(true);
    expect(write.can('read', 'Observation', obs('A'))).toBe(false);
  });

  test('instance history is r, type and system history are s', () => {
    const r = ctxOf(patient('A', 'patient/Observation.r'));
    const s = ctxOf(patient('A', 'patient/Observation.s'));
    expect([r.can('history-instance', 'Observation'), r.can('history-type', 'Observation'), r.can('history-type', '*')]).toEqual([true, false, false]);
    expect([s.can('history-instance', 'Observation'), s.can('history-type', 'Observation'), s.can('history-type', '*')]).toEqual([false, true, true]);
    // an s-only scope still lets search results through, row by row
    expect(s.can('search', 'Observation', obs('A'))).toBe(true);
    // 'history' at an unstated level takes either
    expect([r.can('history', 'Observation'), s.can('history', 'Observation')]).toEqual([true, true]);
  });

  test('operations ($validate) need r on their type', () => {
    expect(ctxOf(client('system/Patient.r')).can('operation', 'Patient')).toBe(true);
    expect(ctxOf(client('system/Patient.c')).can('operation', 'Patient')).toBe(false);
  });
});

describe('who a scope context reaches', () => {
  test('system/ scopes are for clients only', () => {
    expect(ctxOf(patient('A', 'system/*.*')).can('read', 'Observation', obs('B'))).toBe(false);
    expect(ctxOf(practitioner(['system/*.*'])).can('read', 'Observation', obs('B'))).toBe(false);
  });

  test('a patient context naming someone else than the patient caller reaches nothing', () => {
    const ctx = ctxOf({ ...patient('A', 'patient/*.*'), patient: 'B' });
    expect(ctx.can('read', 'Observation', obs('B'))).toBe(false);
    expect(ctx.can('read', 'Observation', obs('A'))).toBe(false);
  });

  test('a patient caller without a patient claim uses their own Patient', () => {
    const ctx = ctxOf({ caller: { kind: 'patient', fhirUser: 'Patient/A' }, scopes: ['patient/*.rs'] });
    expect(ctx.can('read', 'Observation', obs('A'))).toBe(true);
  });

  test('user/ scopes of a patient user are their compartment; of a client, nothing', () => {
    expect(ctxOf(patient('A', 'user/*.cruds')).can('read', 'Observation', obs('A'))).toBe(true);
    expect(ctxOf(patient('A', 'user/*.cruds')).can('read', 'Observation', obs('B'))).toBe(false);
    expect(ctxOf(client('user/*.cruds')).can('read', 'Observation', obs('A'))).toBe(false);
  });

  test("a practitioner's patient/ scopes: their role's reach inside the patient in context", () => {
    const ctx = ctxOf(practitioner(['patient/*.rs'], { patient: 'A' }));
    const appt = (pat: string, prac: string): Resource => ({
      resourceType: 'Appointment',
      status: 'booked',
      participant: [
        { actor: { reference: `Patient/${pat}` }, status: 'accepted' },
        { actor: { reference: `Practitioner/${prac}` }, status: 'accepted' },
      ],
    });
    expect(ctx.can('read', 'Appointment', appt('A', 'P'))).toBe(true);
    expect(ctx.can('read', 'Appointment', appt('B', 'P'))).toBe(false);
    expect(ctx.can('read', 'Appointment', appt('A', 'Q'))).toBe(false);
    expect(ctx.can('read', 'Observation', obs('A'))).toBe(false);
    expect(ctx.can('read', 'Practitioner', { resourceType: 'Practitioner', id: 'Q' })).toBe(true);
    for (const r of [appt('A', 'P'), appt('B', 'P'), appt('A', 'Q')]) {
      expect(rowMatches(r, ctx.searchConditions('Appointment'))).toBe(ctx.can('search', 'Appointment', r));
    }
  });
});

describe('write rules', () => {
  const a = ctxOf(patient('A', 'patient/*.*'));

  test("a patient cannot file data into another patient's record, though they may read it", () => {
    const intoB = obs('B', LAB, { performer: [{ reference: 'Patient/A' }] });
    expect(a.can('read', 'Observation', intoB)).toBe(true); // in A's compartment as its performer
    expect(a.can('create', 'Observation', intoB)).toBe(false);
    expect(a.can('update', 'Observation', intoB)).toBe(false);
  });

  test('patients do not write the directory, even where the compartment would hold it', () => {
    const schedule: Resource = { resourceType: 'Schedule', actor: [{ reference: 'Patient/A' }] };
    expect(a.can('read', 'Schedule', schedule)).toBe(true);
    expect(a.can('create', 'Schedule', schedule)).toBe(false);
    expect(a.can('update', 'Slot')).toBe(false);
  });

  test('AuditEvents: the patient reads theirs, nobody writes them but the server', () => {
    const event: Resource = {
      resourceType: 'AuditEvent',
      type: { code: 'rest' },
      recorded: '2030-01-01T00:00:00Z',
      source: { observer: { display: 'server' } },
      agent: [{ requestor: true, who: { reference: 'Practitioner/P' } }],
      entity: [{ what: { reference: 'Patient/A' } }],
    };
    expect(a.can('read', 'AuditEvent', event)).toBe(true);
    expect(a.can('search', 'AuditEvent', event)).toBe(true);
    expect(rowMatches(event, a.searchConditions('AuditEvent'))).toBe(true);
    expect(a.can('create', 'AuditEvent', event)).toBe(false);
    const admin = ctxOf(client('system/*.*'));
    expect(admin.can('create', 'AuditEvent', event)).toBe(true);
    expect(['update', 'patch', 'delete'].some((i) => admin.can(i as never, 'AuditEvent', event))).toBe(false);
    expect(systemContext().can('delete', 'AuditEvent', event)).toBe(true); // the server itself is not limited here
  });

  test('Binary follows its securityContext for patients; labs push Binaries and documents for anyone', () => {
    const bin = (ref?: string): Resource => ({ resourceType: 'Binary', contentType: 'application/pdf', ...(ref ? { securityContext: { reference: ref } } : {}) });
    expect(a.can('read', 'Binary', bin('Patient/A'))).toBe(true);
    expect(a.can('read', 'Binary', bin('Patient/B'))).toBe(false);
    expect(denialFor(a, 'read', 'Binary', bin('Patient/B'))).toBe('not-found');
    expect(a.can('read', 'Binary', bin('DocumentReference/d'))).toBe(false); // decided by the caller from the document
    expect(a.can('create', 'Binary', bin('Patient/A'))).toBe(true);
    expect(a.can('create', 'Binary', bin())).toBe(false);
    const lab = ctxOf(client('system/DocumentReference.c', 'system/Binary.c'));
    expect(lab.can('create', 'Binary', bin())).toBe(true);
    expect(lab.can('read', 'Binary', bin())).toBe(false);
  });
});

describe("a practitioner's role", () => {
  const schedule = (...actors: string[]): Resource => ({ resourceType: 'Schedule', actor: actors.map((reference) => ({ reference })) });
  const slot = (scheduleId: string): Resource => ({
    resourceType: 'Slot',
    schedule: { reference: `Schedule/${scheduleId}` },
    status: 'free',
    start: '2030-01-01T10:00:00Z',
    end: '2030-01-01T10:50:00Z',
  });
  const ctx = ctxOf(practitioner(['user/*.cruds'], { practitionerRoles: ['R1'], ownsSchedule: (id) => id === 'mine' }));

  test('writes the Schedules whose actor is them or one of their roles', () => {
    expect(ctx.can('create', 'Schedule', schedule('Practitioner/P'))).toBe(true);
    expect(ctx.can('create', 'Schedule', schedule(`${BASE}/Practitioner/P`, 'Location/L'))).toBe(true);
    expect(ctx.can('update', 'Schedule', schedule('PractitionerRole/R1'))).toBe(true);
    expect(ctx.can('create', 'Schedule', schedule('Practitioner/Q'))).toBe(false);
    expect(ctx.can('delete', 'Schedule', schedule('PractitionerRole/R2'))).toBe(false);
    expect(ctx.can('read', 'Schedule', schedule('Practitioner/Q'))).toBe(true);
  });

  test('writes the Slots of their Schedules (the ownsSchedule hook decides)', () => {
    expect(ctx.can('create', 'Slot', slot('mine'))).toBe(true);
    expect(ctx.can('delete', 'Slot', slot('theirs'))).toBe(false);
    expect(denialFor(ctx, 'delete', 'Slot', slot('theirs'))).toBe('forbidden'); // they can see it: nothing to hide
    expect(ctxOf(practitioner(['user/*.cruds'])).can('create', 'Slot', slot('mine'))).toBe(false); // no hook: none owned
  });

  test('does not write the rest of the directory, nor create Appointments', () => {
    expect(ctx.can('update', 'Practitioner', { resourceType: 'Practitioner', id: 'P' })).toBe(false);
    expect(ctx.can('create', 'PractitionerRole', { resourceType: 'PractitionerRole', practitioner: { reference: 'Practitioner/P' } })).toBe(false);
    expect(ctx.can('create', 'Appointment')).toBe(false);
  });

  test("reaches patients' records only through the consent decision point", () => {
    const doc: Resource = { resourceType: 'DocumentReference', id: 'doc-1', status: 'current', content: [], subject: { reference: 'Patient/A' } };
    expect(ctx.can('read', 'DocumentReference', doc)).toBe(false);
    const consent: ConsentDecision = {
      allows: (interaction, type, r) => (interaction === 'read' || interaction === 'search') && type === 'DocumentReference' && (!r || r.id === 'doc-1'),
      searchCondition: (type) => (type === 'DocumentReference' ? { kind: 'id', ids: ['doc-1'] } : undefined),
    };
    const withConsent = ctxOf(practitioner(['user/*.rs'], { consent }));
    expect(withConsent.can('read', 'DocumentReference', doc)).toBe(true);
    expect(withConsent.can('read', 'DocumentReference', { ...doc, id: 'doc-2' })).toBe(false);
    expect(denialFor(withConsent, 'read', 'DocumentReference', { ...doc, id: 'doc-2' })).toBe('not-found');
    expect(withConsent.searchConditions('DocumentReference')).toEqual([{ kind: 'id', ids: ['doc-1'] }]);
    expect(withConsent.can('update', 'DocumentReference', doc)).toBe(false); // rs only
  });
});

describe('refusals', () => {
  const outcomeOf = (fn: () => void) => {
    try {
      fn();
    } catch (err) {
      const e = err as OperationOutcomeError;
      return [e.status, e.outcome.issue?.[0]?.code];
    }
    return [200];
  };

  test("403 when nothing is granted for the type, 404 for another patient's resource by id", () => {
    const b = ctxOf(patient('B', 'patient/*.*'));
    expect(outcomeOf(() => assertAllowed(b, 'read', 'Observation', obs('A')))).toEqual([404, 'not-found']);
    expect(outcomeOf(() => assertAllowed(b, 'vread', 'Observation', obs('A')))).toEqual([404, 'not-found']);
    expect(outcomeOf(() => assertAllowed(b, 'delete', 'Observation', obs('A')))).toEqual([404, 'not-found']);
    // the body of an update or create is the caller's own: nothing to hide
    expect(outcomeOf(() => assertAllowed(b, 'update', 'Observation', obs('A')))).toEqual([403, 'forbidden']);
    expect(outcomeOf(() => assertAllowed(b, 'create', 'Observation', obs('A')))).toEqual([403, 'forbidden']);
    expect(outcomeOf(() => assertAllowed(b, 'read', 'ValueSet', { resourceType: 'ValueSet', status: 'active' }))).toEqual([403, 'forbidden']);
    const lab = ctxOf(client('system/DocumentReference.c'));
    expect(outcomeOf(() => assertAllowed(lab, 'read', 'Observation', obs('A')))).toEqual([403, 'forbidden']);
    expect(outcomeOf(() => assertAllowed(b, 'read', 'Observation', obs('B')))).toEqual([200]);
  });
});
