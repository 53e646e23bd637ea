/**
 * Fixtures of the access oracle test (issue 11, test/access/oracle.test.ts): the callers, the resources each
 * cell targets (own, other, deleted-other, nonexistent), the comparison of two answers, and the admin's view
 * of the victim's record before and after a write.
 */
import { randomUUID } from 'node:crypto';
import type { TestResponse, TestServer } from '../helpers/server';
import { basic, form, json, randomCpf, signUp, signUpPractitioner, tokensFor } from '../auth/helpers';

export const CPF_SYSTEM = 'http://rnds.saude.gov.br/fhir/r4/NamingSystem/cpf';
/** Codes the test makes up: each target gets a code no other resource has (`code=<CODE_SYSTEM>|<code>`). */
export const CODE_SYSTEM = 'http://example.org/fhir/CodeSystem/oracle';
export const CATEGORY_SYSTEM = 'http://terminology.hl7.org/CodeSystem/observation-category';
export const LAB_SCOPE = `system/Observation.rs?category=${CATEGORY_SYSTEM}|laboratory`;

/** Patients whose records the cells touch: the caller's own and the victim's (the other patient). */
export interface People {
  a: { id: string; cpf: string; email: string };
  b: { id: string; cpf: string; email: string };
}

export interface Caller {
  name: string;
  token: string;
  /** The patient whose record the caller reaches (patient callers), used as the subject of what they write. */
  self?: string;
  /** The other patient: what the caller must not be able to tell from nothing. */
  victim: string;
  /** SMART letters the caller holds for a type ('' = none). */
  letters(type: string): string;
  /** Where the admin puts a resource in the caller's reach; undefined when the caller reaches none of the type. */
  own?(type: string): { patient: string; category?: string } | undefined;
  /** Whether the caller's reach, for this type, legitimately creates in the victim's compartment (a lab pushing documents). */
  writesForAnyone?(type: string): boolean;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Resource = Record<string, any>;

export const subjectRef = (patient: string) => ({ reference: `Patient/${patient}` });
export const coding = (code: string) => ({ coding: [{ system: CODE_SYSTEM, code }] });

export function observation(patient: string, code: string, category = 'vital-signs'): Resource {
  return {
    resourceType: 'Observation',
    status: 'final',
    category: [{ coding: [{ system: CATEGORY_SYSTEM, code: category }] }],
    code: coding(code),
    subject: subjectRef(patient),
    valueQuantity: { value: 72, unit: 'beats/min', system: 'http://unitsofmeasure.org', code: '/min' },
  };
}

export function condition(patient: string, code: string): Resource {
  return {
    resourceType: 'Condition',
    clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] },
    code: coding(code),
    subject: subjectRef(patient),
  };
}

export function documentReference(patient: string, code: string): Resource {
  return {
    resourceType: 'DocumentReference',
    status: 'current',
    type: coding(code),
    subject: subjectRef(patient),
    content: [{ attachment: { contentType: 'text/plain', title: 'result.txt' } }],
  };
}

export function encounter(patient: string): Resource {
  return {
    resourceType: 'Encounter',
    status: 'finished',
    class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
    subject: subjectRef(patient),
  };
}

export const admin = async (s: TestServer) => ({ authorization: `Bearer ${await s.adminToken()}` });

export async function adminCreate(s: TestServer, body: Resource): Promise<Resource> {
  const res = await s.request('POST', `/fhir/${body.resourceType}`, body, await admin(s));
  if (res.status !== 201) throw new Error(`admin create ${body.resourceType}: ${res.status} ${res.text}`);
  return res.body;
}

export async function adminDelete(s: TestServer, type: string, id: string): Promise<void> {
  const res = await s.request('DELETE', `/fhir/${type}/${id}`, undefined, await admin(s));
  if (res.status >= 300) throw new Error(`admin delete ${type}/${id}: ${res.status} ${res.text}`);
}

/**
 * A resource of the type in the patient's record, created by the admin. A Binary gets its access from a
 * DocumentReference of that patient (`securityContext`, https://hl7.org/fhir/R4/binary.html#security).
 */
