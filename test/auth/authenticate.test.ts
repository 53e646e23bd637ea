/**
 * Bearer verification for the FHIR API: `authenticate(authorization)` accepts only this server's own
 * access tokens and refuses `alg: none`, HS256 keyed with the public key, tampered signatures, expired,
 * revoked, wrong-audience and wrong-issuer tokens with a 401 carrying `WWW-Authenticate: Bearer`.
 */
import { generateKeyPairSync } from 'node:crypto';
import * as jose from 'jose';
import { createAuth, type Auth } from '../../src/auth';
import { privateJwk } from '../../src/auth/keys';
import { createBlobs } from '../../src/blobs';
import type { FhirServices } from '../../src/fhir/context';
import { OperationOutcomeError } from '../../src/fhir/outcomes';
import { startServer, type TestServer } from '../helpers/server';
import { ADMIN_ENV, adminToken, form, signUp, tokensFor } from './helpers';

let server: TestServer;
let auth: Auth;
/** The server's master key (its signing keys are stored wrapped under it). */
const masterKey = () => createBlobs({ ...server.config.blobs, dataDir: server.config.dataDir });
beforeAll(async () => {
  server = await startServer(ADMIN_ENV);
  // A second instance on the same database: what another stateless server (or the FHIR handler) sees.
  auth = createAuth({ config: server.config, db: server.db, fhir: {} as FhirServices, secrets: masterKey() });
});
afterAll(() => server.close());

async function refused(header: string | undefined): Promise<OperationOutcomeError> {
  const err = await auth.authenticate(header).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(OperationOutcomeError);
  const e = err as OperationOutcomeError;
  expect(e.status).toBe(401);
  expect(e.headers['WWW-Authenticate']).toMatch(/^Bearer realm=/);
  expect(e.outcome.issue?.[0].code).toBe('login');
  return e;
}

/** The server's current signing key, straight from the database (to forge tokens it would otherwise accept). */
async function serverKey(): Promise<{ kid: string; alg: string; privateKey: jose.CryptoKey; publicJwk: jose.JWK }> {
  const row = (await server.db.query<{ kid: string; alg: string; private_jwk: jose.JWK; public_jwk: jose.JWK }>(
    'SELECT kid, alg, private_jwk, public_jwk FROM auth_signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC LIMIT 1',
  )).rows[0];
  // Stored wrapped under the master key (src/auth/keys.ts): unwrapped with the server's own.
  const jwk = await privateJwk(masterKey(), row);
  return { kid: row.kid, alg: row.alg, privateKey: (await jose.importJWK(jwk, row.alg)) as jose.CryptoKey, publicJwk: row.public_jwk };
}

async function forge(claims: Record<string, unknown>, over: { exp?: number; aud?: string; iss?: string } = {}) {
  const key = await serverKey();
  const now = Math.floor(Date.now() / 1000);
  return new jose.SignJWT({ client_id: 'healthmed-app', scope: 'patient/*.rs', ...claims })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt' })
    .setIssuer(over.iss ?? server.baseUrl)
    .setAudience(over.aud ?? server.fhirBase)
    .setSubject('00000000-0000-4000-8000-000000000000')
    .setJti(crypto.randomUUID())
    .setIssuedAt(now - 60)
    .setExpirationTime(over.exp ?? now + 600)
    .sign(key.privateKey);
}

