/**
 * First-party login (CONTRACT section 4): by e-mail, CPF (with or without punctuation) or CRM; the same 401
 * for an unknown login and a wrong password; failed logins limited per account and per address (429 with
 * Retry-After, state in the database).
 */
import { startServer, type TestServer } from '../helpers/server';
import { ADMIN_ENV, PASSWORD, adminToken, json, pkce, punctuatedCpf, randomEmail, signUp, signUpPractitioner } from './helpers';

let server: TestServer;
beforeAll(async () => {
  server = await startServer({ ...ADMIN_ENV, LOGIN_MAX_FAILURES: '3', LOGIN_MAX_FAILURES_PER_ADDRESS: '8', LOGIN_LOCKOUT_SECONDS: '120' });
});
afterAll(() => server.close());

let address = 0;
/** Each test logs in from its own client address, so the per-address limit of one test does not touch another. */
const fromAddress = () => ({ 'x-forwarded-for': `203.0.113.${++address}` });

function login(loginValue: string, password: string, headers: Record<string, string> = {}, scope = 'openid fhirUser patient/*.rs user/*.rs') {
  const { challenge } = pkce();
  return json(server, '/auth/login', { login: loginValue, password, client_id: 'healthmed-app', scope, code_challenge: challenge, code_challenge_method: 'S256' }, headers);
}

describe('POST /auth/login', () => {
  it('signs a patient in by e-mail (any case), by CPF with and without punctuation', async () => {
    const p = await signUp(server);
    const ip = fromAddress();
    for (const value of [p.email, p.email.toUpperCase(), p.cpf, punctuatedCpf(p.cpf), ` ${punctuatedCpf(p.cpf)} `]) {
      const res = await login(value, PASSWORD, ip);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ code: expect.any(String) });
    }
  });

  it('signs a practitioner in by CRM', async () => {
    const dr = await signUpPractitioner(server, await adminToken(server));
    const ip = fromAddress();
    expect((await login(dr.crm, PASSWORD, ip)).status).toBe(200);
    expect((await login(dr.crm.toLowerCase(), PASSWORD, ip)).status).toBe(200);
  });

  it('answers an unknown login and a wrong password with the same 401', async () => {
    const p = await signUp(server);
    const ip = fromAddress();
    const wrong = await login(p.email, 'wrong password!', ip);
    const unknown = await login(randomEmail(), 'wrong password!', ip);
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect(unknown.body).toEqual(wrong.body);
    expect(wrong.body.resourceType).toBe('OperationOutcome');
  });

  it('takes as long for an unknown login as for a wrong password (a dummy hash is verified)', async () => {
    const p = await signUp(server);
    const time = async (value: string) => {
      const start = performance.now();
      await login(value, 'wrong password!', fromAddress());
      return performance.now() - start;
    };
    const known: number[] = [];
    const unknown: number[] = [];
    for (let i = 0; i < 3; i++) {
      known.push(await time(p.email));
      unknown.push(await time(randomEmail()));
    }
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[1];
    // Both verify one argon2id hash (tens of milliseconds); without the dummy an unknown login takes ~1 ms.
    expect(median(unknown)).toBeGreaterThan(median(known) * 0.5);
  });

  it('locks an account after too many failures: 429 with Retry-After, even with the right password', async () => {
    const p = await signUp(server);
    for (let i = 0; i < 3; i++) expect((await login(p.email, 'wrong password!', fromAddress())).status).toBe(401);
    const locked = await login(p.email, PASSWORD, fromAddress());
    expect(locked.status).toBe(429);
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(locked.body.issue[0].code).toBe('throttled');
    // The lock is per account, whatever the login names it by.
    expect((await login(p.cpf, PASSWORD, fromAddress())).status).toBe(429);
  });

  it('locks an unknown login exactly like a known one (no account enumeration by lockout)', async () => {
    const ghost = randomEmail();
    for (let i = 0; i < 3; i++) expect((await login(ghost, 'wrong password!', fromAddress())).status).toBe(401);
    expect((await login(ghost, 'wrong password!', fromAddress())).status).toBe(429);
  });

  it('limits failures per client address across accounts', async () => {
    const ip = fromAddress();
    for (let i = 0; i < 8; i++) await login(randomEmail(), 'wrong password!', ip);
    const p = await signUp(server);
    const res = await login(p.email, PASSWORD, ip);
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
    expect((await login(p.email, PASSWORD, fromAddress())).status).toBe(200);
  });

  it('refuses clients that are not first-party, and a missing or non-S256 PKCE challenge', async () => {
    const p = await signUp(server);
    const { challenge } = pkce();
    const base = { login: p.email, password: PASSWORD, scope: 'openid', code_challenge: challenge, code_challenge_method: 'S256' };
    expect((await json(server, '/auth/login', { ...base, client_id: 'someone-else' })).status).toBe(400);
    expect((await json(server, '/auth/login', { ...base, client_id: 'healthmed-app', code_challenge_method: 'plain' })).status).toBe(400);
    expect((await json(server, '/auth/login', { ...base, client_id: 'healthmed-app', code_challenge: undefined })).status).toBe(400);
  });
});
