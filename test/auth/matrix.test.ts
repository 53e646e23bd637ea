/**
 * The authorization matrix over HTTP (CONTRACT section 4): for each role × interaction × resource kind, the
 * status a client sees. Own data = patient A's Observation; other = patient B's Observation; directory = a
 * Practitioner. Every FHIR request needs a valid token; 404 where a 403 would tell that a resource exists.
 */
import { randomUUID } from 'node:crypto';
import { startServer, type TestServer } from '../helpers/server';
import { basic, form, json, signUp, signUpPractitioner, tokensFor } from './helpers';

type Role = 'anonymous' | 'patientA' | 'practitioner' | 'lab' | 'ehr' | 'admin';
type Kind = 'own' | 'other' | 'directory';
type Interaction = 'read' | 'search' | 'create' | 'update' | 'delete' | 'history' | 'transaction' | 'include';

let s: TestServer;
const tokens = {} as Record<Role, string>;
let patientA = '';
let patientB = '';

beforeAll(async () => {
  s = await startServer();
  const admin = await s.adminToken();
  tokens.admin = admin;
  tokens.anonymous = '';
  const a = await signUp(s);
  const b = await signUp(s);
  patientA = a.patient.replace('Patient/', '');
  patientB = b.patient.replace('Patient/', '');
  tokens.patientA = (await tokensFor(s, a.email, 'launch/patient openid fhirUser patient/*.cruds')).access_token;
  const dr = await signUpPractitioner(s, admin);
  tokens.practitioner = (await tokensFor(s, dr.crm, 'openid fhirUser user/*.cruds')).access_token;
  tokens.lab = await clientToken(admin, 'system/DocumentReference.c system/Binary.c');
  tokens.ehr = await clientToken(admin, 'system/*.rs');
});
afterAll(() => s.close());

async function clientToken(admin: string, scope: string): Promise<string> {
  const id = `client-${randomUUID()}`;
  const reg = await json(s, '/auth/clients', { client_id: id, client_name: id, token_endpoint_auth_method: 'client_secret_basic', scope }, { authorization: `Bearer ${admin}` });
  expect(reg.status).toBe(201);
  const res = await form(s, '/oauth2/token', { grant_type: 'client_credentials', scope }, { authorization: basic(id, reg.body.client_secret) });
  expect(res.status).toBe(200);
  return res.body.access_token;
}

const observation = (patient: string) => ({ resourceType: 'Observation', status: 'final', code: { text: 'heart rate' }, subject: { reference: `Patient/${patient}` } });
const practitioner = () => ({ resourceType: 'Practitioner', name: [{ family: 'Lima' }] });

/** A fresh target of each kind, created by the admin, so every cell starts from the same state. */
async function target(kind: Kind): Promise<{ type: string; id: string; body: Record<string, unknown> }> {
  const body = kind === 'directory' ? practitioner() : observation(kind === 'own' ? patientA : patientB);
  const res = await s.request('POST', `/fhir/${body.resourceType}`, body, { authorization: `Bearer ${tokens.admin}` });
  expect(res.status).toBe(201);
  return { type: body.resourceType, id: res.body.id, body: res.body };
}

/** Performs the interaction; answers the status, or for searches "200:n" with n matches. */
async function perform(role: Role, interaction: Interaction, kind: Kind): Promise<string> {
  const auth = { authorization: tokens[role] ? `Bearer ${tokens[role]}` : '' };
  const t = await target(kind);
  const fresh = kind === 'directory' ? practitioner() : observation(kind === 'own' ? patientA : patientB);
  const matches = (body: { entry?: { search?: { mode?: string } }[] }) =>
    (body?.entry ?? []).filter((e) => e.search?.mode === 'match').length;
  switch (interaction) {
    case 'read':
      return String((await s.request('GET', `/fhir/${t.type}/${t.id}`, undefined, auth)).status);
    case 'search': {
      const res = await s.request('GET', `/fhir/${t.type}?_id=${t.id}`, undefined, auth);
      return res.status === 200 ? `200:${matches(res.body)}` : String(res.status);
    }
    case 'create':
      return String((await s.request('POST', `/fhir/${t.type}`, fresh, auth)).status);
    case 'update':
      return String((await s.request('PUT', `/fhir/${t.type}/${t.id}`, { ...t.body, ...fresh, id: t.id }, auth)).status);
    case 'delete':
      return String((await s.request('DELETE', `/fhir/${t.type}/${t.id}`, undefined, auth)).status);
    case 'history':
      return String((await s.request('GET', `/fhir/${t.type}/${t.id}/_history`, undefined, auth)).status);
    case 'transaction': {
      const res = await s.request('POST', '/fhir', { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: fresh, request: { method: 'POST', url: t.type } }] }, auth);
      return String(res.status);
    }
    case 'include': {
      if (kind === 'directory') {
        const res = await s.request('GET', `/fhir/PractitionerRole?practitioner=${t.id}&_include=PractitionerRole:practitioner`, undefined, auth);
        return res.status === 200 ? `200:${(res.body.entry ?? []).length}` : String(res.status);
      }
      const res = await s.request('GET', `/fhir/Observation?_id=${t.id}&_include=Observation:subject`, undefined, auth);
      return res.status === 200 ? `200:${(res.body.entry ?? []).length}` : String(res.status);
    }
  }
}

