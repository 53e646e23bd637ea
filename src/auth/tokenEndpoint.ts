/**
 * POST /oauth2/token (RFC 6749 section 3.2, OAuth 2.1): authorization_code with PKCE S256 (RFC 7636),
 * refresh_token with rotation, client_credentials (SMART Backend Services) for confidential clients.
 *
 * Codes and refresh tokens are marked used by one atomic statement before anything else is checked, and
 * that mark is never rolled back: a code that failed its PKCE check is spent. A second use of a code revokes
 * the tokens the first use issued; a second use of a rotated refresh token revokes its whole family
 * (OAuth 2.1 section 4.3.1, "refresh token reuse detection").
 */
import { createHash } from 'node:crypto';
import { intersectScopes } from '../access/scopes';
import { authenticateClient } from './clients';
import type { AuthServices } from './context';
import { invalidGrant, invalidRequest, invalidScope, OAuthError, unauthorizedClient } from './errors';
import { grantScopes } from './granting';
import { sha256 } from './secrets';
import { findClient, type ClientRow } from './store/clients';
import { findRefreshToken, redeemCode, revokeFamily, setCodeFamily, useRefreshToken } from './store/grants';
import { findUserById } from './store/users';
import { issueTokens, startFamily, wantsRefreshToken, type TokenResponse } from './tokens';

const VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/;

function param(form: URLSearchParams, name: string): string {
  const v = form.get(name);
  if (!v) throw invalidRequest(`${name} is required`);
  return v;
}

function assertGrantType(client: ClientRow, grantType: string): void {
  if (!client.grant_types.includes(grantType)) throw unauthorizedClient(`This client may not use ${grantType}`);
}

/** RFC 7636 section 4.6: BASE64URL(SHA256(ASCII(code_verifier))) == code_challenge. */
function pkceMatches(verifier: string, challenge: string): boolean {
  return VERIFIER.test(verifier) && createHash('sha256').update(verifier, 'ascii').digest('base64url') === challenge;
}

export async function tokenRequest(auth: AuthServices, authorization: string | undefined, form: URLSearchParams): Promise<TokenResponse> {
  const grantType = param(form, 'grant_type');
  if (!['authorization_code', 'refresh_token', 'client_credentials'].includes(grantType)) {
    throw new OAuthError(400, 'unsupported_grant_type', `Unsupported grant_type ${grantType}`);
  }
  const client = isUnidentifiedRefresh(grantType, authorization, form)
    ? await publicClientOfRefreshToken(auth, form)
    : await authenticateClient(auth, authorization, form);
  assertGrantType(client, grantType);
  // The signing key is loaded before any transaction (PGlite runs one at a time).
  await auth.keys.current();
  if (grantType === 'authorization_code') return authorizationCode(auth, client, form);
  if (grantType === 'refresh_token') return refreshToken(auth, client, form);
  return clientCredentials(auth, client, form);
}

/** A refresh with no client authentication and no client_id, as SMART App Launch 2.x lets public apps send. */
function isUnidentifiedRefresh(grantType: string, authorization: string | undefined, form: URLSearchParams): boolean {
  return grantType === 'refresh_token' && !authorization && !form.get('client_id') && !form.get('client_assertion');
}

/** The client of a refresh token's sign-in, when that client is public (a confidential one must authenticate). */
async function publicClientOfRefreshToken(auth: AuthServices, form: URLSearchParams): Promise<ClientRow> {
  const found = await findRefreshToken(auth.db, sha256(param(form, 'refresh_token')));
  if (!found) throw invalidGrant('Invalid refresh token');
  const client = await findClient(auth.db, found.family.client_id);
  if (!client) throw invalidGrant('Invalid refresh token');
  if (client.auth_method !== 'none') throw new OAuthError(401, 'invalid_client', 'This client must authenticate');
  return client;
}

