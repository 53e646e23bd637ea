/**
 * What sharing by Consent costs (issue 13): the same document search, by the patient (their compartment) and by a
 * practitioner the patient shared a category with (author rule OR consent_grant joined to the documents' index
 * rows, plus the per-request lookups of roles, Schedules and grants). Target: practitioner >= 0.5 of patient req/s.
 *
 *   npm run build && npx ts-node --transpile-only bench/consent.ts [--admin-url postgres://postgres@127.0.0.1:5432/postgres]
 *     [--database fhir_bench_consent] [--entry dist/src/main.js] [--port 8093] [--connections 8,32] [--duration 10] [--warmup 15]
 *
 * Data: the patient's 40 documents (30 lab, 10 imaging) among 3,000 of 300 other patients, 50 of whom share their
 * labs with the same practitioner; the patient's Consent shares the lab category, with a nested deny.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { authEnv, authHeaders } from './auth';
import { analyze, recreateDatabase } from './database';
import { measure } from './measure';
import { patientToken } from './patientToken';
import type { Scenario, Target } from './scenarios';
import { startServer } from './servers';

const root = resolve(__dirname, '..');
const FHIR_JSON = 'application/fhir+json';
const CATEGORY = 'http://fhir.healthmed.com.br/CodeSystem/document-category';
const IRCP = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP' }] };

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}

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

async function main(): Promise<void> {
  const adminUrl = arg('admin-url', process.env.BENCH_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
  const port = Number(arg('port', '8093'));
  const connectionCounts = arg('connections', '8,32').split(',').map(Number);
  const duration = Number(arg('duration', '10'));
  const databaseUrl = await recreateDatabase(adminUrl, arg('database', 'fhir_bench_consent'));
  const logDir = mkdtempSync(join(tmpdir(), 'fhir-bench-consent-'));
  const ours = await startServer({
    name: 'ours',
    command: process.execPath,
    args: [arg('entry', 'dist/src/main.js')],
    cwd: root,
    env: { DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn', NODE_ENV: 'production', PORT: String(port), BASE_URL: `http://127.0.0.1:${port}`, DATA_DIR: join(logDir, 'data'), ...authEnv() },
    port,
    readyPath: '/readyz',
    logDir,
  });
  try {
    const fhir = `${ours.url}/fhir`;
    const admin = await authHeaders(ours.url);
    const doctor = await practitionerToken(ours.url, admin);
    const me = await patientToken(ours.url, 'launch/patient patient/*.cruds');
    const patient = `Patient/${me.patientId}`;

    // 300 other patients with 10 documents each; 50 of them share their labs with the doctor
    for (let p = 0; p < 300; p += 10) {
      const patients = Array.from({ length: 10 }, (_, i) => ({ resourceType: 'Patient', id: `bench-p${p + i}`, name: [{ family: `P${p + i}` }] }));
      for (const pt of patients) await call(`${fhir}/Patient/${pt.id}`, 'PUT', admin, pt);
      await batch(fhir, admin, patients.flatMap((pt, i) => Array.from({ length: 10 }, (_, j) => document(`Patient/${pt.id}`, j % 3 === 0 ? 'imaging' : 'lab', i * 10 + j))));
      if (p < 50) await batch(fhir, admin, patients.map((pt) => consent(`Patient/${pt.id}`, doctor.practitioner)));
    }
    // the patient's own 40 documents, and their Consent: labs, but not the first imaging file
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
    console.log(`VACUUM ANALYZE in ${(await analyze(databaseUrl)).toFixed(1)} s`);

    const query = `/fhir/DocumentReference?subject=${patient}&category=${encodeURIComponent(`${CATEGORY}|lab`)}&_count=20`;
    for (const [who, headers] of [['patient', me.headers], ['practitioner', doctor.headers]] as const) {
      const r = await call(ours.url + query, 'GET', headers);
      console.log(`${who}: ${r.status}, ${r.json.entry?.length ?? 0} documents on the first page`);
    }
    const scenario: Scenario = {
      name: 'consent-search',
      target: 0.5,
      needs: 'none',
      expectStatus: 200,
      requests: () => () => ({ method: 'GET', path: query, headers: { accept: FHIR_JSON } }),
    };
    const target = (headers: Record<string, string>): Target => ({ name: 'ours', origin: ours.url, patientPath: '/fhir/Patient', fhirPath: '/fhir', headers });
    // warm-up, unrecorded: V8 needs 15-20 s of load to optimize the server (README "Benchmark")
    const warmup = Number(arg('warmup', '15'));
    await measure(scenario, target(me.headers), { patientIds: [] }, 32, warmup);
    await measure(scenario, target(doctor.headers), { patientIds: [] }, 32, warmup);
    for (const connections of connectionCounts) {
      const patientRun = await measure(scenario, target(me.headers), { patientIds: [] }, connections, duration);
      const doctorRun = await measure(scenario, target(doctor.headers), { patientIds: [] }, connections, duration);
      const fmt = (m: typeof patientRun) => `${m.requestsPerSecond.toFixed(0)} req/s (p50 ${m.p50.toFixed(1)} ms, p95 ${m.p95.toFixed(1)} ms, non-2xx ${m.non2xx})`;
      console.log(`${connections} connections: patient ${fmt(patientRun)}; practitioner ${fmt(doctorRun)}; ratio ${(doctorRun.requestsPerSecond / patientRun.requestsPerSecond).toFixed(2)} (target >= 0.5)`);
    }
  } finally {
    await ours.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
