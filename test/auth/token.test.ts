/**
 * The token endpoint for people (RFC 6749, RFC 7636, OAuth 2.1): code exchange with PKCE S256, single-use
 * codes, refresh rotation with reuse detection; OpenID Connect id_token and userinfo; revocation (RFC 7009)
 * and introspection (RFC 7662).
 */
import * as jose from 'jose';
import { startServer, type TestServer } from '../helpers/server';
import { ADMIN_ENV, ADMIN_ID, ADMIN_SECRET, PATIENT_SCOPE, adminToken, basic, exchange, form, loginCode, pkce, signUp, signUpPractitioner, tokensFor } from './helpers';

let server: TestServer;
beforeAll(async () => {
  server = await startServer(ADMIN_ENV);
});
afterAll(() => server.close());

async function verify(token: string) {
  const keys = (await server.request('GET', '/oauth2/jwks', undefined, { accept: 'application/json' })).body;
  return jose.jwtVerify(token, jose.createLocalJWKSet(keys));
}

const userinfo = (token: string) => server.request('GET', '/oauth2/userinfo', undefined, { authorization: `Bearer ${token}`, accept: 'application/json' });
const introspect = (token: string) => form(server, '/oauth2/introspect', { token }, { authorization: basic(ADMIN_ID, ADMIN_SECRET) });

describe('authorization_code + PKCE', () => {
  it('exchanges a code for the SMART token response of a patient', async () => {
    const p = await signUp(server);
    const { code, verifier } = await loginCode(server, p.email);
    const res = await exchange(server, code, verifier);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const id = p.patient.split('/')[1];
    expect(res.body).toEqual({
      access_token: expect.any(String),
      token_type: 'Bearer',
      expires_in: 900,
      scope: PATIENT_SCOPE,
      refresh_token: expect.any(String),
      patient: id,
      fhirUser: p.patient,
      id_token: expect.any(String),
    });
    const { payload, protectedHeader } = await verify(res.body.access_token);
    expect(protectedHeader).toMatchObject({ alg: 'ES256', typ: 'at+jwt', kid: expect.any(String) });
    expect(payload).toMatchObject({ iss: server.baseUrl, aud: server.fhirBase, client_id: 'healthmed-app', patient: id, fhirUser: p.patient, scope: PATIENT_SCOPE });
    expect((payload.exp as number) - (payload.iat as number)).toBe(900);
  });

  it('refuses a wrong code_verifier, and the code is spent by the attempt', async () => {
    const p = await signUp(server);
    const { code, verifier } = await loginCode(server, p.email);
    const bad = await exchange(server, code, pkce().verifier);
    expect(bad.status).toBe(400);
    expect(bad.body.error).toBe('invalid_grant');
    expect((await exchange(server, code, verifier)).status).toBe(400);
  });

  it('refuses a missing code_verifier and another client_id', async () => {
    const p = await signUp(server);
    const a = await loginCode(server, p.email);
    const res = await form(server, '/oauth2/token', { grant_type: 'authorization_code', code: a.code, client_id: 'healthmed-app' });
    expect(res.body.error).toBe('invalid_grant');
    const b = await loginCode(server, p.email);
    const other = await exchange(server, b.code, b.verifier, { client_id: 'nobody' });
    expect(other.status).toBe(401);
    expect(other.body.error).toBe('invalid_client');
  });

  it('refuses a code used twice and revokes the tokens of its first use', async () => {
    const p = await signUp(server);
    const { code, verifier } = await loginCode(server, p.email);
    const first = await exchange(server, code, verifier);
    expect(first.status).toBe(200);
    expect((await userinfo(first.body.access_token)).status).toBe(200);
    const second = await exchange(server, code, verifier);
    expect(second.status).toBe(400);
    expect(second.body.error).toBe('invalid_grant');
    expect((await userinfo(first.body.access_token)).status).toBe(401);
    const refresh = await form(server, '/oauth2/token', { grant_type: 'refresh_token', refresh_token: first.body.refresh_token, client_id: 'healthmed-app' });
    expect(refresh.body.error).toBe('invalid_grant');
  });

  it('refuses a redirect_uri the code was not issued for', async () => {
    const p = await signUp(server);
    const { code, verifier } = await loginCode(server, p.email);
    const res = await exchange(server, code, verifier, { redirect_uri: 'http://127.0.0.1:5173/callback' });
    expect(res.body.error).toBe('invalid_grant');
  });

  it('answers unsupported_grant_type and invalid_request in OAuth JSON', async () => {
    const res = await form(server, '/oauth2/token', { grant_type: 'password', client_id: 'healthmed-app' });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'unsupported_grant_type', error_description: expect.any(String) });
    const json = await server.request('POST', '/oauth2/token', '{}', { 'content-type': 'application/json' });
    expect(json.body.error).toBe('invalid_request');
  });
});

