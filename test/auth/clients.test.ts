/**
 * Confidential clients (SMART Backend Services, https://hl7.org/fhir/smart-app-launch/backend-services.html):
 * registration by an admin, client_credentials with private_key_jwt (RFC 7523: RS384/ES384, iss = sub =
 * client_id, aud = token endpoint, exp <= 5 minutes, jti replay refused, JWKS or JWKS URL) and with
 * client_secret_basic (the bootstrap admin client of CONTRACT section 1, and registered clients).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import * as jose from 'jose';
import { startServer, type TestServer } from '../helpers/server';
import { ADMIN_ENV, ADMIN_ID, ADMIN_SECRET, adminToken, basic, form, json, signUp, tokensFor } from './helpers';

const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

let server: TestServer;
beforeAll(async () => {
  server = await startServer(ADMIN_ENV);
});
afterAll(() => server.close());

interface KeyedClient {
  clientId: string;
  alg: 'RS384' | 'ES384';
  privateKey: jose.CryptoKey;
  publicJwk: jose.JWK;
}

async function newKeys(alg: 'RS384' | 'ES384'): Promise<Omit<KeyedClient, 'clientId'>> {
  const { publicKey, privateKey } = await jose.generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await jose.exportJWK(publicKey)), kid: randomUUID(), alg };
  return { alg, privateKey, publicJwk };
}

async function register(body: Record<string, unknown>) {
  return json(server, '/auth/clients', body, { authorization: `Bearer ${await adminToken(server)}` });
}

async function labClient(alg: 'RS384' | 'ES384', scope = 'system/DocumentReference.c system/Binary.c'): Promise<KeyedClient> {
  const keys = await newKeys(alg);
  const clientId = `lab-${randomUUID()}`;
  const res = await register({ client_id: clientId, client_name: 'Lab', token_endpoint_auth_method: 'private_key_jwt', scope, jwks: { keys: [keys.publicJwk] } });
  expect(res.status).toBe(201);
  return { clientId, ...keys };
}

function assertion(c: KeyedClient, claims: { aud?: string; exp?: number; jti?: string; iss?: string; alg?: string } = {}) {
  const now = Math.floor(Date.now() / 1000);
  return new jose.SignJWT({ jti: claims.jti ?? randomUUID() })
    .setProtectedHeader({ alg: claims.alg ?? c.alg, kid: c.publicJwk.kid, typ: 'JWT' })
    .setIssuer(claims.iss ?? c.clientId)
    .setSubject(claims.iss ?? c.clientId)
    .setAudience(claims.aud ?? `${server.baseUrl}/oauth2/token`)
    .setExpirationTime(claims.exp ?? now + 240)
    .sign(c.privateKey);
}

const backendToken = (jwt: string, scope = 'system/DocumentReference.c') =>
  form(server, '/oauth2/token', { grant_type: 'client_credentials', scope, client_assertion_type: ASSERTION_TYPE, client_assertion: jwt });

describe('client_credentials with private_key_jwt', () => {
  it.each(['RS384', 'ES384'] as const)('issues a system token for an %s client assertion', async (alg) => {
    const lab = await labClient(alg);
    const res = await backendToken(await assertion(lab), 'system/DocumentReference.c system/Binary.c system/Patient.rs');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 900, scope: 'system/DocumentReference.c system/Binary.c' });
    const claims = jose.decodeJwt(res.body.access_token);
    expect(claims).toMatchObject({ sub: lab.clientId, client_id: lab.clientId, aud: server.fhirBase });
    expect(claims.fhirUser).toBeUndefined();
  });

  it('refuses a replayed jti', async () => {
    const lab = await labClient('ES384');
    const jwt = await assertion(lab);
    expect((await backendToken(jwt)).status).toBe(200);
    const replay = await backendToken(jwt);
    expect(replay.status).toBe(401);
    expect(replay.body.error).toBe('invalid_client');
  });

  it('refuses a wrong audience, an expiry more than five minutes ahead, an expired assertion', async () => {
    const lab = await labClient('RS384');
    const now = Math.floor(Date.now() / 1000);
    for (const claims of [{ aud: server.fhirBase }, { exp: now + 3600 }, { exp: now - 60 }]) {
      const res = await backendToken(await assertion(lab, claims));
      expect(res.status).toBe(401);
      expect(res.body.error).toBe('invalid_client');
    }
  });

  it('refuses an assertion signed by a key the client did not register', async () => {
    const lab = await labClient('ES384');
    const stranger = { ...lab, ...(await newKeys('ES384')), publicJwk: { ...lab.publicJwk } };
    expect((await backendToken(await assertion(stranger))).status).toBe(401);
  });

  it('accepts RS384 but refuses RS256 with the same registered RSA key (only RS384 and ES384)', async () => {
    const { privateKey, publicKey } = await jose.generateKeyPair('RS256', { extractable: true });
    const privateJwk = await jose.exportJWK(privateKey);
    const publicJwk = { ...(await jose.exportJWK(publicKey)), kid: randomUUID() };
    const clientId = `lab-${randomUUID()}`;
    expect((await register({ client_id: clientId, token_endpoint_auth_method: 'private_key_jwt', scope: 'system/Binary.c', jwks: { keys: [publicJwk] } })).status).toBe(201);
    const sign = async (alg: string) =>
      new jose.SignJWT({ jti: randomUUID() })
        .setProtectedHeader({ alg, kid: publicJwk.kid })
        .setIssuer(clientId).setSubject(clientId).setAudience(`${server.baseUrl}/oauth2/token`).setExpirationTime('2m')
        .sign(await jose.importJWK(privateJwk, alg));
    expect((await backendToken(await sign('RS256'), 'system/Binary.c')).status).toBe(401);
    expect((await backendToken(await sign('RS384'), 'system/Binary.c')).status).toBe(200);
  });

  it('takes keys from a registered JWKS URL', async () => {
    const keys = await newKeys('ES384');
    const jwksServer: Server = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [keys.publicJwk] }));
    });
    await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
    try {
      const clientId = `ehr-${randomUUID()}`;
      const jwksUri = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks.json`;
      expect((await register({ client_id: clientId, token_endpoint_auth_method: 'private_key_jwt', scope: 'system/*.rs', jwks_uri: jwksUri })).status).toBe(201);
      const res = await backendToken(await assertion({ clientId, ...keys }), 'system/Patient.rs');
      expect(res.status).toBe(200);
      expect(res.body.scope).toBe('system/Patient.rs');
    } finally {
      await new Promise<void>((resolve) => jwksServer.close(() => resolve()));
    }
  });
});

describe('client_credentials with client_secret_basic', () => {
  it('gives the bootstrap admin client system/*.*', async () => {
    const res = await form(server, '/oauth2/token', { grant_type: 'client_credentials', scope: 'system/*.*' }, { authorization: basic(ADMIN_ID, ADMIN_SECRET) });
    expect(res.status).toBe(200);
    expect(res.body.scope).toBe('system/*.*');
  });

  it('refuses a wrong secret with 401 invalid_client and a Basic challenge', async () => {
    const res = await form(server, '/oauth2/token', { grant_type: 'client_credentials', scope: 'system/*.*' }, { authorization: basic(ADMIN_ID, 'wrong') });
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('invalid_client');
    expect(res.headers.get('www-authenticate')).toMatch(/^Basic/);
  });

  it('registers a client with a generated secret, shown once, that then authenticates', async () => {
    const res = await register({ client_name: 'EHR', token_endpoint_auth_method: 'client_secret_basic', scope: 'system/Patient.rs system/Appointment.rs' });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ client_id: expect.any(String), client_secret: expect.any(String), grant_types: ['client_credentials'] });
    const token = await form(server, '/oauth2/token', { grant_type: 'client_credentials', scope: 'system/*.rs' }, { authorization: basic(res.body.client_id, res.body.client_secret) });
    expect(token.status).toBe(200);
    expect(token.body.scope.split(' ').sort()).toEqual(['system/Appointment.rs', 'system/Patient.rs']);
    const none = await form(server, '/oauth2/token', { grant_type: 'client_credentials', scope: 'system/Observation.rs' }, { authorization: basic(res.body.client_id, res.body.client_secret) });
    expect(none.body.error).toBe('invalid_scope');
  });
});

describe('POST /auth/clients', () => {
  it('needs an admin token', async () => {
    expect((await json(server, '/auth/clients', { scope: 'system/*.rs', token_endpoint_auth_method: 'client_secret_basic' })).status).toBe(401);
    const p = await signUp(server);
    const t = await tokensFor(server, p.email);
    const res = await json(server, '/auth/clients', { scope: 'system/*.rs', token_endpoint_auth_method: 'client_secret_basic' }, { authorization: `Bearer ${t.access_token}` });
    expect(res.status).toBe(403);
  });

  it('registers a public client with redirect URIs; it may not use client_credentials', async () => {
    const res = await register({ client_name: 'Portal', redirect_uris: ['https://portal.example.com/cb'], scope: 'openid fhirUser launch/patient patient/*.rs' });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'] });
    expect(res.body.client_secret).toBeUndefined();
    const cc = await form(server, '/oauth2/token', { grant_type: 'client_credentials', scope: 'system/*.rs', client_id: res.body.client_id });
    expect(cc.body.error).toBe('unauthorized_client');
  });

  it.each([
    ['an unknown scope', { scope: 'patient/Observation.xyz' }],
    ['a redirect URI over plain http', { redirect_uris: ['http://portal.example.com/cb'] }],
    ['system scopes on a public client', { scope: 'system/*.rs' }],
    ['private_key_jwt without keys', { token_endpoint_auth_method: 'private_key_jwt', redirect_uris: undefined, grant_types: ['client_credentials'], scope: 'system/*.rs' }],
    ['a private key in the JWKS', { token_endpoint_auth_method: 'private_key_jwt', redirect_uris: undefined, scope: 'system/*.rs', jwks: { keys: [{ kty: 'EC', crv: 'P-384', x: 'a', y: 'b', d: 'c' }] } }],
  ])('answers 400 for %s', async (_label, over) => {
    const res = await register({ redirect_uris: ['https://portal.example.com/cb'], scope: 'openid patient/*.rs', ...over });
    expect(res.status).toBe(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
  });

  it('answers 409 for a taken client_id', async () => {
    const body = { client_id: `dup-${randomUUID()}`, token_endpoint_auth_method: 'client_secret_basic', scope: 'system/*.rs' };
    expect((await register(body)).status).toBe(201);
    expect((await register(body)).status).toBe(409);
  });
});
