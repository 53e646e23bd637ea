/**
 * The access oracle (issue 11): what a caller cannot see does not exist for them. For a grid of callers ×
 * interactions, the answer about another patient's resource (and about one deleted) must be the answer
 * about an id that was never used, byte for byte once the values the test chose are replaced by one
 * placeholder: status, ETag, Last-Modified (presence), Location, Content-Type, Retry-After (presence), body.
 * After every write, the victim's record is what it was (every version of the cell's resources, and how many
 * resources their compartment holds). The caller's own resource must still work, so refusing everything
 * cannot pass.
 * https://hl7.org/fhir/R4/security.html#AccessDenied — https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html
 *
 * Each cell is `${caller} ${interaction}`; its tests are named `... other≡nonexistent`,
 * `... deleted-other≡nonexistent`, `... victim unchanged`, `... own` and `... nonexistent`.
 */
import { randomUUID } from 'node:crypto';
import { startServer, type TestResponse, type TestServer } from '../helpers/server';
import { signUp, tokensFor } from '../auth/helpers';
import {
  admin,
  adminCreate,
  adminDelete,
  answer,
  CODE_SYSTEM,
  CPF_SYSTEM,
  condition,
  documentReference,
  encounter,
  makeResource,
  observation,
  randomCpf,
  setUpCallers,
  victimRecord,
  type Answer,
  type Caller,
  type People,
  type Resource,
} from './oracleCallers';

type Kind = 'own' | 'other' | 'deleted-other' | 'nonexistent';

interface Target {
  type: string;
  id: string;
  code: string;
  cpf?: string;
}

interface Call {
  s: TestServer;
  caller: Caller;
  auth: Record<string, string>;
  /** The patient the caller's writes are about: their own, or (for clients) the victim. */
  subject: string;
}

interface Interaction {
  name: string;
  type: string;
  write: boolean;
  /** The kinds the interaction has targets of (default all four). */
  kinds?: Kind[];
  run(c: Call, t: Target): Promise<TestResponse>;
  /** Statuses the caller's own resource may get, given the caller's letters on the type; undefined: not asserted. */
  own?(letters: string): number[] | undefined;
  /** Statuses a never-used id may get, given the letters (e.g. `u` alone never creates); undefined: not asserted. */
  fresh?(letters: string): number[] | undefined;
  /** A PUT to an id: a resource outside the caller's reach holds the id (see the id-in-use rule below). */
  putById?: boolean;
  /** What the request carried that the answer may echo: replaced by one placeholder (default id and code). */
  chosen?(t: Target): string[];
}

const has = (letters: string, need: string) => [...need].every((l) => letters.includes(l));
const when = (need: string, statuses: number[]) => (letters: string) => (has(letters, need) ? statuses : undefined);
const ALL_KINDS: Kind[] = ['own', 'other', 'deleted-other', 'nonexistent'];

// ---------------------------------------------------------------------------------------------------------
// Requests

