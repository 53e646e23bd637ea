/**
 * POST /oauth2/introspect (RFC 7662). The caller proves who it is: a confidential client authenticating as at
 * the token endpoint, or a bearer access token of this server (a resource server or app checking a token).
 * Inactive, unknown, expired and revoked tokens all answer `{"active": false}`.
 */
import { authenticate, verifyAccessToken } from './bearer';
import { authenticateClient } from './clients';
import type { AuthServices } from './context';
import { invalidClient, invalidRequest } from './errors';
import { sha256 } from './secrets';
import { findRefreshToken, isAccessTokenRevoked } from './store/grants';

export type Introspection = { active: false } | ({ active: true } & Record<string, unknown>);

async function authorizeCaller(auth: AuthServices, authorization: string | undefined, form: URLSearchParams): Promise<void> {
  if (authorization && /^Bearer /i.test(authorization)) {
    await authenticate(auth, authorization).catch(() => {
      throw invalidClient('The bearer token is not valid');
    });
    return;
  }
  const client = await authenticateClient(auth, authorization, form);
  if (client.auth_method === 'none') throw invalidClient('Introspection needs an authenticated client or a bearer token');
}

export async function introspect(auth: AuthServices, authorization: string | undefined, form: URLSearchParams): Promise<Introspection> {
  await authorizeCaller(auth, authorization, form);
  const token = form.get('token');
  if (!token) throw invalidRequest('token is required');
  if (token.includes('.')) {
    const claims = await verifyAccessToken(auth, token).catch(() => undefined);
    if (!claims || (await isAccessTokenRevoked(auth.db, claims.jti as string, claims.fam))) return { active: false };
    const out: Introspection = {
      active: true,
      token_type: 'Bearer',
      scope: claims.scope,
      client_id: claims.client_id,
      sub: claims.sub,
      iss: claims.iss,
      aud: claims.aud,
      exp: claims.exp,
      iat: claims.iat,
      jti: claims.jti,
    };
    if (claims.fhirUser) out.fhirUser = claims.fhirUser;
    if (claims.patient) out.patient = claims.patient;
    return out;
  }
  const found = await findRefreshToken(auth.db, sha256(token));
  if (!found || found.used || found.family.revoked_at || found.family.expires_at.getTime() <= Date.now()) return { active: false };
  return {
    active: true,
    token_type: 'refresh_token',
    scope: found.family.scope,
    client_id: found.family.client_id,
    sub: found.family.user_id,
    exp: Math.floor(found.family.expires_at.getTime() / 1000),
  };
}