describe('authenticate()', () => {
  it('returns the Grant of a patient token', async () => {
    const p = await signUp(server);
    const t = await tokensFor(server, p.email);
    const grant = await auth.authenticate(`Bearer ${t.access_token}`);
    expect(grant).toMatchObject({
      caller: { kind: 'patient', fhirUser: p.patient, clientId: 'healthmed-app' },
      scopes: t.scope.split(' '),
      patient: p.patient.split('/')[1],
      subject: expect.any(String),
      tokenId: expect.any(String),
    });
    expect(grant.expiresAt.getTime()).toBeGreaterThan(Date.now());
  });

  it('returns a client caller for a client_credentials token', async () => {
    const grant = await auth.authenticate(`Bearer ${await adminToken(server)}`);
    expect(grant.caller).toEqual({ kind: 'client', clientId: ADMIN_ENV.BOOTSTRAP_CLIENT_ID });
    expect(grant.scopes).toEqual(['system/*.*']);
    expect(grant.patient).toBeUndefined();
  });

  it('refuses no token, another scheme and garbage (no error="invalid_token" without a token)', async () => {
    expect((await refused(undefined)).headers['WWW-Authenticate']).not.toMatch(/invalid_token/);
    await refused('Basic dXNlcjpwYXNz');
    expect((await refused('Bearer not-a-jwt')).headers['WWW-Authenticate']).toMatch(/error="invalid_token"/);
  });

  it('refuses alg none', async () => {
    const t = await forge({});
    const [, payload] = t.split('.');
    const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt' })).toString('base64url');
    await refused(`Bearer ${header}.${payload}.`);
  });

  it('refuses HS256 keyed with the public key (algorithm confusion)', async () => {
    const key = await serverKey();
    const publicPem = await jose.exportSPKI((await jose.importJWK(key.publicJwk, key.alg)) as jose.CryptoKey);
    for (const secret of [publicPem, JSON.stringify(key.publicJwk)]) {
      const t = await new jose.SignJWT({ client_id: 'healthmed-app', scope: 'system/*.*' })
        .setProtectedHeader({ alg: 'HS256', kid: key.kid, typ: 'at+jwt' })
        .setIssuer(server.baseUrl).setAudience(server.fhirBase).setSubject('x').setJti('j').setIssuedAt().setExpirationTime('5m')
        .sign(Buffer.from(secret));
      await refused(`Bearer ${t}`);
    }
  });

  it('refuses a tampered payload and a tampered signature', async () => {
    const p = await signUp(server);
    const t = await tokensFor(server, p.email);
    const [h, payload, sig] = t.access_token.split('.');
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
    const widened = Buffer.from(JSON.stringify({ ...claims, scope: 'system/*.*' })).toString('base64url');
    await refused(`Bearer ${h}.${widened}.${sig}`);
    const flipped = sig.slice(0, 10) + (sig[10] === 'A' ? 'B' : 'A') + sig.slice(11);
    await refused(`Bearer ${h}.${payload}.${flipped}`);
  });

  it('refuses an expired token, saying so', async () => {
    const t = await forge({}, { exp: Math.floor(Date.now() / 1000) - 30 });
    expect((await refused(`Bearer ${t}`)).message).toMatch(/expired/);
  });

  it('refuses a wrong audience, a wrong issuer, and a token signed by an unknown key', async () => {
    await refused(`Bearer ${await forge({}, { aud: 'https://other.example.com/fhir' })}`);
    await refused(`Bearer ${await forge({}, { iss: 'https://other.example.com' })}`);
    const { privateKey } = await jose.generateKeyPair('ES256');
    const key = await serverKey();
    const t = await new jose.SignJWT({ client_id: 'healthmed-app', scope: 'patient/*.rs' })
      .setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'at+jwt' })
      .setIssuer(server.baseUrl).setAudience(server.fhirBase).setSubject('x').setJti('j').setIssuedAt().setExpirationTime('5m')
      .sign(privateKey);
    await refused(`Bearer ${t}`);
  });

  it('accepts a well-formed token signed by the server key (control for the forgeries above)', async () => {
    const grant = await auth.authenticate(`Bearer ${await forge({})}`);
    expect(grant.scopes).toEqual(['patient/*.rs']);
  });

  it('refuses a revoked token', async () => {
    const p = await signUp(server);
    const t = await tokensFor(server, p.email);
    await auth.authenticate(`Bearer ${t.access_token}`);
    await form(server, '/oauth2/revoke', { token: t.access_token, client_id: 'healthmed-app' });
    expect((await refused(`Bearer ${t.access_token}`)).message).toMatch(/revoked/);
  });
});

describe('JWT_SIGNING_KEY from the environment', () => {
  it('signs RS256 with the given RSA key and publishes it in the JWKS', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    const rsa = await startServer({ ...ADMIN_ENV, JWT_SIGNING_KEY: pem });
    try {
      const token = await adminToken(rsa);
      expect(jose.decodeProtectedHeader(token)).toMatchObject({ alg: 'RS256', typ: 'at+jwt', kid: expect.any(String) });
      const jwks = (await rsa.request('GET', '/oauth2/jwks', undefined, { accept: 'application/json' })).body;
      expect(jwks.keys[0]).toMatchObject({ kty: 'RSA', alg: 'RS256', use: 'sig', kid: jose.decodeProtectedHeader(token).kid });
      expect(jwks.keys[0].d).toBeUndefined();
      const { payload } = await jose.jwtVerify(token, jose.createLocalJWKSet(jwks), { audience: rsa.fhirBase, issuer: rsa.baseUrl });
      expect(payload.scope).toBe('system/*.*');
    } finally {
      await rsa.close();
    }
  });
});

describe('signing key rotation', () => {
  it('signs with a new key once the old one is due, and keeps the old public key while its tokens live', async () => {
    const oldToken = await adminToken(server);
    const oldKid = jose.decodeProtectedHeader(oldToken).kid!;
    // The key reached JWT_KEY_ROTATION_DAYS: the next server to look replaces it.
    await server.db.query("UPDATE auth_signing_keys SET created_at = now() - interval '400 days' WHERE kid = $1", [oldKid]);
    const next = createAuth({ config: server.config, db: server.db, fhir: {} as FhirServices, secrets: masterKey() });
    const newKey = await next.services.keys.current();
    expect(newKey.kid).not.toBe(oldKid);
    const kids = (await next.services.keys.jwks()).keys.map((k) => k.kid);
    expect(kids).toEqual(expect.arrayContaining([oldKid, newKey.kid]));
    expect((await next.authenticate(`Bearer ${oldToken}`)).scopes).toEqual(['system/*.*']);

    // Once every token the old key signed has expired, it leaves the JWKS.
    await server.db.query("UPDATE auth_signing_keys SET retired_at = now() - interval '1 day' WHERE kid = $1", [oldKid]);
    const later = createAuth({ config: server.config, db: server.db, fhir: {} as FhirServices, secrets: masterKey() });
    expect((await later.services.keys.jwks()).keys.map((k) => k.kid)).not.toContain(oldKid);
    await expect(later.authenticate(`Bearer ${oldToken}`)).rejects.toBeInstanceOf(OperationOutcomeError);
  });
});
