/**
 * GET /oauth2/userinfo (OpenID Connect Core section 5.3): the signed-in user's `sub` and SMART `fhirUser`,
 * for an access token that was granted `openid`.
 */
import type { AuthServices } from './context';
import { OAuthError } from './errors';
import { authenticate } from './bearer';
import { OperationOutcomeError } from '../fhir/outcomes';
import { findUserById } from './store/users';

export async function userinfo(auth: AuthServices, authorization: string | undefined): Promise<Record<string, string>> {
  let grant;
  try {
    grant = await authenticate(auth, authorization);
  } catch (err) {
    if (err instanceof OperationOutcomeError) throw new OAuthError(401, 'invalid_token', err.message, err.headers);
    throw err;
  }
  if (!grant.scopes.includes('openid') || grant.caller.kind === 'client') {
    throw new OAuthError(403, 'insufficient_scope', 'The access token was not granted openid', {
      'WWW-Authenticate': 'Bearer error="insufficient_scope", scope="openid"',
    });
  }
  const user = await findUserById(auth.db, grant.subject);
  if (!user) throw new OAuthError(401, 'invalid_token', 'The account no longer exists', { 'WWW-Authenticate': 'Bearer error="invalid_token"' });
  return { sub: user.id, fhirUser: user.fhir_user };
}
