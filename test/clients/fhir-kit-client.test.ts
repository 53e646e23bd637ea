/**
 * `fhir-kit-client` (a general-purpose FHIR client from npm) with a SMART Backend Services token: an admin
 * registers a confidential client with its public JWKS, the client signs a `private_key_jwt` assertion
 * (RFC 7523) for `client_credentials`, and fhir-kit-client works with the token it gets, within its scopes.
 * https://hl7.org/fhir/smart-app-launch/backend-services.html
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import * as jose from 'jose';
import type { Client as FhirKitClient } from 'fhir-kit-client';
import { projectRoot } from '../../src/config';
import { startServer, type TestServer } from '../helpers/server';
import { ADMIN_ENV, adminToken, form, json, signUp } from '../auth/helpers';

/**
 * fhir-kit-client 2 ships ES modules only, and its package exports only an `import` condition, so neither Jest's
 * module registry nor Node's require by name loads it: Node's own require (which loads ES modules from 20.19)
 * takes the file, as test/helpers/jose.cjs does for jose.
 */
const { Client } = process
  .getBuiltinModule('node:module')
  .createRequire(__filename)(join(projectRoot(), 'node_modules/fhir-kit-client/dist/index.js')) as typeof import('fhir-kit-client');

const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

let server: TestServer;
beforeAll(async () => {
  server = await startServer(ADMIN_ENV);
});
afterAll(() => server.close());

interface BackendClient {
  clientId: string;
  alg: 'RS384' | 'ES384';
  kid: string;
  privateKey: jose.CryptoKey;
}

/** Generates a key pair and registers a private_key_jwt client with its public key, as an admin (POST /auth/clients). */
async function registerBackendClient(alg: 'RS384' | 'ES384', scope: string): Promise<BackendClient> {
  const { publicKey, privateKey } = await jose.generateKeyPair(alg, { extractable: true });
  const kid = randomUUID();
  const clientId = `backend-${randomUUID()}`;
  const res = await json(
    server,
    '/auth/clients',
    { client_id: clientId, client_name: 'Lab', token_endpoint_auth_method: 'private_key_jwt', scope, jwks: { keys: [{ ...(await jose.exportJWK(publicKey)), kid, alg, use: 'sig' }] } },
    { authorization: `Bearer ${await adminToken(server)}` },
  );
  expect(res.status).toBe(201);
  expect(res.body).toMatchObject({ client_id: clientId, token_endpoint_auth_method: 'private_key_jwt' });
  return { clientId, alg, kid, privateKey };
}

/** The token endpoint as a client finds it: fhir-kit-client's SMART discovery on the FHIR base. */
async function discoverTokenEndpoint(): Promise<string> {
  const metadata = await new Client({ baseUrl: server.fhirBase }).smartAuthMetadata();
  expect(metadata.tokenUrl).toBeDefined();
  return metadata.tokenUrl!.href;
}

/** client_credentials with a signed assertion (iss = sub = client_id, aud = token endpoint, 5 minutes at most). */
async function backendToken(client: BackendClient, scope: string): Promise<{ access_token: string; scope: string }> {
  const tokenUrl = await discoverTokenEndpoint();
  const assertion = await new jose.SignJWT({ jti: randomUUID() })
    .setProtectedHeader({ alg: client.alg, kid: client.kid, typ: 'JWT' })
    .setIssuer(client.clientId)
    .setSubject(client.clientId)
    .setAudience(tokenUrl)
    .setExpirationTime('4m')
    .sign(client.privateKey);
  const res = await form(server, new URL(tokenUrl).pathname, { grant_type: 'client_credentials', scope, client_assertion_type: ASSERTION_TYPE, client_assertion: assertion });
  expect(res.status).toBe(200);
  expect(res.body.token_type).toBe('Bearer');
  return res.body;
}

function fhirKit(accessToken?: string): FhirKitClient {
  return new Client({ baseUrl: server.fhirBase, customHeaders: accessToken ? { Authorization: `Bearer ${accessToken}` } : {} });
}

/** What fhir-kit-client rejected with: the HTTP status and the body (an OperationOutcome). */
async function refusal(call: Promise<unknown>): Promise<{ status: number; body: { resourceType?: string } }> {
  try {
    await call;
  } catch (err) {
    const { response } = err as { response?: { status: number; data: { resourceType?: string } } };
    if (response) return { status: response.status, body: response.data };
    throw err;
  }
  throw new Error('the request succeeded');
}

/** A lab result a lab pushes for a patient (CONTRACT section 6): the text inline, as base64. */
function labReport(patient: string) {
  return {
    resourceType: 'DocumentReference',
    status: 'current',
    subject: { reference: patient },
    type: { coding: [{ system: 'http://loinc.org', code: '11502-2', display: 'Laboratory report' }] },
    date: new Date().toISOString(),
    content: [{ attachment: { contentType: 'text/plain', title: 'hemograma.txt', data: Buffer.from('Hemoglobina 14,2 g/dL').toString('base64') } }],
  };
}

describe('fhir-kit-client with a SMART Backend Services token', () => {
  it('a lab client holding system/DocumentReference.c creates a DocumentReference, and may not read it', async () => {
    const lab = await registerBackendClient('ES384', 'system/DocumentReference.c');
    const token = await backendToken(lab, 'system/DocumentReference.c');
    expect(token.scope).toBe('system/DocumentReference.c');
    const { patient } = await signUp(server);
    const kit = fhirKit(token.access_token);

    const created = await kit.create({ resourceType: 'DocumentReference', body: labReport(patient) });
    expect(created).toMatchObject({ resourceType: 'DocumentReference', id: expect.any(String), subject: { reference: patient } });

    const read = await refusal(kit.read({ resourceType: 'DocumentReference', id: String(created.id) }));
    expect(read.status).toBe(403);
    expect(read.body.resourceType).toBe('OperationOutcome');
    const search = await refusal(kit.search({ resourceType: 'DocumentReference', searchParams: { _id: String(created.id) } }));
    expect(search.status).toBe(403);
    // Nor anything outside its scopes.
    expect((await refusal(kit.read({ resourceType: 'Patient', id: patient.split('/')[1] }))).status).toBe(403);
  });

  it('an RS384 client holding create and read scopes creates, reads and finds the resource', async () => {
    const ehr = await registerBackendClient('RS384', 'system/DocumentReference.crs system/Patient.r');
    const token = await backendToken(ehr, 'system/DocumentReference.crs system/Patient.r');
    const { patient } = await signUp(server);
    const kit = fhirKit(token.access_token);

    const id = String((await kit.create({ resourceType: 'DocumentReference', body: labReport(patient) })).id);
    const read = await kit.read({ resourceType: 'DocumentReference', id });
    expect(read).toMatchObject({ resourceType: 'DocumentReference', id, subject: { reference: patient } });
    const found = await kit.search({ resourceType: 'DocumentReference', searchParams: { _id: id } });
    expect(found).toMatchObject({ resourceType: 'Bundle', type: 'searchset', entry: [{ resource: { id } }] });
    expect(await kit.read({ resourceType: 'Patient', id: patient.split('/')[1] })).toMatchObject({ resourceType: 'Patient' });
    // A write the scopes do not hold.
    expect((await refusal(kit.update({ resourceType: 'DocumentReference', id, body: { ...read, status: 'superseded' } }))).status).toBe(403);
  });

  it('is refused without a token (401)', async () => {
    const res = await refusal(fhirKit().read({ resourceType: 'Patient', id: 'anything' }));
    expect(res.status).toBe(401);
  });
});