// Expected: [own, other, directory] per role and interaction.
const MATRIX: Record<Role, Record<Interaction, [string, string, string]>> = {
  anonymous: {
    read: ['401', '401', '401'],
    search: ['401', '401', '401'],
    create: ['401', '401', '401'],
    update: ['401', '401', '401'],
    delete: ['401', '401', '401'],
    history: ['401', '401', '401'],
    transaction: ['401', '401', '401'],
    include: ['401', '401', '401'],
  },
  patientA: {
    read: ['200', '404', '200'],
    search: ['200:1', '200:0', '200:1'],
    create: ['201', '403', '403'],
    update: ['200', '403', '403'],
    delete: ['200', '404', '403'],
    history: ['200', '404', '200'],
    transaction: ['200', '403', '403'],
    include: ['200:2', '200:0', '200:0'],
  },
  // Patients' records reach a practitioner only through Consent (not granted here): the type is closed to them.
  practitioner: {
    read: ['403', '403', '200'],
    search: ['403', '403', '200:1'],
    create: ['403', '403', '403'],
    update: ['403', '403', '403'],
    delete: ['403', '403', '403'],
    history: ['403', '403', '200'],
    transaction: ['403', '403', '403'],
    include: ['403', '403', '200:0'],
  },
  lab: {
    read: ['403', '403', '403'],
    search: ['403', '403', '403'],
    create: ['403', '403', '403'],
    update: ['403', '403', '403'],
    delete: ['403', '403', '403'],
    history: ['403', '403', '403'],
    transaction: ['403', '403', '403'],
    include: ['403', '403', '403'],
  },
  ehr: {
    read: ['200', '200', '200'],
    search: ['200:1', '200:1', '200:1'],
    create: ['403', '403', '403'],
    update: ['403', '403', '403'],
    delete: ['403', '403', '403'],
    history: ['200', '200', '200'],
    transaction: ['403', '403', '403'],
    include: ['200:2', '200:2', '200:0'],
  },
  admin: {
    read: ['200', '200', '200'],
    search: ['200:1', '200:1', '200:1'],
    create: ['201', '201', '201'],
    update: ['200', '200', '200'],
    delete: ['200', '200', '200'],
    history: ['200', '200', '200'],
    transaction: ['200', '200', '200'],
    include: ['200:2', '200:2', '200:0'],
  },
};

const KINDS: Kind[] = ['own', 'other', 'directory'];
const cells = Object.entries(MATRIX).flatMap(([role, row]) =>
  Object.entries(row).flatMap(([interaction, expected]) => KINDS.map((kind, i) => [role, interaction, kind, expected[i]] as const)),
);

test.each(cells)('%s %s %s data -> %s', async (role, interaction, kind, expected) => {
  expect(await perform(role as Role, interaction as Interaction, kind)).toBe(expected);
});

test('a 401 carries a Bearer challenge; the CapabilityStatement needs no token', async () => {
  const res = await s.request('GET', `/fhir/Patient/${patientA}`, undefined, { authorization: '' });
  expect(res.status).toBe(401);
  expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
  expect(res.body.resourceType).toBe('OperationOutcome');
  const bad = await s.request('GET', `/fhir/Patient/${patientA}`, undefined, { authorization: 'Bearer not.a.token' });
  expect(bad.status).toBe(401);
  expect(bad.headers.get('www-authenticate')).toContain('invalid_token');
  expect((await s.request('GET', '/fhir/metadata', undefined, { authorization: '' })).status).toBe(200);
});

test('a patient reads their own Patient and not another', async () => {
  const auth = { authorization: `Bearer ${tokens.patientA}` };
  expect((await s.request('GET', `/fhir/Patient/${patientA}`, undefined, auth)).status).toBe(200);
  expect((await s.request('GET', `/fhir/Patient/${patientB}`, undefined, auth)).status).toBe(404);
  const search = await s.request('GET', '/fhir/Patient', undefined, auth);
  expect(search.body.entry.map((e: { resource: { id: string } }) => e.resource.id)).toEqual([patientA]);
});

test('a lab pushes a DocumentReference for any patient, and re-pushing the same identifier does not duplicate', async () => {
  const auth = { authorization: `Bearer ${tokens.lab}` };
  const doc = {
    resourceType: 'DocumentReference',
    status: 'current',
    identifier: [{ system: 'urn:lab:accession', value: randomUUID() }],
    subject: { reference: `Patient/${patientB}` },
    content: [{ attachment: { contentType: 'application/pdf', url: 'http://lab.example/r.pdf' } }],
  };
  const criteria = `identifier=urn:lab:accession|${doc.identifier[0].value}`;
  const first = await s.request('POST', '/fhir/DocumentReference', doc, { ...auth, 'if-none-exist': criteria });
  expect(first.status).toBe(201);
  const again = await s.request('POST', '/fhir/DocumentReference', doc, { ...auth, 'if-none-exist': criteria });
  expect(again.status).toBe(200);
  const count = await s.request('GET', `/fhir/DocumentReference?${criteria}`, undefined, { authorization: `Bearer ${tokens.admin}` });
  expect(count.body.entry).toHaveLength(1);
  expect((await s.request('GET', `/fhir/DocumentReference/${first.body.id}`, undefined, auth)).status).toBe(403);
});

test('the CapabilityStatement carries the SMART security block', async () => {
  const res = await s.request('GET', '/fhir/metadata', undefined, { authorization: '' });
  const security = res.body.rest[0].security;
  expect(security.service[0].coding[0].code).toBe('SMART-on-FHIR');
  const uris = Object.fromEntries(security.extension[0].extension.map((e: { url: string; valueUri: string }) => [e.url, e.valueUri]));
  expect(uris.token).toBe(`${s.baseUrl}/oauth2/token`);
  expect(uris.authorize).toBe(`${s.baseUrl}/oauth2/authorize`);
});
