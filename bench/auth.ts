/**
 * When our server requires a bearer token (CONTRACT section 4), the bench acts as the admin client that
 * CONTRACT section 1 bootstraps (BOOTSTRAP_CLIENT_ID/SECRET, client_credentials, `system/*.*`) and sends its
 * token with every request to ours; the baseline has no authorization, as a hand-written endpoint behind a
 * gateway would not. Verifying the token is then part of what ours is measured doing.
 */
import { randomBytes } from 'node:crypto';

export const BENCH_CLIENT_ID = 'fhir-bench';
/** Random per run: the bench database is thrown away, but the secret should not be guessable meanwhile. */
export const BENCH_CLIENT_SECRET = randomBytes(24).toString('base64url');
/** Long enough for the slowest full run, so no token expires mid-measurement. */
export const BENCH_TOKEN_TTL_SECONDS = 6 * 3600;

/** Env for our server: the bootstrap client and a token lifetime that outlasts the run. */
export function authEnv(): Record<string, string> {
  return {
    BOOTSTRAP_CLIENT_ID: BENCH_CLIENT_ID,
    BOOTSTRAP_CLIENT_SECRET: BENCH_CLIENT_SECRET,
    ACCESS_TOKEN_TTL_SECONDS: String(BENCH_TOKEN_TTL_SECONDS),
  };
}

/**
 * Headers our server needs: none when an unauthenticated FHIR request is answered, else
 * `Authorization: Bearer <token>` from the token endpoint (client_credentials, client_secret_basic).
 */
export async function authHeaders(origin: string): Promise<Record<string, string>> {
  const probe = await fetch(`${origin}/fhir/Patient?_count=1`, { headers: { accept: 'application/fhir+json' } });
  await probe.text();
  if (probe.status !== 401) return {};
  const basic = Buffer.from(`${encodeURIComponent(BENCH_CLIENT_ID)}:${encodeURIComponent(BENCH_CLIENT_SECRET)}`).toString('base64');
  const response = await fetch(`${origin}/oauth2/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'system/*.*' }).toString(),
  });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`our server wants a token, and POST /oauth2/token answered ${response.status}: ${text.slice(0, 500)}`);
  const token = (JSON.parse(text) as { access_token?: string }).access_token;
  if (!token) throw new Error(`POST /oauth2/token gave no access_token: ${text.slice(0, 500)}`);
  return { authorization: `Bearer ${token}` };
}
