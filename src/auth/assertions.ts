/**
 * `private_key_jwt` client authentication (RFC 7523 section 2.2 and 3, SMART Backend Services
 * https://hl7.org/fhir/smart-app-launch/client-confidential-asymmetric.html): a JWT the client signs with a
 * key from its registered JWKS (or JWKS URL), RS384 or ES384, with iss = sub = client_id, aud = the token
 * endpoint, exp at most five minutes ahead, and a jti never seen before.
 */
import * as jose from 'jose';
import type { AuthServices } from './context';
import { invalidClient } from './errors';
import { findClient, type ClientRow } from './store/clients';
import { rememberAssertionJti } from './store/grants';

export const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
export const ASSERTION_ALGORITHMS = ['RS384', 'ES384'];
const MAX_LIFETIME_SECONDS = 300;
const CLOCK_TOLERANCE_SECONDS = 5;

function keySet(auth: AuthServices, client: ClientRow): jose.JWTVerifyGetKey {
  if (client.jwks) return jose.createLocalJWKSet(client.jwks);
  if (client.jwks_uri) {
    let set = auth.remoteJwks.get(client.jwks_uri);
    if (!set) {
      set = jose.createRemoteJWKSet(new URL(client.jwks_uri), { timeoutDuration: 5000, cooldownDuration: 30_000, cacheMaxAge: 600_000 });
      auth.remoteJwks.set(client.jwks_uri, set);
    }
    return set;
  }
  throw invalidClient('The client has no registered keys');
}

export async function verifyClientAssertion(auth: AuthServices, assertion: string, clientIdParam: string | undefined): Promise<ClientRow> {
  let iss: unknown;
  try {
    iss = jose.decodeJwt(assertion).iss;
  } catch {
    throw invalidClient('The client assertion is not a JWT');
  }
  if (typeof iss !== 'string') throw invalidClient('The client assertion has no iss');
  if (clientIdParam !== undefined && clientIdParam !== iss) throw invalidClient('client_id does not match the client assertion');
  const client = await findClient(auth.db, iss);
  if (!client || client.auth_method !== 'private_key_jwt') throw invalidClient('Unknown client or not registered for private_key_jwt');
  let payload: jose.JWTPayload;
  try {
    ({ payload } = await jose.jwtVerify(assertion, keySet(auth, client), {
      algorithms: ASSERTION_ALGORITHMS,
      issuer: client.client_id,
      subject: client.client_id,
      audience: auth.settings.tokenEndpoint,
      requiredClaims: ['exp', 'jti'],
      clockTolerance: CLOCK_TOLERANCE_SECONDS,
    }));
  } catch (err) {
    const reason = err instanceof jose.errors.JWTClaimValidationFailed ? `: ${err.claim} is not valid` : '';
    throw invalidClient(`The client assertion could not be verified${reason}`);
  }
  const exp = payload.exp as number;
  if (exp > Date.now() / 1000 + MAX_LIFETIME_SECONDS + CLOCK_TOLERANCE_SECONDS) {
    throw invalidClient('The client assertion expires more than five minutes from now');
  }
  if (typeof payload.jti !== 'string' || payload.jti === '') throw invalidClient('The client assertion has no jti');
  if (!(await rememberAssertionJti(auth.db, client.client_id, payload.jti, new Date(exp * 1000)))) {
    throw invalidClient('The client assertion was already used (jti replay)');
  }
  return client;
}
