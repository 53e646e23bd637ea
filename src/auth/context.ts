/**
 * What the authorization server runs with: the database, the FHIR services (sign-up writes Patient and
 * Practitioner resources through the FHIR router), the signing keys, the mail seam and the settings.
 */
import type * as jose from 'jose';
import type { AuthConfig } from '../config';
import type { FhirServices } from '../fhir/context';
import type { Database } from '../storage/database';
import type { SigningKeys } from './keys';
import type { Mailer } from './mail';

export interface AuthSettings extends AuthConfig {
  /** BASE_URL: the OpenID Connect issuer (`iss` of every token). */
  issuer: string;
  /** `$BASE_URL/fhir`: the `aud` every access token carries and every authorization request must name. */
  fhirBaseUrl: string;
  tokenEndpoint: string;
}

export interface AuthServices {
  db: Database;
  fhir: FhirServices;
  keys: SigningKeys;
  mailer: Mailer;
  settings: AuthSettings;
  /** Key sets fetched from clients' registered JWKS URLs, cached and refreshed by jose. */
  remoteJwks: Map<string, ReturnType<typeof jose.createRemoteJWKSet>>;
}

/** Endpoint URLs, all under BASE_URL (CONTRACT section 1). */
export function endpoints(baseUrl: string) {
  return {
    authorize: `${baseUrl}/oauth2/authorize`,
    token: `${baseUrl}/oauth2/token`,
    revoke: `${baseUrl}/oauth2/revoke`,
    introspect: `${baseUrl}/oauth2/introspect`,
    userinfo: `${baseUrl}/oauth2/userinfo`,
    jwks: `${baseUrl}/oauth2/jwks`,
  };
}