export async function makeResource(s: TestServer, type: string, patient: string, code = randomUUID(), category?: string): Promise<Resource> {
  switch (type) {
    case 'Observation':
      return adminCreate(s, observation(patient, code, category));
    case 'Condition':
      return adminCreate(s, condition(patient, code));
    case 'DocumentReference':
      return adminCreate(s, documentReference(patient, code));
    case 'Binary': {
      const doc = await adminCreate(s, documentReference(patient, randomUUID()));
      return adminCreate(s, {
        resourceType: 'Binary',
        contentType: 'text/plain',
        data: Buffer.from('potassium 4.1 mmol/L').toString('base64'),
        securityContext: { reference: `DocumentReference/${doc.id}` },
      });
    }
    default:
      throw new Error(`no fixture for ${type}`);
  }
}

export async function clientToken(s: TestServer, scope: string): Promise<string> {
  const id = `oracle-${randomUUID()}`;
  const reg = await json(s, '/auth/clients', { client_id: id, client_name: id, token_endpoint_auth_method: 'client_secret_basic', scope }, await admin(s));
  if (reg.status !== 201) throw new Error(`client ${scope}: ${reg.status} ${reg.text}`);
  const res = await form(s, '/oauth2/token', { grant_type: 'client_credentials', scope }, { authorization: basic(id, reg.body.client_secret) });
  if (res.status !== 200) throw new Error(`client token ${scope}: ${res.status} ${res.text}`);
  if (res.body.scope !== scope) throw new Error(`client ${scope} was granted ${res.body.scope}`);
  return res.body.access_token;
}

async function patientToken(s: TestServer, email: string, scopes: string): Promise<string> {
  const t = await tokensFor(s, email, `launch/patient openid fhirUser ${scopes}`);
  for (const want of scopes.split(' ')) if (!t.scope.split(' ').includes(want)) throw new Error(`patient was not granted ${want}: ${t.scope}`);
  return t.access_token;
}

/** Letters of a `patient/` or `user/` scope set like 'patient/Observation.rs', for one type. */
function lettersOf(scopes: string[], type: string): string {
  const out = new Set<string>();
  for (const s of scopes) {
    const m = /^(?:patient|user|system)\/([A-Za-z*]+)\.([cruds]+)$/.exec(s);
    if (m && (m[1] === '*' || m[1] === type)) for (const l of m[2]) out.add(l);
  }
  return [...'cruds'].filter((l) => out.has(l)).join('');
}

/** Signs up patients A and B, a practitioner and the clients; answers the callers of the grid. */
export async function setUpCallers(s: TestServer): Promise<{ people: People; callers: Caller[] }> {
  const pa = await signUp(s);
  const pb = await signUp(s);
  const people: People = {
    a: { id: pa.patient.replace('Patient/', ''), cpf: pa.cpf, email: pa.email },
    b: { id: pb.patient.replace('Patient/', ''), cpf: pb.cpf, email: pb.email },
  };
  const adminToken = await s.adminToken();
  const dr = await signUpPractitioner(s, adminToken);

  const patientCaller = async (name: string, who: 'a' | 'b', scopes: string): Promise<Caller> => {
    const self = people[who].id;
    const list = scopes.split(' ');
    return {
      name,
      token: await patientToken(s, people[who].email, scopes),
      self,
      victim: who === 'a' ? people.b.id : people.a.id,
      letters: (type) => lettersOf(list, type),
      own: () => ({ patient: self }),
    };
  };

  const callers: Caller[] = [
    await patientCaller('patientA[*.cruds]', 'a', 'patient/*.cruds'),
    await patientCaller('patientA[Observation.rs]', 'a', 'patient/Observation.rs'),
    await patientCaller('patientA[Observation.cu]', 'a', 'patient/Observation.cu'),
    await patientCaller('patientA[Observation.u]', 'a', 'patient/Observation.u'),
    await patientCaller('patientB[*.cruds]', 'b', 'patient/*.cruds'),
    {
      // No Consent is granted here: patients' records are closed to the practitioner (CONTRACT section 6).
      name: 'practitioner[user/*.cruds]',
      token: (await tokensFor(s, dr.crm, 'openid fhirUser user/*.cruds')).access_token,
      victim: people.b.id,
      letters: () => '',
    },
    {
      name: 'lab[DocumentReference.c Binary.c]',
      token: await clientToken(s, 'system/DocumentReference.c system/Binary.c'),
      victim: people.b.id,
      letters: (type) => (type === 'DocumentReference' || type === 'Binary' ? 'c' : ''),
      writesForAnyone: (type) => type === 'DocumentReference' || type === 'Binary',
    },
    {
      // v2 constraint: only laboratory Observations (of anyone); a vital-signs Observation of B is "other".
      name: 'client[Observation.rs?category=laboratory]',
      token: await clientToken(s, LAB_SCOPE),
      victim: people.b.id,
      letters: (type) => (type === 'Observation' ? 'rs' : ''),
      own: (type) => (type === 'Observation' ? { patient: people.b.id, category: 'laboratory' } : undefined),
    },
  ];
  return { people, callers };
}

