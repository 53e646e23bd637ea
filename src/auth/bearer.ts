/**
 * Bearer token verification for the FHIR API and the account endpoints (RFC 6750, RFC 9068).
 * Only this server's own access tokens pass: signature by one of its published keys with the algorithm that
 * key uses (so `alg: none`, HS256 with the public key as the secret, or a key of another kind are refused),
 * `typ: at+jwt` (an ID token is not an access token), issuer, audience `$BASE_URL/fhir`, expiry, and not
 * revoked (by jti, or through its sign-in's family).
 */
import * as jose from 'jose';
import type { Caller } from '../access/context';
import { OperationOutcomeError, outcome } from '../fhir/outcomes';
import type { AuthServices } from './context';
import { TOKEN_ALGORITHMS } from './keys';
import { isAccessTokenRevoked } from './store/grants';
import type { AccessTokenClaims } from './tokens';

/** What a verified access token grants. */
export interface Grant {
  caller: Caller;
  /** The granted scopes, as in the token's `scope` claim. */
  scopes: string[];
  /** The patient in context (a Patient id, no type prefix): set for patient users. */
  patient?: string;
  /** `sub`: the user's account id, or the client_id of a client_credentials token. */
  subject: string;
  /** `jti` and `exp` of the token (revocation, introspection). */
  tokenId: string;
  expiresAt: Date;
}

/** 401 with a Bearer challenge (RFC 6750 section 3); `error="invalid_token"` when a token was presented. */
export function bearerChallenge(realm: string, diagnostics: string, invalidToken: boolean): OperationOutcomeError {
  const challenge = invalidToken
    ? `Bearer realm="${realm}", error="invalid_token", error_description="${diagnostics.replace(/"/g, "'")}"`
    : `Bearer realm="${realm}"`;
  return new OperationOutcomeError(401, outcome('error', 'login', diagnostics), { 'WWW-Authenticate': challenge });
}

export function callerOf(claims: AccessTokenClaims): Caller {
  const fhirUser = typeof claims.fhirUser === 'string' ? claims.fhirUser : undefined;
  const clientId = claims.client_id;
  if (fhirUser?.startsWith('Patient/')) return { kind: 'patient', fhirUser, clientId };
  if (fhirUser?.startsWith('Practitioner/')) return { kind: 'practitioner', fhirUser, clientId };
  return { kind: 'client', clientId };
}

/** Verifies a token's signature and claims (not revocation); throws jose errors or a plain Error. */
export async function verifyAccessToken(auth: AuthServices, token: string): Promise<AccessTokenClaims> {
  const header = jose.decodeProtectedHeader(token);
  const alg = header.alg;
  if (!alg || !(TOKEN_ALGORITHMS as readonly string[]).includes(alg)) throw new Error('unsupported algorithm');
  const key = await auth.keys.verificationKey(header.kid, alg);
  if (!key) throw new Error('unknown key');
  const { payload } = await jose.jwtVerify<AccessTokenClaims>(token, key, {
    algorithms: [alg],
    issuer: auth.settings.issuer,
    audience: auth.settings.fhirBaseUrl,
    typ: 'at+jwt',
    requiredClaims: ['exp', 'iat', 'jti', 'sub', 'scope', 'client_id'],
    clockTolerance: 5,
  });
  if (typeof payload.scope !== 'string' || typeof payload.client_id !== 'string') throw new Error('malformed claims');
  return payload;
}

export async function authenticate(auth: AuthServices, authorization: string | undefined): Promise<Grant> {
  const realm = auth.settings.fhirBaseUrl;
  const m = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(authorization ?? '');
  if (!m) throw bearerChallenge(realm, 'A bearer access token is required', false);
  let claims: AccessTokenClaims;
  try {
    claims = await verifyAccessToken(auth, m[1]);
  } catch (err) {
    const expired = err instanceof jose.errors.JWTExpired;
    throw bearerChallenge(realm, expired ? 'The access token has expired' : 'The access token is invalid', true);
  }
  const jti = claims.jti as string;
  if (await isAccessTokenRevoked(auth.db, jti, claims.fam)) {
    throw bearerChallenge(realm, 'The access token has been revoked', true);
  }
  const grant: Grant = {
    caller: callerOf(claims),
    scopes: claims.scope.split(' ').filter((s) => s !== ''),
    subject: claims.sub as string,
    tokenId: jti,
    expiresAt: new Date((claims.exp as number) * 1000),
  };
  if (typeof claims.patient === 'string') grant.patient = claims.patient;
  return grant;
}
