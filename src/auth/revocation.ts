/**
 * POST /oauth2/revoke (RFC 7009). The client authenticates as at the token endpoint (a public client sends
 * its client_id). A refresh token revokes its whole sign-in (every refresh token of the family and the access
 * tokens issued with them); an access token is revoked by its jti. Unknown or already invalid tokens are
 * answered 200 like valid ones (RFC 7009 section 2.2).
 */
import { verifyAccessToken } from './bearer';
import { authenticateClient } from './clients';
import type { AuthServices } from './context';
import { invalidRequest, OAuthError } from './errors';
import { sha256 } from './secrets';
import { findRefreshToken, revokeAccessToken, revokeFamily } from './store/grants';

const notYours = () => new OAuthError(400, 'invalid_request', 'The token was not issued to this client');

export async function revoke(auth: AuthServices, authorization: string | undefined, form: URLSearchParams): Promise<void> {
  const client = await authenticateClient(auth, authorization, form);
  const token = form.get('token');
  if (!token) throw invalidRequest('token is required');
  if (token.includes('.')) {
    const claims = await verifyAccessToken(auth, token).catch(() => undefined);
    if (!claims) return;
    if (claims.client_id !== client.client_id) throw notYours();
    await revokeAccessToken(auth.db, claims.jti as string, new Date((claims.exp as number) * 1000));
    return;
  }
  const found = await findRefreshToken(auth.db, sha256(token));
  if (!found) return;
  if (found.family.client_id !== client.client_id) throw notYours();
  await revokeFamily(auth.db, found.family.id);
}
