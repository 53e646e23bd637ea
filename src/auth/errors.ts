/**
 * OAuth 2 error responses (RFC 6749 section 5.2, RFC 7009, RFC 7662): `{error, error_description}` JSON,
 * which OAuth clients parse, rather than an OperationOutcome. The /oauth2 routes answer these; the /auth
 * routes answer OperationOutcomes like the rest of the server.
 */
export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'unsupported_response_type'
  | 'unsupported_token_type'
  | 'invalid_scope'
  | 'access_denied'
  | 'invalid_token'
  | 'insufficient_scope'
  | 'slow_down';

export class OAuthError extends Error {
  constructor(
    readonly status: number,
    readonly error: OAuthErrorCode,
    readonly description: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(description);
    this.name = 'OAuthError';
  }

  toJSON(): { error: string; error_description: string } {
    return { error: this.error, error_description: this.description };
  }
}

export const invalidRequest = (description: string) => new OAuthError(400, 'invalid_request', description);
export const invalidGrant = (description: string) => new OAuthError(400, 'invalid_grant', description);
export const invalidScope = (description: string) => new OAuthError(400, 'invalid_scope', description);
export const unauthorizedClient = (description: string) => new OAuthError(400, 'unauthorized_client', description);
/** 401 when the client tried to authenticate (RFC 6749 section 5.2); `basic` adds the challenge. */
export const invalidClient = (description: string, basic = false) =>
  new OAuthError(401, 'invalid_client', description, basic ? { 'WWW-Authenticate': 'Basic realm="oauth2"' } : {});
