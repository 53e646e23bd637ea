/**
 * Access tokens (RFC 9068 JWTs, `typ: at+jwt`), OpenID Connect ID tokens, refresh tokens, and the token
 * response of SMART App Launch (https://hl7.org/fhir/smart-app-launch/app-launch.html#response-5).
 * Access tokens are signed with the server's current key (ES256, or RS256 for an RSA key given by
 * environment) and carry `kid`; `fam` names the sign-in they belong to, so revoking it revokes them.
 */
import { randomUUID } from 'node:crypto';
import * as jose from 'jose';
import type { AuthServices } from './context';
import { randomSecret, sha256 } from './secrets';
import { insertFamily, insertRefreshToken } from './store/grants';
import type { Queryable } from '../storage/database';
import { parseScopes } from '../access/scopes';

export interface AccessTokenClaims extends jose.JWTPayload {
  client_id: string;
  scope: string;
  fhirUser?: string;
  /** The patient in context: the id of a patient user's own Patient. */
  patient?: string;
  /** The token family (sign-in) this token belongs to; absent for client_credentials. */
  fam?: string;
}

/** The SMART token response (CONTRACT section 4). */
export interface TokenResponse {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  scope: string;
  refresh_token?: string;
  patient?: string;
  fhirUser?: string;
  id_token?: string;
}

/** Who a token is issued to. `fhirUser` is "Patient/<id>" or "Practitioner/<id>" for users. */
export interface TokenSubject {
  /** The user's id, or the client_id for client_credentials. */
  sub: string;
  clientId: string;
  fhirUser?: string;
}

export interface IssueOptions {
  subject: TokenSubject;
  scope: string[];
  /** The sign-in this token belongs to (refresh family); undefined for client_credentials. */
  familyId?: string;
  /** Set to issue a new refresh token in `familyId`. */
  refresh?: boolean;
  authTime?: Date;
  nonce?: string;
}

/** The patient id a patient user's tokens carry as launch context. */
export function patientContext(fhirUser: string | undefined): string | undefined {
  return fhirUser?.startsWith('Patient/') ? fhirUser.slice('Patient/'.length) : undefined;
}

export async function signAccessToken(auth: AuthServices, o: IssueOptions): Promise<{ token: string; jti: string; expiresIn: number }> {
  const key = await auth.keys.current();
  const expiresIn = auth.settings.accessTokenTtlSeconds;
  const jti = randomUUID();
  const claims: AccessTokenClaims = { client_id: o.subject.clientId, scope: o.scope.join(' ') };
  if (o.subject.fhirUser) claims.fhirUser = o.subject.fhirUser;
  const patient = patientContext(o.subject.fhirUser);
  if (patient) claims.patient = patient;
  if (o.familyId) claims.fam = o.familyId;
  const token = await new jose.SignJWT(claims)
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt' })
    .setIssuer(auth.settings.issuer)
    .setAudience(auth.settings.fhirBaseUrl)
    .setSubject(o.subject.sub)
    .setJti(jti)
    .setIssuedAt()
    .setExpirationTime(`${expiresIn}s`)
    .sign(key.key);
  return { token, jti, expiresIn };
}

/** OpenID Connect Core section 2; `fhirUser` per SMART when that scope was granted. */
async function signIdToken(auth: AuthServices, o: IssueOptions, scopes: Set<string>): Promise<string> {
  const key = await auth.keys.current();
  const claims: jose.JWTPayload = {};
  if (scopes.has('fhirUser') && o.subject.fhirUser) claims.fhirUser = o.subject.fhirUser;
  if (o.nonce) claims.nonce = o.nonce;
  if (o.authTime) claims.auth_time = Math.floor(o.authTime.getTime() / 1000);
  return new jose.SignJWT(claims)
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
    .setIssuer(auth.settings.issuer)
    .setAudience(o.subject.clientId)
    .setSubject(o.subject.sub)
    .setIssuedAt()
    .setExpirationTime(`${auth.settings.accessTokenTtlSeconds}s`)
    .sign(key.key);
}

/** Starts a sign-in's token family (the refresh tokens it will rotate through). */
export async function startFamily(
  auth: AuthServices,
  q: Queryable,
  f: { clientId: string; userId: string; scope: string[]; authTime: Date },
): Promise<string> {
  const id = randomUUID();
  await insertFamily(q, { id, clientId: f.clientId, userId: f.userId, scope: f.scope.join(' '), authTime: f.authTime }, auth.settings.refreshTokenTtlSeconds);
  return id;
}

/** Whether granted scopes call for a refresh token (SMART: offline_access or online_access). */
export function wantsRefreshToken(scope: string[]): boolean {
  return parseScopes(scope).some((s) => s.kind === 'refresh');
}

/** Signs the tokens of one token response; a new refresh token is stored in `q` (the caller's transaction). */
export async function issueTokens(auth: AuthServices, q: Queryable, o: IssueOptions): Promise<TokenResponse> {
  const access = await signAccessToken(auth, o);
  const scopes = new Set(o.scope);
  const response: TokenResponse = { access_token: access.token, token_type: 'Bearer', expires_in: access.expiresIn, scope: o.scope.join(' ') };
  if (o.refresh && o.familyId) {
    const refresh = randomSecret();
    await insertRefreshToken(q, sha256(refresh), o.familyId);
    response.refresh_token = refresh;
  }
  const patient = patientContext(o.subject.fhirUser);
  if (patient) response.patient = patient;
  if (o.subject.fhirUser) response.fhirUser = o.subject.fhirUser;
  if (scopes.has('openid')) response.id_token = await signIdToken(auth, o, scopes);
  return response;
}
