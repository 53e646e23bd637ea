/**
 * Discovery documents: SMART's `.well-known/smart-configuration` (CONTRACT section 4,
 * https://hl7.org/fhir/smart-app-launch/conformance.html) and OpenID Connect Discovery 1.0 for the issuer.
 */
import { ASSERTION_ALGORITHMS } from './assertions';
import { endpoints } from './context';
import { TOKEN_ALGORITHMS } from './keys';

export const SCOPES_SUPPORTED = [
  'openid',
  'fhirUser',
  'profile',
  'launch/patient',
  'offline_access',
  'online_access',
  'patient/*.read',
  'patient/*.write',
  'patient/*.*',
  'patient/*.cruds',
  'patient/*.rs',
  'user/*.read',
  'user/*.write',
  'user/*.*',
  'user/*.cruds',
  'user/*.rs',
  'system/*.read',
  'system/*.write',
  'system/*.*',
  'system/*.cruds',
  'system/*.rs',
];

export const CAPABILITIES = [
  'launch-standalone',
  'client-public',
  'client-confidential-symmetric',
  'client-confidential-asymmetric',
  'context-standalone-patient',
  'permission-offline',
  'permission-online',
  'permission-patient',
  'permission-user',
  'permission-v1',
  'permission-v2',
  'sso-openid-connect',
];

export function smartConfiguration(baseUrl: string): Record<string, unknown> {
  const e = endpoints(baseUrl);
  return {
    issuer: baseUrl,
    jwks_uri: e.jwks,
    authorization_endpoint: e.authorize,
    token_endpoint: e.token,
    token_endpoint_auth_methods_supported: ['private_key_jwt', 'client_secret_basic'],
    token_endpoint_auth_signing_alg_values_supported: ASSERTION_ALGORITHMS,
    grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials'],
    scopes_supported: SCOPES_SUPPORTED,
    response_types_supported: ['code'],
    introspection_endpoint: e.introspect,
    revocation_endpoint: e.revoke,
    userinfo_endpoint: e.userinfo,
    code_challenge_methods_supported: ['S256'],
    capabilities: CAPABILITIES,
  };
}

export function openidConfiguration(baseUrl: string): Record<string, unknown> {
  const e = endpoints(baseUrl);
  return {
    issuer: baseUrl,
    authorization_endpoint: e.authorize,
    token_endpoint: e.token,
    userinfo_endpoint: e.userinfo,
    jwks_uri: e.jwks,
    revocation_endpoint: e.revoke,
    introspection_endpoint: e.introspect,
    response_types_supported: ['code'],
    grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: [...TOKEN_ALGORITHMS],
    scopes_supported: SCOPES_SUPPORTED,
    claims_supported: ['iss', 'sub', 'aud', 'exp', 'iat', 'auth_time', 'nonce', 'fhirUser'],
    token_endpoint_auth_methods_supported: ['none', 'private_key_jwt', 'client_secret_basic'],
    token_endpoint_auth_signing_alg_values_supported: ASSERTION_ALGORITHMS,
    code_challenge_methods_supported: ['S256'],
  };
}
