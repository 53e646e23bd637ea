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
import { isAccessTokenRevoked, revocationEpoch } from './store/grants';
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

/**
 * Tokens that passed every check, and when their revocation was last checked. A burst of requests with one
 * token verifies its signature once and asks the database about revocation at most once per
 * `revocationRecheckMs` (TOKEN_REVOCATION_RECHECK_MS). A revocation made by this process takes effect at once
 * (the revocation epoch moves); one made by another server behind the load balancer within that interval.
 */
interface CachedToken {
  claims: AccessTokenClaims;
  checkedAt: number;
  epoch: number;
}
/** One cache per authorization server instance (its keys decide what verifies). */
const caches = new WeakMap<AuthServices, Map<string, CachedToken>>();
const MAX_CACHED_TOKENS = 20_000;

function cacheOf(auth: AuthServices): Map<string, CachedToken> {
  let cache = caches.get(auth);
  if (!cache) caches.set(auth, (cache = new Map()));
  return cache;
}

export async function authenticate(auth: AuthServices, authorization: string | undefined): Promise<Grant> {
  const realm = auth.settings.fhirBaseUrl;
  const m = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(authorization ?? '');
  if (!m) throw bearerChallenge(realm, 'A bearer access token is required', false);
  const token = m[1];
  const verified = cacheOf(auth);
  const now = Date.now();
  let cached = verified.get(token);
  if (cached && (cached.claims.exp as number) * 1000 <= now) {
    verified.delete(token);
    throw bearerChallenge(realm, 'The access token has expired', true);
  }
  if (!cached) {
    let claims: AccessTokenClaims;
    try {
      claims = await verifyAccessToken(auth, token);
    } catch (err) {
      const expired = err instanceof jose.errors.JWTExpired;
      throw bearerChallenge(realm, expired ? 'The access token has expired' : 'The access token is invalid', true);
    }
    cached = { claims, checkedAt: 0, epoch: -1 };
  }
  const claims = cached.claims;
  const jti = claims.jti as string;
  const epoch = revocationEpoch();
  if (cached.epoch !== epoch || now - cached.checkedAt >= auth.settings.revocationRecheckMs) {
    if (await isAccessTokenRevoked(auth.db, jti, claims.fam)) {
      verified.delete(token);
      throw bearerChallenge(realm, 'The access token has been revoked', true);
    }
    cached.checkedAt = now;
    cached.epoch = epoch;
    if (verified.size >= MAX_CACHED_TOKENS) verified.delete(verified.keys().next().value as string);
    verified.set(token, cached);
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
