/**
 * What sharing by Consent costs (issue 13): the same document search, by the patient (their compartment) and by a
 * practitioner the patient shared a category with (author rule OR consent_grant joined to the documents' index
 * rows, plus the per-request read of the practitioner's roles, Schedules and grants). Target: practitioner >= 0.5
 * of the patient's req/s.
 *
 *   npm run bench -- --only consent-search        (scenario `consent-search`, bench/scenarios.ts)
 *
 * Data (`loadConsentData`): the patient's 40 documents (30 lab, 10 imaging) among 3,000 of 300 other patients, 50
 * of whom share their labs with the same practitioner; the patient's Consent shares the lab category, with a nested
 * deny of one imaging file.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { patientToken } from './patientToken';
const FHIR_JSON = 'application/fhir+json';
const CATEGORY = 'http://fhir.healthmed.com.br/CodeSystem/document-category';
const IRCP = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP' }] };

async function call(url: string, method: string, headers: Record<string, string>, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(url, {
    method,
    headers: { accept: FHIR_JSON, ...(body === undefined ? {} : { 'content-type': FHIR_JSON }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

const document = (patient: string, category: string, i: number) => ({
  resourceType: 'DocumentReference',
  status: 'current',
  subject: { reference: patient },
  category: [{ coding: [{ system: CATEGORY, code: category }] }],
  date: new Date(Date.UTC(2025, 0, 1 + (i % 300))).toISOString(),
  content: [{ attachment: { contentType: 'application/pdf', title: `exam-${i}.pdf` } }],
});

const consent = (patient: string, practitioner: string, provision: Record<string, unknown> = {}) => ({
  resourceType: 'Consent',
  status: 'active',
  scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
  category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }],
  patient: { reference: patient },
  policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTIN' }] },
  provision: {
    type: 'permit',
    period: { start: new Date(Date.now() - 3600_000).toISOString(), end: new Date(Date.now() + 24 * 3600_000).toISOString() },
    actor: [{ role: IRCP, reference: { reference: practitioner } }],
    code: [{ coding: [{ system: CATEGORY, code: 'lab' }] }],
    ...provision,
  },
});

async function practitionerToken(origin: string, admin: Record<string, string>): Promise<{ practitioner: string; headers: Record<string, string> }> {
  const crm = `SP-${randomInt(100000, 99999999)}`;
  const password = randomBytes(12).toString('base64url');
  const reg = await call(`${origin}/auth/register`, 'POST', admin, {
    role: 'practitioner',
    crm,
    email: `dr.${randomBytes(6).toString('hex')}@example.com`,
    password,
    name: { given: ['Bench'], family: 'Doutor' },
  });
  if (reg.status !== 201) throw new Error(`practitioner sign-up answered ${reg.status}`);
  const { createHash } = await import('node:crypto');
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const login = await call(`${origin}/auth/login`, 'POST', {}, { login: crm, password, client_id: 'healthmed-app', scope: 'openid fhirUser user/*.cruds', code_challenge: challenge, code_challenge_method: 'S256' });
  if (login.status !== 200) throw new Error(`practitioner login answered ${login.status}`);
  const res = await fetch(`${origin}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code: login.json.code, code_verifier: verifier, client_id: 'healthmed-app' }).toString(),
  });
  const token = (await res.json()) as { access_token: string };
  return { practitioner: reg.json.practitioner, headers: { authorization: `Bearer ${token.access_token}` } };
}

async function batch(fhir: string, admin: Record<string, string>, resources: unknown[]): Promise<void> {
  const res = await call(fhir, 'POST', admin, { resourceType: 'Bundle', type: 'batch', entry: resources.map((resource: any) => ({ resource, request: { method: 'POST', url: resource.resourceType } })) });
  if (res.status !== 200) throw new Error(`batch answered ${res.status}`);
}

/** What the consent-search scenario sends: the same search, with either token. */
export interface ConsentData {
  /** The search path under the origin. */
  path: string;
  patient: Record<string, string>;
  practitioner: Record<string, string>;
}

export async function loadConsentData(origin: string, admin: Record<string, string>): Promise<ConsentData> {
  const fhir = `${origin}/fhir`;
  const doctor = await practitionerToken(origin, admin);
  const me = await patientToken(origin, 'launch/patient patient/*.cruds');
  const patient = `Patient/${me.patientId}`;
  const run = randomBytes(4).toString('hex');

  // 300 other patients with 10 documents each; 50 of them share their labs with the doctor
  for (let p = 0; p < 300; p += 10) {
    const patients = Array.from({ length: 10 }, (_, i) => ({ resourceType: 'Patient', id: `consent-${run}-${p + i}`, name: [{ family: `P${p + i}` }] }));
    for (const pt of patients) await call(`${fhir}/Patient/${pt.id}`, 'PUT', admin, pt);
    await batch(fhir, admin, patients.flatMap((pt, i) => Array.from({ length: 10 }, (_, j) => document(`Patient/${pt.id}`, j % 3 === 0 ? 'imaging' : 'lab', i * 10 + j))));
    if (p < 50) await batch(fhir, admin, patients.map((pt) => consent(`Patient/${pt.id}`, doctor.practitioner)));
  }
  // the patient's own 40 documents, and their Consent: labs, but not one imaging file
  const mine: string[] = [];
  for (let i = 0; i < 40; i++) {
    const res = await call(`${fhir}/DocumentReference`, 'POST', me.headers, document(patient, i < 30 ? 'lab' : 'imaging', i));
    if (res.status !== 201) throw new Error(`document answered ${res.status}`);
    mine.push(res.json.id);
  }
  const shared = await call(`${fhir}/Consent`, 'POST', me.headers, consent(patient, doctor.practitioner, {
    provision: [{ type: 'deny', data: [{ meaning: 'instance', reference: { reference: `DocumentReference/${mine[35]}` } }] }],
  }));
  if (shared.status !== 201) throw new Error(`consent answered ${shared.status}: ${JSON.stringify(shared.json)}`);
  const path = `/fhir/DocumentReference?subject=${patient}&category=${encodeURIComponent(`${CATEGORY}|lab`)}&_count=20`;
  for (const [who, headers] of [['patient', me.headers], ['practitioner', doctor.headers]] as const) {
    const r = await call(origin + path, 'GET', headers);
    const n = r.json?.entry?.length ?? 0;
    if (r.status !== 200 || n !== 20) throw new Error(`the ${who}'s search answered ${r.status} with ${n} documents (20 expected)`);
  }
  return { path, patient: me.headers, practitioner: doctor.headers };
}