// ---------------------------------------------------------------------------------------------------------
// Answers and their comparison

/** What a client can see of an answer, with the ids and codes the test chose replaced by placeholders. */
export interface Answer {
  status: number;
  etag: string | null;
  lastModified: boolean;
  location: string | null;
  contentType: string | null;
  retryAfter: boolean;
  body: string;
}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;
const INSTANT_KEYS = new Set(['lastUpdated', 'timestamp', 'lastModified']);

function dropInstants(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(dropInstants);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = INSTANT_KEYS.has(k) && typeof v === 'string' ? '<instant>' : dropInstants(v);
    return out;
  }
  return value;
}

/**
 * `chosen`: values the test put into the request (the target id, its code, a CPF) -> one placeholder.
 * `keep`: ids of resources of the victim (and the caller), left as they are: an answer that names one of
 * them differs from the answer for nothing. Every other UUID is one the server made up (a new resource's id,
 * a transaction entry's fullUrl) and becomes `<uuid>`.
 */
export function answer(res: TestResponse, chosen: string[], keep: ReadonlySet<string>): Answer {
  const clean = (text: string) => {
    for (const c of chosen) if (c) text = text.split(c).join('<chosen>');
    return text.replace(UUID, (u) => (keep.has(u.toLowerCase()) ? u : '<uuid>'));
  };
  let body = clean(res.text);
  try {
    if (body) body = JSON.stringify(dropInstants(JSON.parse(body)));
  } catch {
    // not JSON: compared as text
  }
  const location = res.headers.get('location');
  return {
    status: res.status,
    etag: res.headers.get('etag'),
    lastModified: res.headers.has('last-modified'),
    location: location === null ? null : clean(location),
    contentType: res.headers.get('content-type'),
    retryAfter: res.headers.has('retry-after'),
    body,
  };
}

/** One line per answer for the report. */
export function brief(a: Answer): string {
  const headers = [a.etag && `ETag ${a.etag}`, a.lastModified && 'Last-Modified', a.location && `Location ${a.location}`].filter(Boolean).join(', ');
  return `${a.status}${headers ? ` [${headers}]` : ''} ${a.body.slice(0, 300)}`;
}

// ---------------------------------------------------------------------------------------------------------
// The victim's record, as the admin sees it

const COMPARTMENT_TYPES = ['Observation', 'Condition', 'DocumentReference', 'Encounter'];

/**
 * Every version of the victim's resources the cell made (history as the admin reads it) and how many
 * resources of each type the victim's compartment holds.
 */
export async function victimRecord(s: TestServer, victim: string, resources: { type: string; id: string }[], skip: (type: string) => boolean): Promise<Record<string, unknown>> {
  const auth = await admin(s);
  const out: Record<string, unknown> = {};
  for (const r of resources) {
    const h = await s.request('GET', `/fhir/${r.type}/${r.id}/_history`, undefined, auth);
    out[`${r.type}/${r.id}`] = { status: h.status, versions: (h.body?.entry ?? []).map((e: Resource) => ({ etag: e.response?.etag, resource: e.resource })) };
  }
  for (const type of COMPARTMENT_TYPES) {
    if (skip(type)) continue;
    const res = await s.request('GET', `/fhir/${type}?subject=Patient/${victim}&_summary=count`, undefined, auth);
    if (res.status !== 200) throw new Error(`count ${type}: ${res.status} ${res.text}`);
    out[`count ${type}`] = res.body.total;
  }
  return out;
}

export { randomCpf };