describe('scopes granted', () => {
  it('grants a patient only patient/ scopes and identity, never user/ or system/', async () => {
    const p = await signUp(server);
    const t = await tokensFor(server, p.email, 'openid fhirUser patient/Observation.read user/*.cruds system/*.* patient/Appointment.rs?status=booked');
    expect(t.scope.split(' ').sort()).toEqual(['fhirUser', 'openid', 'patient/Appointment.rs?status=booked', 'patient/Observation.read']);
  });

  it('grants a practitioner user/ scopes and no patient/ ones', async () => {
    const dr = await signUpPractitioner(server, await adminToken(server));
    const t = await tokensFor(server, dr.crm, 'openid fhirUser user/*.rs user/Slot.cruds patient/*.rs');
    expect(t.scope.split(' ').sort()).toEqual(['fhirUser', 'openid', 'user/*.rs', 'user/Slot.cruds']);
    expect(t.fhirUser).toBe(dr.practitioner);
    expect(t.patient).toBeUndefined();
    expect(t.refresh_token).toBeUndefined();
  });
});

describe('refresh_token', () => {
  it('rotates: the new refresh token works, the old one is refused and revokes the whole family', async () => {
    const p = await signUp(server);
    const t = await tokensFor(server, p.email);
    const refresh = (token: string) => form(server, '/oauth2/token', { grant_type: 'refresh_token', refresh_token: token, client_id: 'healthmed-app' });
    const r1 = await refresh(t.refresh_token!);
    expect(r1.status).toBe(200);
    expect(r1.body.refresh_token).not.toBe(t.refresh_token);
    expect(r1.body.scope).toBe(t.scope);
    expect(r1.body.patient).toBe(t.patient);
    const r2 = await refresh(r1.body.refresh_token);
    expect(r2.status).toBe(200);

    const reuse = await refresh(t.refresh_token!);
    expect(reuse.status).toBe(400);
    expect(reuse.body.error).toBe('invalid_grant');
    // The family is revoked: the newest refresh token and the access tokens issued in it stop working.
    expect((await refresh(r2.body.refresh_token)).body.error).toBe('invalid_grant');
    expect((await userinfo(r2.body.access_token)).status).toBe(401);
    expect((await userinfo(t.access_token)).status).toBe(401);
  });

  it('may narrow the scope, never widen it', async () => {
    const p = await signUp(server);
    const t = await tokensFor(server, p.email);
    const narrowed = await form(server, '/oauth2/token', { grant_type: 'refresh_token', refresh_token: t.refresh_token!, client_id: 'healthmed-app', scope: 'patient/Observation.rs' });
    expect(narrowed.body.scope).toBe('patient/Observation.rs');
    const wider = await form(server, '/oauth2/token', { grant_type: 'refresh_token', refresh_token: narrowed.body.refresh_token, client_id: 'healthmed-app', scope: 'system/*.*' });
    expect(wider.body.error).toBe('invalid_scope');
  });
});

