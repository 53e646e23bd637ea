/**
 * The optional second factor (RFC 6238 TOTP): enrolment with a user token, login -> mfa_required ->
 * POST /auth/mfa -> code; one OTP works once; recovery codes work once; REQUIRE_PRACTITIONER_MFA makes
 * practitioners enrol before their first sign-in completes.
 */
import { Secret, TOTP } from 'otpauth';
import { startServer, type TestServer } from '../helpers/server';
import { ADMIN_ENV, PASSWORD, adminToken, exchange, json, pkce, signUp, signUpPractitioner, tokensFor } from './helpers';

let server: TestServer;
beforeAll(async () => {
  server = await startServer({ ...ADMIN_ENV, REQUIRE_PRACTITIONER_MFA: 'true' });
});
afterAll(() => server.close());

const totp = (secret: string) => new TOTP({ secret: Secret.fromBase32(secret), digits: 6, period: 30, algorithm: 'SHA1' });
/** The code of the next 30-second step: still accepted (one step of drift), and later than any step used so far. */
const nextCode = (secret: string) => totp(secret).generate({ timestamp: Date.now() + 30_000 });

async function startLogin(login: string) {
  const { verifier, challenge } = pkce();
  const res = await json(server, '/auth/login', { login, password: PASSWORD, client_id: 'healthmed-app', scope: 'openid fhirUser patient/*.rs user/*.rs', code_challenge: challenge, code_challenge_method: 'S256' });
  return { res, verifier };
}

async function enrolPatient() {
  const p = await signUp(server);
  const t = await tokensFor(server, p.email);
  const auth = { authorization: `Bearer ${t.access_token}` };
  const enrol = await json(server, '/auth/mfa/totp', {}, auth);
  expect(enrol.status).toBe(200);
  expect(enrol.body.otpauth_uri).toMatch(/^otpauth:\/\/totp\//);
  const secret: string = enrol.body.secret;
  const wrong = await json(server, '/auth/mfa/totp/activate', { otp: '000000' }, auth);
  expect(wrong.status).toBe(400);
  const activate = await json(server, '/auth/mfa/totp/activate', { otp: totp(secret).generate() }, auth);
  expect(activate.status).toBe(200);
  expect(activate.body.recovery_codes).toHaveLength(10);
  return { p, secret, auth, recoveryCodes: activate.body.recovery_codes as string[] };
}

describe('TOTP for patients', () => {
  it('asks for the second factor after the password, then issues the code', async () => {
    const { p, secret } = await enrolPatient();
    const { res, verifier } = await startLogin(p.email);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ mfa_required: true, login: expect.any(String) });
    const bad = await json(server, '/auth/mfa', { login: res.body.login, otp: '123456' });
    expect(bad.status).toBe(401);
    const good = await json(server, '/auth/mfa', { login: res.body.login, otp: nextCode(secret) });
    expect(good.status).toBe(200);
    expect(good.body).toEqual({ code: expect.any(String) });
    expect((await exchange(server, good.body.code, verifier)).status).toBe(200);
    // The pending sign-in is spent.
    expect((await json(server, '/auth/mfa', { login: res.body.login, otp: nextCode(secret) })).status).toBe(401);
  });

  it('accepts an OTP once (RFC 6238 section 5.2), and each recovery code once', async () => {
    const { p, secret, recoveryCodes } = await enrolPatient();
    const otp = nextCode(secret);
    const first = await startLogin(p.email);
    expect((await json(server, '/auth/mfa', { login: first.res.body.login, otp })).status).toBe(200);
    const second = await startLogin(p.email);
    expect((await json(server, '/auth/mfa', { login: second.res.body.login, otp })).status).toBe(401);
    const recovery = await json(server, '/auth/mfa', { login: second.res.body.login, recovery_code: recoveryCodes[0].toLowerCase() });
    expect(recovery.status).toBe(200);
    const third = await startLogin(p.email);
    expect((await json(server, '/auth/mfa', { login: third.res.body.login, otp: recoveryCodes[0] })).status).toBe(401);
  });

  it('gives up a pending sign-in after five wrong codes', async () => {
    const { p, secret } = await enrolPatient();
    const { res } = await startLogin(p.email);
    for (let i = 0; i < 5; i++) expect((await json(server, '/auth/mfa', { login: res.body.login, otp: '000000' })).status).toBe(401);
    expect((await json(server, '/auth/mfa', { login: res.body.login, otp: nextCode(secret) })).status).toBe(401);
  });

  it('can be turned off with the password', async () => {
    const { p, auth } = await enrolPatient();
    expect((await json(server, '/auth/mfa/totp/disable', { password: 'not the password' }, auth)).status).toBe(401);
    expect((await json(server, '/auth/mfa/totp/disable', { password: PASSWORD }, auth)).status).toBe(204);
    const { res } = await startLogin(p.email);
    expect(res.body).toEqual({ code: expect.any(String) });
  });
});

describe('REQUIRE_PRACTITIONER_MFA=true', () => {
  it('makes a practitioner enrol during the first sign-in, and ask for the OTP afterwards', async () => {
    const dr = await signUpPractitioner(server, await adminToken(server));
    const { res, verifier } = await startLogin(dr.crm);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ mfa_required: true, mfa_enrollment_required: true, login: expect.any(String) });
    // No code without enrolling.
    expect((await json(server, '/auth/mfa', { login: res.body.login, otp: '000000' })).status).toBe(401);
    const enrol = await json(server, '/auth/mfa/enroll', { login: res.body.login });
    expect(enrol.status).toBe(200);
    const done = await json(server, '/auth/mfa', { login: res.body.login, otp: totp(enrol.body.secret).generate() });
    expect(done.status).toBe(200);
    expect(done.body).toEqual({ code: expect.any(String), recovery_codes: expect.any(Array) });
    const tokens = await exchange(server, done.body.code, verifier);
    expect(tokens.body.fhirUser).toBe(dr.practitioner);

    const again = await startLogin(dr.email);
    expect(again.res.body).toEqual({ mfa_required: true, login: expect.any(String) });
    // A practitioner may not switch the required factor off.
    const off = await json(server, '/auth/mfa/totp/disable', { password: PASSWORD }, { authorization: `Bearer ${tokens.body.access_token}` });
    expect(off.status).toBe(403);
  });

  it('leaves patients without a second factor free to sign in', async () => {
    const p = await signUp(server);
    const { res } = await startLogin(p.email);
    expect(res.body).toEqual({ code: expect.any(String) });
  });
});
