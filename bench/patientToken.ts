/**
 * A patient's own token for the authorization benchmark (issue 4): sign up through /auth/register, sign in
 * with the first-party client `healthmed-app` (PKCE S256) and exchange the code. The patient then reads their
 * own Patient, which the system token reads too: the difference is what authorization costs.
 */
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { cpf } from './patients';

async function post(url: string, body: string, type: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': type, accept: 'application/json' }, body });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

export async function patientToken(origin: string, scope = 'launch/patient patient/*.rs'): Promise<{ patientId: string; headers: Record<string, string> }> {
  const email = `bench.${randomBytes(6).toString('hex')}@example.com`;
  const password = randomBytes(12).toString('base64url');
  const reg = await post(
    `${origin}/auth/register`,
    JSON.stringify({ role: 'patient', email, cpf: cpf(randomInt(900_000_000, 999_999_998)), password, name: { given: ['Bench'], family: 'Paciente' }, birthDate: '1990-01-01' }),
    'application/json',
  );
  if (reg.status !== 201) throw new Error(`patient sign-up answered ${reg.status}`);
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const login = await post(
    `${origin}/auth/login`,
    JSON.stringify({ login: email, password, client_id: 'healthmed-app', scope, code_challenge: challenge, code_challenge_method: 'S256' }),
    'application/json',
  );
  if (login.status !== 200) throw new Error(`patient login answered ${login.status}`);
  const token = await post(
    `${origin}/oauth2/token`,
    new URLSearchParams({ grant_type: 'authorization_code', code: String(login.json.code), code_verifier: verifier, client_id: 'healthmed-app' }).toString(),
    'application/x-www-form-urlencoded',
  );
  if (token.status !== 200) throw new Error(`patient token answered ${token.status}`);
  return { patientId: String(reg.json.patient).replace('Patient/', ''), headers: { authorization: `Bearer ${token.json.access_token}` } };
}
