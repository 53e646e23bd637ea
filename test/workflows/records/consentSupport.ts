/**
 * The people and records of the sharing tests: a patient who writes their own documents and Consents, and
 * practitioners, signed up and signed in over HTTP; Consents in the contract's shape (CONTRACT section 6).
 */
import type { Consent, ConsentProvision, DocumentReference } from '@medplum/fhirtypes';
import type { TestResponse, TestServer } from '../../helpers/server';
import { signUp, tokensFor } from '../../auth/helpers';
import { doctorWithToken, type Doctor } from '../people';

/** A patient may write their own records and Consents (the app's patient scopes, with every letter). */
export const RECORDS_SCOPE = 'openid fhirUser offline_access launch/patient patient/*.cruds';

export interface RecordsPatient {
  patient: string;
  token: string;
}

export async function recordsPatient(s: TestServer): Promise<RecordsPatient> {
  const p = await signUp(s);
  return { patient: p.patient, token: (await tokensFor(s, p.email, RECORDS_SCOPE)).access_token };
}

export const doctor = (s: TestServer, admin: string): Promise<Doctor> => doctorWithToken(s, admin);

export const CATEGORY_SYSTEM = 'http://fhir.healthmed.com.br/CodeSystem/document-category';
export const category = (code: string) => ({ coding: [{ system: CATEGORY_SYSTEM, code }] });

export function as(s: TestServer, token: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<TestResponse> {
  return s.request(method, path, body, { authorization: `Bearer ${token}`, ...headers });
}

/** A DocumentReference of the patient, written by them; its id. */
export async function document(
  s: TestServer,
  p: RecordsPatient,
  opts: { category?: string; date?: string; author?: string; title?: string } = {},
): Promise<string> {
  const doc: DocumentReference = {
    resourceType: 'DocumentReference',
    status: 'current',
    subject: { reference: p.patient },
    ...(opts.category ? { category: [category(opts.category)] } : {}),
    ...(opts.date ? { date: opts.date } : {}),
    ...(opts.author ? { author: [{ reference: opts.author }] } : {}),
    content: [{ attachment: { contentType: 'text/plain', title: opts.title ?? 'exam.txt' } }],
  };
  const res = await as(s, p.token, 'POST', '/fhir/DocumentReference', doc);
  if (res.status !== 201) throw new Error(`document: ${res.status} ${res.text}`);
  return res.body.id;
}

/** A Binary of the document (its securityContext), written by the patient; its id. */
export async function binaryOf(s: TestServer, p: RecordsPatient, docId: string): Promise<string> {
  const res = await as(s, p.token, 'POST', '/fhir/Binary', {
    resourceType: 'Binary',
    contentType: 'text/plain',
    data: Buffer.from('hemoglobin 14 g/dL').toString('base64'),
    securityContext: { reference: `DocumentReference/${docId}` },
  });
  if (res.status !== 201) throw new Error(`binary: ${res.status} ${res.text}`);
  return res.body.id;
}

export const IRCP = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP' }] };

export const actor = (practitioner: string) => ({ role: IRCP, reference: { reference: practitioner } });
export const instances = (...ids: string[]) => ids.map((id) => ({ meaning: 'instance' as const, reference: { reference: `DocumentReference/${id}` } }));

/** A Consent of the contract's shape with this provision. */
export function consent(patient: string, provision: ConsentProvision, status: Consent['status'] = 'active'): Consent {
  return {
    resourceType: 'Consent',
    status,
    scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
    category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }],
    patient: { reference: patient },
    policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTIN' }] },
    provision,
  };
}

/** `{ start, end }` from now: seconds before and after. */
export function window(fromSeconds: number, toSeconds: number): { start: string; end: string } {
  const now = Date.now();
  return { start: new Date(now + fromSeconds * 1000).toISOString(), end: new Date(now + toSeconds * 1000).toISOString() };
}

export async function share(s: TestServer, p: RecordsPatient, provision: ConsentProvision): Promise<Consent> {
  const res = await as(s, p.token, 'POST', '/fhir/Consent', consent(p.patient, provision));
  if (res.status !== 201) throw new Error(`consent: ${res.status} ${res.text}`);
  return res.body;
}

/** The ids a search matched (not included), and its total. */
export async function matches(s: TestServer, token: string, query: string): Promise<{ ids: string[]; total?: number; included: string[]; next?: string }> {
  const res = await as(s, token, 'GET', `/fhir/${query}`);
  if (res.status !== 200) throw new Error(`search ${query}: ${res.status} ${res.text}`);
  const entries = (res.body.entry ?? []) as { resource: { resourceType: string; id: string }; search?: { mode: string } }[];
  return {
    ids: entries.filter((e) => e.search?.mode === 'match').map((e) => e.resource.id).sort(),
    included: entries.filter((e) => e.search?.mode === 'include').map((e) => `${e.resource.resourceType}/${e.resource.id}`).sort(),
    total: res.body.total,
    next: (res.body.link ?? []).find((l: { relation: string }) => l.relation === 'next')?.url,
  };
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until the instant has passed (plus a margin for the clock's resolution). */
export async function until(iso: string): Promise<void> {
  const wait = Date.parse(iso) - Date.now() + 50;
  if (wait > 0) await sleep(wait);
}