async function authorizationCode(auth: AuthServices, client: ClientRow, form: URLSearchParams): Promise<TokenResponse> {
  const codeHash = sha256(param(form, 'code'));
  const redeemed = await redeemCode(auth.db, codeHash);
  if (!redeemed || redeemed.row.client_id !== client.client_id) throw invalidGrant('Invalid authorization code');
  const { row, firstUse } = redeemed;
  if (!firstUse) {
    if (row.family_id) await revokeFamily(auth.db, row.family_id);
    throw invalidGrant('The authorization code was already used; the tokens it issued are revoked');
  }
  if (row.expires_at.getTime() <= Date.now()) throw invalidGrant('The authorization code has expired');
  if ((form.get('redirect_uri') ?? null) !== row.redirect_uri) throw invalidGrant('redirect_uri does not match the authorization request');
  const verifier = form.get('code_verifier');
  if (row.code_challenge) {
    if (!verifier || !pkceMatches(verifier, row.code_challenge)) throw invalidGrant('code_verifier does not match the code_challenge');
  } else if (verifier) {
    throw invalidGrant('code_verifier sent but the authorization request had no code_challenge');
  }
  const user = await findUserById(auth.db, row.user_id);
  if (!user) throw invalidGrant('The account no longer exists');
  const scope = row.scope.split(' ').filter((s) => s !== '');
  return auth.db.transaction(async (tx) => {
    const familyId = await startFamily(auth, tx, { clientId: client.client_id, userId: user.id, scope, authTime: row.auth_time });
    await setCodeFamily(tx, codeHash, familyId);
    return issueTokens(auth, tx, {
      subject: { sub: user.id, clientId: client.client_id, fhirUser: user.fhir_user },
      scope,
      familyId,
      refresh: wantsRefreshToken(scope),
      authTime: row.auth_time,
      nonce: row.nonce ?? undefined,
    });
  });
}

async function refreshToken(auth: AuthServices, client: ClientRow, form: URLSearchParams): Promise<TokenResponse> {
  const tokenHash = sha256(param(form, 'refresh_token'));
  const found = await findRefreshToken(auth.db, tokenHash);
  if (!found || found.family.client_id !== client.client_id) throw invalidGrant('Invalid refresh token');
  const { family } = found;
  if (found.used || !(await useRefreshToken(auth.db, tokenHash))) {
    await revokeFamily(auth.db, family.id);
    throw invalidGrant('The refresh token was already used; the sign-in is revoked');
  }
  if (family.revoked_at || family.expires_at.getTime() <= Date.now()) throw invalidGrant('The refresh token has expired or was revoked');
  const user = await findUserById(auth.db, family.user_id);
  if (!user) throw invalidGrant('The account no longer exists');
  // RFC 6749 section 6: a refresh may narrow the scope, never widen it.
  let scope = family.scope.split(' ').filter((s) => s !== '');
  const requested = form.get('scope');
  if (requested) {
    scope = intersectScopes(requested, scope);
    if (scope.length === 0) throw invalidScope('The requested scope was not granted to this sign-in');
  }
  return auth.db.transaction((tx) =>
    issueTokens(auth, tx, {
      subject: { sub: user.id, clientId: client.client_id, fhirUser: user.fhir_user },
      scope,
      familyId: family.id,
      refresh: true,
      authTime: family.auth_time,
    }),
  );
}

/** SMART Backend Services: system/ scopes, intersected with what the client was registered for. */
async function clientCredentials(auth: AuthServices, client: ClientRow, form: URLSearchParams): Promise<TokenResponse> {
  if (client.auth_method === 'none') throw unauthorizedClient('Public clients may not use client_credentials');
  const scope = grantScopes(param(form, 'scope'), client.scope, 'client');
  if (scope.length === 0) throw invalidScope('None of the requested scopes can be granted to this client');
  return issueTokens(auth, auth.db, { subject: { sub: client.client_id, clientId: client.client_id }, scope });
}