describe('OpenID Connect', () => {
  it('issues an id_token with iss, sub, aud = client_id, fhirUser, nonce and auth_time', async () => {
    const p = await signUp(server);
    const { verifier, challenge } = pkce();
    const login = await server.request('POST', '/auth/login', {
      login: p.email, password: 'correct horse battery', client_id: 'healthmed-app', scope: 'openid fhirUser patient/*.rs',
      code_challenge: challenge, code_challenge_method: 'S256', nonce: 'n-0S6_WzA2Mj',
    }, { 'content-type': 'application/json' });
    const res = await exchange(server, login.body.code, verifier);
    const { payload, protectedHeader } = await verify(res.body.id_token);
    expect(protectedHeader.typ).toBe('JWT');
    expect(payload).toMatchObject({ iss: server.baseUrl, aud: 'healthmed-app', fhirUser: p.patient, nonce: 'n-0S6_WzA2Mj' });
    expect(payload.sub).toEqual(expect.any(String));
    expect(payload.auth_time).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000));
    const info = await userinfo(res.body.access_token);
    expect(info.status).toBe(200);
    expect(info.body).toEqual({ sub: payload.sub, fhirUser: p.patient });
  });

  it('userinfo needs a token granted openid, and a token at all', async () => {
    const p = await signUp(server);
    const t = await tokensFor(server, p.email, 'patient/*.rs');
    expect(t.id_token).toBeUndefined();
    const res = await userinfo(t.access_token);
    expect(res.status).toBe(403);
    expect(res.body.error).toBe('insufficient_scope');
    const none = await server.request('GET', '/oauth2/userinfo', undefined, { accept: 'application/json' });
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
  });

  it('does not accept an id_token as an access token', async () => {
    const p = await signUp(server);
    const t = await tokensFor(server, p.email);
    expect((await userinfo(t.id_token!)).status).toBe(401);
  });
});

describe('revocation and introspection', () => {
  it('introspects an access token, then reports it inactive once revoked', async () => {
    const p = await signUp(server);
    const t = await tokensFor(server, p.email);
    const active = await introspect(t.access_token);
    expect(active.status).toBe(200);
    expect(active.body).toMatchObject({ active: true, scope: t.scope, client_id: 'healthmed-app', patient: t.patient, fhirUser: p.patient, token_type: 'Bearer' });
    const revoked = await form(server, '/oauth2/revoke', { token: t.access_token, client_id: 'healthmed-app' });
    expect(revoked.status).toBe(200);
    expect((await introspect(t.access_token)).body).toEqual({ active: false });
    expect((await userinfo(t.access_token)).status).toBe(401);
  });

  it('revoking a refresh token ends the sign-in: refresh and access tokens', async () => {
    const p = await signUp(server);
    const t = await tokensFor(server, p.email);
    expect((await introspect(t.refresh_token!)).body).toMatchObject({ active: true, client_id: 'healthmed-app' });
    expect((await form(server, '/oauth2/revoke', { token: t.refresh_token!, client_id: 'healthmed-app', token_type_hint: 'refresh_token' })).status).toBe(200);
    expect((await introspect(t.refresh_token!)).body).toEqual({ active: false });
    expect((await introspect(t.access_token)).body).toEqual({ active: false });
    const refresh = await form(server, '/oauth2/token', { grant_type: 'refresh_token', refresh_token: t.refresh_token!, client_id: 'healthmed-app' });
    expect(refresh.body.error).toBe('invalid_grant');
  });

  it('answers 200 for unknown tokens, and inactive for garbage', async () => {
    expect((await form(server, '/oauth2/revoke', { token: 'no-such-token', client_id: 'healthmed-app' })).status).toBe(200);
    expect((await introspect('a.b.c')).body).toEqual({ active: false });
  });

  it('introspection needs an authenticated client or a bearer token', async () => {
    const p = await signUp(server);
    const t = await tokensFor(server, p.email);
    const anonymous = await form(server, '/oauth2/introspect', { token: t.access_token, client_id: 'healthmed-app' });
    expect(anonymous.status).toBe(401);
    const bearer = await form(server, '/oauth2/introspect', { token: t.access_token }, { authorization: `Bearer ${t.access_token}` });
    expect(bearer.body.active).toBe(true);
  });
});
