/**
 * Password change and reset: reset tokens go out through the mail seam, work once and expire; a change or a
 * reset ends every sign-in of the account. The reset request answers alike for unknown addresses.
 */
import type { Mailer, MailMessage } from '../../src/auth';
import { startServer, type TestServer } from '../helpers/server';
import { ADMIN_ENV, PASSWORD, json, pkce, randomEmail, signUp, tokensFor } from './helpers';

const sent: MailMessage[] = [];
const mailer: Mailer = { send: async (m) => void sent.push(m) };

let server: TestServer;
beforeAll(async () => {
  server = await startServer(ADMIN_ENV, { mailer });
});
afterAll(() => server.close());

const NEW_PASSWORD = 'a much better passphrase';

async function canLogin(login: string, password: string): Promise<number> {
  const { challenge } = pkce();
  const res = await json(server, '/auth/login', { login, password, client_id: 'healthmed-app', scope: 'openid', code_challenge: challenge, code_challenge_method: 'S256' });
  return res.status;
}

const userinfo = (token: string) => server.request('GET', '/oauth2/userinfo', undefined, { authorization: `Bearer ${token}`, accept: 'application/json' });

function resetTokenFor(email: string): string {
  const mail = sent.filter((m) => m.to === email).pop();
  expect(mail).toBeDefined();
  const link = /https?:\/\/\S+/.exec(mail!.text)![0];
  expect(link.startsWith(`${server.baseUrl}/auth/password/reset?token=`)).toBe(true);
  return new URL(link).searchParams.get('token')!;
}

describe('POST /auth/password', () => {
  it('changes the password with the current one and ends the existing sign-ins', async () => {
    const p = await signUp(server);
    const t = await tokensFor(server, p.email);
    const auth = { authorization: `Bearer ${t.access_token}` };
    expect((await json(server, '/auth/password', { current_password: 'wrong password!', new_password: NEW_PASSWORD }, auth)).status).toBe(401);
    expect((await json(server, '/auth/password', { current_password: PASSWORD, new_password: 'short' }, auth)).status).toBe(400);
    expect((await json(server, '/auth/password', { current_password: PASSWORD, new_password: NEW_PASSWORD }, auth)).status).toBe(204);
    expect((await userinfo(t.access_token)).status).toBe(401);
    expect(await canLogin(p.email, PASSWORD)).toBe(401);
    expect(await canLogin(p.email, NEW_PASSWORD)).toBe(200);
  });

  it('needs a user token', async () => {
    expect((await json(server, '/auth/password', { current_password: PASSWORD, new_password: NEW_PASSWORD })).status).toBe(401);
  });
});

describe('password reset', () => {
  it('answers 202 for an unknown address and sends nothing', async () => {
    const before = sent.length;
    const res = await json(server, '/auth/password/forgot', { email: randomEmail() });
    expect(res.status).toBe(202);
    expect(sent.length).toBe(before);
  });

  it('mails a single-use link; the new password works and old sign-ins end', async () => {
    const p = await signUp(server);
    const t = await tokensFor(server, p.email);
    const res = await json(server, '/auth/password/forgot', { email: p.email });
    expect(res.status).toBe(202);
    const token = resetTokenFor(p.email);
    expect(sent[sent.length - 1].kind).toBe('password-reset');
    expect((await json(server, '/auth/password/reset', { token, password: 'weak' })).status).toBe(400);
    expect((await json(server, '/auth/password/reset', { token, password: NEW_PASSWORD })).status).toBe(204);
    expect((await json(server, '/auth/password/reset', { token, password: 'yet another passphrase' })).status).toBe(400);
    expect(await canLogin(p.cpf, NEW_PASSWORD)).toBe(200);
    expect((await userinfo(t.access_token)).status).toBe(401);
  });

  it('expires reset tokens', async () => {
    const p = await signUp(server);
    await json(server, '/auth/password/forgot', { email: p.email });
    const token = resetTokenFor(p.email);
    await server.db.query("UPDATE auth_password_resets SET expires_at = now() - interval '1 second'");
    expect((await json(server, '/auth/password/reset', { token, password: NEW_PASSWORD })).status).toBe(400);
  });

  it('serves the reset page the link opens, and takes its form', async () => {
    const p = await signUp(server);
    await json(server, '/auth/password/forgot', { email: p.email });
    const token = resetTokenFor(p.email);
    const page = await server.request('GET', `/auth/password/reset?token=${encodeURIComponent(token)}`, undefined, { accept: 'text/html' });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('content-security-policy')).toMatch(/default-src 'none'/);
    expect(page.text).toContain(`name="token" value="${token}"`);
    const done = await server.request('POST', '/auth/password/reset', new URLSearchParams({ token, password: NEW_PASSWORD }).toString(), {
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'text/html',
    });
    expect(done.status).toBe(200);
    expect(done.text).toContain('Senha alterada');
    expect(await canLogin(p.email, NEW_PASSWORD)).toBe(200);
  });
});
