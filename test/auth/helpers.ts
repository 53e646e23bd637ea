/**
 * Helpers for the authorization server tests: unique people (valid CPF, CRM, e-mail), PKCE pairs, form
 * posts, and the usual sign-up -> login -> token sequence.
 */
import { createHash, randomBytes, randomInt } from 'node:crypto';
import type { TestResponse, TestServer } from '../helpers/server';

export const ADMIN_ID = 'test-admin';
export const ADMIN_SECRET = 'test-admin-secret-0123456789abcdef';
export const ADMIN_ENV = { BOOTSTRAP_CLIENT_ID: ADMIN_ID, BOOTSTRAP_CLIENT_SECRET: ADMIN_SECRET, APP_REDIRECT_URIS: 'http://127.0.0.1:5173/callback,br.com.healthmed.app:/callback' };
export const APP_REDIRECT = 'http://127.0.0.1:5173/callback';
export const PATIENT_SCOPE = 'openid fhirUser offline_access launch/patient patient/*.rs patient/Appointment.cruds';

/** A random CPF with correct check digits (Receita Federal modulo-11 scheme). */
export function randomCpf(): string {
  let digits = '';
  do {
    digits = Array.from({ length: 9 }, () => randomInt(10)).join('');
  } while (/^(\d)\1+$/.test(digits));
  for (const length of [9, 10]) {
    let sum = 0;
    for (let i = 0; i < length; i++) sum += Number(digits[i]) * (length + 1 - i);
    const rest = (sum * 10) % 11;
    digits += String(rest === 10 ? 0 : rest);
  }
  return digits;
}

export const punctuatedCpf = (cpf: string) => `${cpf.slice(0, 3)}.${cpf.slice(3, 6)}.${cpf.slice(6, 9)}-${cpf.slice(9)}`;
export const randomCrm = () => `SP-${randomInt(100000, 99999999)}`;
export const randomEmail = (who = 'ana') => `${who}.${randomBytes(6).toString('hex')}@example.com`;
export const PASSWORD = 'correct horse battery';

export function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

export function form(server: TestServer, path: string, params: Record<string, string>, headers: Record<string, string> = {}): Promise<TestResponse> {
  return server.request('POST', path, new URLSearchParams(params).toString(), {
    'content-type': 'application/x-www-form-urlencoded',
    accept: 'application/json',
    ...headers,
  });
}

export function json(server: TestServer, path: string, body: unknown, headers: Record<string, string> = {}): Promise<TestResponse> {
  return server.request('POST', path, body, { 'content-type': 'application/json', accept: 'application/json', ...headers });
}

export const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

export async function adminToken(server: TestServer, scope = 'system/*.*'): Promise<string> {
  const res = await form(server, '/oauth2/token', { grant_type: 'client_credentials', scope }, { authorization: basic(ADMIN_ID, ADMIN_SECRET) });
  if (res.status !== 200) throw new Error(`admin token: ${res.status} ${res.text}`);
  return res.body.access_token;
}

export interface Person {
  email: string;
  cpf: string;
  password: string;
  patient: string;
}

export async function signUp(server: TestServer, overrides: Record<string, unknown> = {}): Promise<Person> {
  const person = { email: randomEmail(), cpf: randomCpf(), password: PASSWORD };
  const res = await json(server, '/auth/register', {
    role: 'patient',
    ...person,
    name: { given: ['Ana'], family: 'Souza' },
    birthDate: '1990-04-12',
    ...overrides,
  });
  if (res.status !== 201) throw new Error(`sign-up: ${res.status} ${res.text}`);
  return { ...person, ...(overrides as object), patient: res.body.patient };
}

export async function signUpPractitioner(server: TestServer, admin: string): Promise<{ email: string; crm: string; password: string; practitioner: string }> {
  const p = { email: randomEmail('dr'), crm: randomCrm(), password: PASSWORD };
  const res = await json(server, '/auth/register', { role: 'practitioner', ...p, name: { given: ['Carlos'], family: 'Lima' } }, { authorization: `Bearer ${admin}` });
  if (res.status !== 201) throw new Error(`practitioner: ${res.status} ${res.text}`);
  return { ...p, practitioner: res.body.practitioner };
}

/** First-party login -> code (no second factor expected). */
export async function loginCode(server: TestServer, login: string, password = PASSWORD, scope = PATIENT_SCOPE): Promise<{ code: string; verifier: string }> {
  const { verifier, challenge } = pkce();
  const res = await json(server, '/auth/login', { login, password, client_id: 'healthmed-app', scope, code_challenge: challenge, code_challenge_method: 'S256' });
  if (res.status !== 200 || !res.body.code) throw new Error(`login: ${res.status} ${res.text}`);
  return { code: res.body.code, verifier };
}

export function exchange(server: TestServer, code: string, verifier: string, extra: Record<string, string> = {}): Promise<TestResponse> {
  return form(server, '/oauth2/token', { grant_type: 'authorization_code', code, code_verifier: verifier, client_id: 'healthmed-app', ...extra });
}

/** Sign-in to tokens in one go. */
export async function tokensFor(server: TestServer, login: string, scope = PATIENT_SCOPE) {
  const { code, verifier } = await loginCode(server, login, PASSWORD, scope);
  const res = await exchange(server, code, verifier);
  if (res.status !== 200) throw new Error(`token: ${res.status} ${res.text}`);
  return res.body as { access_token: string; refresh_token?: string; id_token?: string; patient?: string; fhirUser: string; scope: string };
}