const send = (c: Call, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
  c.s.request(method, path, body, { ...c.auth, ...headers });
const JSON_PATCH = { 'content-type': 'application/json-patch+json' };
const WRONG_VERSION = { 'if-match': 'W/"7"' };
const codeParam = (t: Target) => `code=${encodeURIComponent(`${CODE_SYSTEM}|${t.code}`)}`;

function bodyFor(type: string, subject: string, code: string): Resource {
  if (type === 'Observation') return observation(subject, code);
  if (type === 'Condition') return condition(subject, code);
  if (type === 'DocumentReference') return documentReference(subject, code);
  throw new Error(`no body for ${type}`);
}

/** A JSON Patch whose `test` holds for the target's real code (`ok`) or never does. */
const patchOps = (t: Target, ok: boolean) => [
  { op: 'test', path: '/code/coding/0/code', value: ok ? t.code : `not-${t.code}` },
  { op: 'replace', path: '/status', value: 'amended' },
];

const transaction = (c: Call, entry: Resource) =>
  send(c, 'POST', '/fhir', { resourceType: 'Bundle', type: 'transaction', entry: [entry] });

/** A JSON Patch travels in a transaction as a Binary (https://hl7.org/fhir/R4/http.html#patch). */
const patchBinary = (ops: unknown) => ({
  resourceType: 'Binary',
  contentType: 'application/json-patch+json',
  data: Buffer.from(JSON.stringify(ops)).toString('base64'),
});

function readFamily(type: string): Interaction[] {
  const path = (t: Target) => `/fhir/${type}/${t.id}`;
  const suffix = type === 'Observation' ? '' : ` ${type}`;
  const r = (statuses: number[]) => when('r', statuses);
  return [
    { name: `read${suffix}`, type, write: false, run: (c, t) => send(c, 'GET', path(t)), own: r([200]) },
    { name: `vread 1${suffix}`, type, write: false, run: (c, t) => send(c, 'GET', `${path(t)}/_history/1`), own: r([200]) },
    { name: `vread 99${suffix}`, type, write: false, run: (c, t) => send(c, 'GET', `${path(t)}/_history/99`), own: r([404]) },
    { name: `history-instance${suffix}`, type, write: false, run: (c, t) => send(c, 'GET', `${path(t)}/_history`), own: r([200]) },
    { name: `read _elements${suffix}`, type, write: false, run: (c, t) => send(c, 'GET', `${path(t)}?_elements=status`), own: r([200]) },
    { name: `read _summary${suffix}`, type, write: false, run: (c, t) => send(c, 'GET', `${path(t)}?_summary=true`), own: r([200]) },
    {
      name: `conditional read If-None-Match${suffix}`,
      type,
      write: false,
      run: (c, t) => send(c, 'GET', path(t), undefined, { 'if-none-match': 'W/"1"' }),
      own: r([304]),
    },
    { name: `$validate POST instance${suffix}`, type, write: false, run: (c, t) => send(c, 'POST', `${path(t)}/$validate`), own: r([200]) },
    { name: `$validate GET instance${suffix}`, type, write: false, run: (c, t) => send(c, 'GET', `${path(t)}/$validate`), own: r([200]) },
  ];
}

const observationWrites: Interaction[] = [
  {
    name: 'update',
    type: 'Observation',
    write: true,
    putById: true,
    run: (c, t) => send(c, 'PUT', `/fhir/Observation/${t.id}`, { ...observation(c.subject, t.code), id: t.id }),
    own: when('u', [200]),
    // `u` alone never creates: create-on-update needs `c` (issue 11, item 4).
    fresh: (l) => (has(l, 'cu') ? [201] : has(l, 'u') ? [403] : undefined),
  },
  {
    name: 'update If-Match wrong',
    type: 'Observation',
    write: true,
    run: (c, t) => send(c, 'PUT', `/fhir/Observation/${t.id}`, { ...observation(c.subject, t.code), id: t.id }, WRONG_VERSION),
    own: when('u', [412]),
  },
  {
    name: 'patch test holds',
    type: 'Observation',
    write: true,
    run: (c, t) => send(c, 'PATCH', `/fhir/Observation/${t.id}`, patchOps(t, true), JSON_PATCH),
    own: when('u', [200]),
  },
  {
    name: 'patch test fails',
    type: 'Observation',
    write: true,
    run: (c, t) => send(c, 'PATCH', `/fhir/Observation/${t.id}`, patchOps(t, false), JSON_PATCH),
    own: when('u', [422]),
  },
  {
    name: 'patch If-Match wrong',
    type: 'Observation',
    write: true,
    run: (c, t) => send(c, 'PATCH', `/fhir/Observation/${t.id}`, patchOps(t, true), { ...JSON_PATCH, ...WRONG_VERSION }),
    own: when('u', [412]),
  },
  { name: 'delete', type: 'Observation', write: true, run: (c, t) => send(c, 'DELETE', `/fhir/Observation/${t.id}`), own: when('d', [200, 204]) },
  {
    name: 'delete If-Match wrong',
    type: 'Observation',
    write: true,
    run: (c, t) => send(c, 'DELETE', `/fhir/Observation/${t.id}`, undefined, WRONG_VERSION),
    own: when('d', [412]),
  },
  {
    name: 'conditional create If-None-Exist _id',
    type: 'Observation',
    write: true,
    run: (c, t) => send(c, 'POST', '/fhir/Observation', observation(c.subject, t.code), { 'if-none-exist': `_id=${t.id}` }),
    own: when('cs', [200]),
  },
  {
    name: 'conditional create If-None-Exist code',
    type: 'Observation',
    write: true,
    run: (c, t) => send(c, 'POST', '/fhir/Observation', observation(c.subject, t.code), { 'if-none-exist': codeParam(t) }),
    own: when('cs', [200]),
  },
  {
    name: 'conditional update _id',
    type: 'Observation',
    write: true,
    run: (c, t) => send(c, 'PUT', `/fhir/Observation?_id=${t.id}`, observation(c.subject, t.code)),
    own: when('us', [200]),
    fresh: (l) => (has(l, 'cus') ? [201] : has(l, 'u') && !has(l, 'c') ? [400, 403, 404, 412] : undefined),
  },
  {
    name: 'conditional update code',
    type: 'Observation',
    write: true,
    run: (c, t) => send(c, 'PUT', `/fhir/Observation?${codeParam(t)}`, observation(c.subject, t.code)),
    own: when('us', [200]),
    fresh: (l) => (has(l, 'cus') ? [201] : has(l, 'u') && !has(l, 'c') ? [400, 403, 404, 412] : undefined),
  },
  {
    name: 'conditional patch _id',
    type: 'Observation',
    write: true,
    run: (c, t) => send(c, 'PATCH', `/fhir/Observation?_id=${t.id}`, patchOps(t, true), JSON_PATCH),
    own: when('us', [200]),
  },
  {
    name: 'conditional patch code',
    type: 'Observation',
    write: true,
    run: (c, t) => send(c, 'PATCH', `/fhir/Observation?${codeParam(t)}`, patchOps(t, false), JSON_PATCH),
    own: when('us', [422]),
  },
  {
    name: 'conditional delete _id',
    type: 'Observation',
    write: true,
    run: (c, t) => send(c, 'DELETE', `/fhir/Observation?_id=${t.id}`),
    own: when('ds', [200, 204]),
  },
  {
    name: 'conditional delete code',
    type: 'Observation',
    write: true,
    run: (c, t) => send(c, 'DELETE', `/fhir/Observation?${codeParam(t)}`),
    own: when('ds', [200, 204]),
  },
  {
    name: 'transaction conditional create code',
    type: 'Observation',
    write: true,
    run: (c, t) =>
      transaction(c, { fullUrl: `urn:uuid:${randomUUID()}`, resource: observation(c.subject, t.code), request: { method: 'POST', url: 'Observation', ifNoneExist: codeParam(t) } }),
    own: when('cs', [200]),
  },
  {
    name: 'transaction conditional update _id',
    type: 'Observation',
    write: true,
    run: (c, t) => transaction(c, { resource: observation(c.subject, t.code), request: { method: 'PUT', url: `Observation?_id=${t.id}` } }),
    own: when('us', [200]),
  },
  {
    name: 'transaction conditional patch _id',
    type: 'Observation',
    write: true,
    run: (c, t) => transaction(c, { resource: patchBinary(patchOps(t, true)), request: { method: 'PATCH', url: `Observation?_id=${t.id}` } }),
    own: when('us', [200]),
  },
  {
    name: 'transaction conditional delete code',
    type: 'Observation',
    write: true,
    run: (c, t) => transaction(c, { request: { method: 'DELETE', url: `Observation?${codeParam(t)}` } }),
    own: when('ds', [200]),
  },
  {
    // Referential integrity: a reference to another patient's resource is refused exactly as one to nothing.
    name: 'create referencing Observation/<id>',
    type: 'Observation',
    write: true,
    run: (c, t) => send(c, 'POST', '/fhir/Observation', { ...observation(c.subject, t.code), hasMember: [{ reference: `Observation/${t.id}` }] }),
    own: when('cr', [201]),
  },
];

/** Conditional references (https://hl7.org/fhir/R4/http.html#trules) to a Patient by CPF. */
const cpfReferences: Interaction[] = [
  {
    name: 'create subject Patient?identifier=cpf',
    type: 'Patient',
    write: true,
    kinds: ['own', 'other', 'nonexistent'],
    chosen: (t) => [t.cpf!, t.code],
    run: (c, t) => send(c, 'POST', '/fhir/Observation', { ...observation(c.subject, t.code), subject: { reference: `Patient?identifier=${CPF_SYSTEM}|${t.cpf}` } }),
  },
  {
    name: 'transaction create subject Patient?identifier=cpf',
    type: 'Patient',
    write: true,
    kinds: ['own', 'other', 'nonexistent'],
    chosen: (t) => [t.cpf!, t.code],
    run: (c, t) =>
      transaction(c, {
        fullUrl: `urn:uuid:${randomUUID()}`,
        resource: { ...observation(c.subject, t.code), subject: { reference: `Patient?identifier=${CPF_SYSTEM}|${t.cpf}` } },
        request: { method: 'POST', url: 'Observation' },
      }),
  },
];

const otherTypes: Interaction[] = [
  ...readFamily('Condition').slice(0, 4),
  {
    name: 'update Condition',
    type: 'Condition',
    write: true,
    putById: true,
    run: (c, t) => send(c, 'PUT', `/fhir/Condition/${t.id}`, { ...condition(c.subject, t.code), id: t.id }),
    own: when('u', [200]),
  },
  { name: 'delete Condition', type: 'Condition', write: true, run: (c, t) => send(c, 'DELETE', `/fhir/Condition/${t.id}`), own: when('d', [200, 204]) },
  {
    name: 'conditional create If-None-Exist code Condition',
    type: 'Condition',
    write: true,
    run: (c, t) => send(c, 'POST', '/fhir/Condition', condition(c.subject, t.code), { 'if-none-exist': codeParam(t) }),
    own: when('cs', [200]),
  },
  ...readFamily('DocumentReference').slice(0, 1),
  {
    // A lab learns nothing about whether a person has a document of a type.
    name: 'conditional create If-None-Exist patient+type DocumentReference',
    type: 'DocumentReference',
    write: true,
    run: (c, t) =>
      send(c, 'POST', '/fhir/DocumentReference', documentReference(c.subject, t.code), {
        'if-none-exist': `patient=Patient/${c.subject}&type=${encodeURIComponent(`${CODE_SYSTEM}|${t.code}`)}`,
      }),
    own: when('cs', [200]),
  },
  // A Binary has the access of its securityContext (https://hl7.org/fhir/R4/binary.html#security).
  ...readFamily('Binary').slice(0, 4),
];

const INTERACTIONS: Interaction[] = [...readFamily('Observation'), ...observationWrites, ...cpfReferences, ...otherTypes];

const CALLERS = [
  'patientA[*.cruds]',
  'patientA[Observation.rs]',
  'patientA[Observation.cu]',
  'patientA[Observation.u]',
  'patientB[*.cruds]',
  'practitioner[user/*.cruds]',
  'lab[DocumentReference.c Binary.c]',
  'client[Observation.rs?category=laboratory]',
];

// ---------------------------------------------------------------------------------------------------------

let s: TestServer;
let people: People;
const callers = new Map<string, Caller>();

beforeAll(async () => {
  s = await startServer();
  const set = await setUpCallers(s);
  people = set.people;
  for (const c of set.callers) callers.set(c.name, c);
  expect([...callers.keys()]).toEqual(CALLERS);
}, 120_000);
afterAll(() => s?.close());

const cpfOf = (patient: string) => (patient === people.a.id ? people.a.cpf : people.b.cpf);
const callOf = (caller: Caller): Call => ({ s, caller, auth: { authorization: `Bearer ${caller.token}` }, subject: caller.self ?? caller.victim });

interface Targets {
  targets: Partial<Record<Kind, Target>>;
  /** The victim's resources the cell made (the twin shares the other's code, so criteria by code match two). */
  victims: { type: string; id: string }[];
  ownIds: string[];
}

/** The cell's targets, created by the admin. Read-only cells of one caller and type share theirs. */
async function makeTargets(caller: Caller, ix: Interaction): Promise<Targets> {
  const kinds = ix.kinds ?? ALL_KINDS;
  const targets: Partial<Record<Kind, Target>> = {};
  const victims: { type: string; id: string }[] = [];
  const ownIds: string[] = [];
  if (ix.type === 'Patient') {
    targets.other = { type: 'Patient', id: caller.victim, cpf: cpfOf(caller.victim), code: randomUUID() };
    targets.nonexistent = { type: 'Patient', id: randomUUID(), cpf: randomCpf(), code: randomUUID() };
    if (caller.self) targets.own = { type: 'Patient', id: caller.self, cpf: cpfOf(caller.self), code: randomUUID() };
    return { targets, victims, ownIds };
  }
  const code = randomUUID();
  const other = await makeResource(s, ix.type, caller.victim, code);
  targets.other = { type: ix.type, id: other.id, code };
  victims.push({ type: ix.type, id: other.id });
  if (ix.write && ix.type !== 'Binary') {
    const twin = await makeResource(s, ix.type, caller.victim, code);
    victims.push({ type: ix.type, id: twin.id });
  }
  if (kinds.includes('deleted-other')) {
    const deletedCode = randomUUID();
    const deleted = await makeResource(s, ix.type, caller.victim, deletedCode);
    await adminDelete(s, ix.type, deleted.id);
    targets['deleted-other'] = { type: ix.type, id: deleted.id, code: deletedCode };
    victims.push({ type: ix.type, id: deleted.id });
  }
  targets.nonexistent = { type: ix.type, id: randomUUID(), code: randomUUID() };
  const where = caller.own?.(ix.type);
  if (where && kinds.includes('own')) {
    const ownCode = randomUUID();
    const own = await makeResource(s, ix.type, where.patient, ownCode, where.category);
    targets.own = { type: ix.type, id: own.id, code: ownCode };
    ownIds.push(own.id);
  }
  return { targets, victims, ownIds };
}

const shared = new Map<string, Promise<Targets>>();
function targetsFor(caller: Caller, ix: Interaction): Promise<Targets> {
  if (ix.write) return makeTargets(caller, ix);
  const key = `${caller.name} ${ix.type}`;
  if (!shared.has(key)) shared.set(key, makeTargets(caller, ix));
  return shared.get(key)!;
}

async function ownCount(caller: Caller): Promise<number | undefined> {
  if (!caller.self) return undefined;
  const res = await s.request('GET', `/fhir/Observation?subject=Patient/${caller.self}&_summary=count`, undefined, await admin(s));
  return res.body?.total;
}

/**
 * The one place an invisible resource may still change an answer (issue 11, item 2, and src/access/visible.ts):
 * a create-on-update (PUT) to an id another resource holds cannot create, since two resources cannot share an
 * id. Where the never-used id was created (201), the other's id may answer 409, telling only that the id is
 * taken: no version, no Last-Modified, no Location, nothing of the holder. Server ids are UUID v7 (74 random
 * bits), so another patient's id is not something a caller can guess.
 */
function idInUse(got: Answer, nothing: Answer, victim: string): boolean {
  return nothing.status === 201 && got.status === 409 && !got.etag && !got.lastModified && !got.location && !got.body.includes(victim);
}

const cells = CALLERS.flatMap((caller) => INTERACTIONS.map((ix) => [caller, ix.name, ix] as const));

describe.each(cells)('%s %s', (callerName, ixName, ix) => {
  const kinds = ix.kinds ?? ALL_KINDS;
  const answers: Partial<Record<Kind, Answer>> = {};
  const raw: Partial<Record<Kind, TestResponse>> = {};
  let before: unknown;
  let after: unknown;
  let ownBefore: number | undefined;
  let ownAfter: number | undefined;
  let caller: Caller;
  let letters = '';
  let cell: Targets;

  beforeAll(async () => {
    caller = callers.get(callerName)!;
    letters = caller.letters(ix.type === 'Patient' ? 'Observation' : ix.type);
    cell = await targetsFor(caller, ix);
    const keep = new Set([...cell.victims.map((v) => v.id), ...cell.ownIds, people.a.id, people.b.id].map((x) => x.toLowerCase()));
    const skip = (type: string) => caller.writesForAnyone?.(type) ?? false;
    if (ix.write) before = await victimRecord(s, caller.victim, cell.victims, skip);
    const creates = ix.write && !has(letters, 'c');
    if (creates) ownBefore = await ownCount(caller);
    const c = callOf(caller);
    for (const kind of ['nonexistent', 'other', 'deleted-other', 'own'] as Kind[]) {
      const t = cell.targets[kind];
      if (!t || !kinds.includes(kind)) continue;
      raw[kind] = await ix.run(c, t);
      answers[kind] = answer(raw[kind]!, ix.chosen?.(t) ?? [t.id, t.code], keep);
      if (kind === 'nonexistent' && creates) ownAfter = await ownCount(caller);
    }
    if (ix.write) after = await victimRecord(s, caller.victim, cell.victims, skip);
  }, 60_000);

  test(`${callerName} ${ixName} other≡nonexistent`, () => {
    if (ix.putById && idInUse(answers.other!, answers.nonexistent!, caller.victim)) return;
    expect(answers.other).toEqual(answers.nonexistent);
  });

  if (kinds.includes('deleted-other')) {
    test(`${callerName} ${ixName} deleted-other≡nonexistent`, () => {
      if (ix.putById && idInUse(answers['deleted-other']!, answers.nonexistent!, caller.victim)) return;
      expect(answers['deleted-other']).toEqual(answers.nonexistent);
    });
  }

  if (ix.write) {
    test(`${callerName} ${ixName} victim unchanged`, () => {
      expect(after).toEqual(before);
    });
    test(`${callerName} ${ixName} creates nothing without c`, () => {
      expect(ownAfter).toBe(ownBefore);
    });
  }

  test(`${callerName} ${ixName} own`, () => {
    const expected = raw.own && ix.own?.(letters);
    if (!expected) return; // the caller reaches none of the type, or holds no letter the interaction needs
    statusIn(raw.own!, expected);
  });

  test(`${callerName} ${ixName} nonexistent`, async () => {
    const expected = ix.fresh?.(letters);
    if (!expected) return;
    statusIn(raw.nonexistent!, expected);
    if (raw.nonexistent!.status >= 400 && ix.putById) {
      const res = await s.request('GET', `/fhir/${ix.type}/${cell.targets.nonexistent!.id}`, undefined, await admin(s));
      expect(res.status).toBe(404);
    }
  });
});

function statusIn(res: TestResponse, expected: number[]): void {
  if (!expected.includes(res.status)) throw new Error(`expected ${expected.join(' or ')}, got ${res.status} ${res.text.slice(0, 400)}`);
}

// ---------------------------------------------------------------------------------------------------------
// History at type and system level: totals and pages count only what the caller sees (issue 11, item 6)

describe.each(CALLERS)('%s history', (callerName) => {
  for (const level of ['type', 'system'] as const) {
    test(`${callerName} history-${level} _total other≡nonexistent`, async () => {
      const caller = callers.get(callerName)!;
      const c = callOf(caller);
      const path = level === 'type' ? '/fhir/Observation/_history?_total=accurate&_count=3' : '/fhir/_history?_total=accurate&_count=3';
      const none = new Set<string>();
      const nothing = await send(c, 'GET', path);
      // the victim's record grows by two versions the caller cannot see
      const written = await adminCreate(s, observation(caller.victim, randomUUID()));
      const res = await s.request('PUT', `/fhir/Observation/${written.id}`, { ...written, status: 'amended' }, await admin(s));
      expect(res.status).toBe(200);
      const other = await send(c, 'GET', path);
      expect(answer(other, [], none)).toEqual(answer(nothing, [], none));

      const where = caller.own?.('Observation');
      if (!where || !has(caller.letters('Observation'), 'r') || nothing.status !== 200) return;
      // own: one more version of the caller's own is counted and shown first
      const mine = await makeResource(s, 'Observation', where.patient, randomUUID(), where.category);
      const own = await send(c, 'GET', path);
      expect({ status: own.status, total: own.body?.total, first: own.body?.entry?.[0]?.resource?.id }).toEqual({
        status: 200,
        total: (nothing.body?.total ?? 0) + 1,
        first: mine.id,
      });
    });
  }
});

describe('history paging under the caller\'s access', () => {
  test('patient[*.cruds] history-type pages full, next only while own versions remain, cursor names no one else', async () => {
    const views: unknown[] = [];
    const victimIds: string[] = [];
    for (const interleave of [true, false]) {
      const p = await signUp(s);
      const self = p.patient.replace('Patient/', '');
      const token = (await tokensFor(s, p.email, 'launch/patient openid fhirUser patient/*.cruds')).access_token;
      for (let i = 0; i < 5; i++) {
        await adminCreate(s, observation(self, randomUUID()));
        if (interleave) for (let j = 0; j < 3; j++) victimIds.push((await adminCreate(s, observation(people.b.id, randomUUID()))).id);
      }
      const pages: unknown[] = [];
      let url: string | undefined = '/fhir/Observation/_history?_count=2&_total=accurate';
      while (url && pages.length < 6) {
        const res: TestResponse = await s.request('GET', url, undefined, { authorization: `Bearer ${token}` });
        expect(res.status).toBe(200);
        const entries: Resource[] = res.body.entry ?? [];
        const next: string | undefined = res.body.link?.find((l: Resource) => l.relation === 'next')?.url;
        if (next) {
          const decoded = [...new URL(next).searchParams.values()].map((v) => `${v} ${Buffer.from(v, 'base64url').toString('utf8')}`).join(' ');
          for (const id of [...victimIds, people.b.id]) expect(decoded).not.toContain(id);
        }
        pages.push({
          size: entries.length,
          total: res.body.total,
          next: Boolean(next),
          subjects: [...new Set(entries.map((e) => e.resource?.subject?.reference === `Patient/${self}` ? 'self' : e.resource?.subject?.reference))],
        });
        url = next;
      }
      views.push(pages);
    }
    const expected = [
      { size: 2, total: 5, next: true, subjects: ['self'] },
      { size: 2, total: 5, next: true, subjects: ['self'] },
      { size: 1, total: 5, next: false, subjects: ['self'] },
    ];
    expect({ interleaved: views[0], alone: views[1] }).toEqual({ interleaved: expected, alone: expected });
  });
});

// ---------------------------------------------------------------------------------------------------------
// Messages never name a resource the caller cannot read (issue 11, item 4)

describe('refused delete', () => {
  test('patientA[*.cruds] delete own Encounter referenced by B\'s Observation: 409 that does not name it', async () => {
    const caller = callers.get('patientA[*.cruds]')!;
    const enc = await adminCreate(s, encounter(people.a.id));
    const obs = await adminCreate(s, { ...observation(people.b.id, randomUUID()), encounter: { reference: `Encounter/${enc.id}` } });
    const res = await send(callOf(caller), 'DELETE', `/fhir/Encounter/${enc.id}`);
    expect({ status: res.status, namesIt: res.text.includes(obs.id), text: res.text }).toEqual({ status: 409, namesIt: false, text: expect.any(String) });
    // and the Encounter is still there
    expect((await s.request('GET', `/fhir/Encounter/${enc.id}`, undefined, await admin(s))).status).toBe(200);
  });
});
