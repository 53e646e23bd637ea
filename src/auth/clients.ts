/**
 * OAuth clients: the two the configuration defines (the bootstrap admin client of CONTRACT section 1 and
 * the first-party public app `healthmed-app`), registration by an admin (`POST /auth/clients`, in RFC 7591
 * vocabulary), and client authentication at the token, revocation and introspection endpoints
 * (RFC 6749 section 2.3: client_secret_basic; RFC 7523: private_key_jwt; public clients send client_id).
 */
import { parseScope } from '../access/scopes';
import { badRequest, conflict } from '../fhir/outcomes';
import { ASSERTION_TYPE, verifyClientAssertion } from './assertions';
import type { AuthServices } from './context';
import { invalidClient, invalidRequest } from './errors';
import { randomSecret, safeEqual, sha256 } from './secrets';
import { findClient, insertClient, upsertClient, type ClientAuthMethod, type ClientRecord, type ClientRow } from './store/clients';

export const APP_CLIENT_ID = 'healthmed-app';
const APP_SCOPE = 'openid fhirUser profile offline_access online_access launch/patient patient/*.* user/*.*';
const GRANT_TYPES = ['authorization_code', 'refresh_token', 'client_credentials'];

/** Creates or updates the configured clients; idempotent, run at start by every server. */
export async function ensureConfiguredClients(auth: AuthServices): Promise<void> {
  const s = auth.settings;
  await upsertClient(auth.db, {
    clientId: APP_CLIENT_ID,
    clientName: 'Health&Med',
    authMethod: 'none',
    redirectUris: s.appRedirectUris,
    grantTypes: ['authorization_code', 'refresh_token'],
    scope: APP_SCOPE,
    firstParty: true,
  });
  if (s.bootstrapClientId && s.bootstrapClientSecret) {
    await upsertClient(auth.db, {
      clientId: s.bootstrapClientId,
      clientName: 'Bootstrap administrator',
      authMethod: 'client_secret_basic',
      secretHash: sha256(s.bootstrapClientSecret),
      redirectUris: [],
      grantTypes: ['client_credentials'],
      scope: 'system/*.*',
    });
  }
}

// ---- registration ----

export interface ClientRegistration {
  client_id: string;
  client_secret?: string;
  client_name?: string;
  token_endpoint_auth_method: ClientAuthMethod;
  redirect_uris: string[];
  grant_types: string[];
  scope: string;
  jwks?: unknown;
  jwks_uri?: string;
}

const CLIENT_ID = /^[A-Za-z0-9._~-]{3,128}$/;
const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

function stringList(value: unknown, field: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string' && v !== '')) throw badRequest(`${field} must be a list of strings`, field);
  return value as string[];
}

/** OAuth 2.1 section 2.3.1 and 8.4: https, http on a loopback host, or a private-use (reverse-domain) scheme; no fragment. */
function assertRedirectUri(uri: string): void {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw badRequest(`Invalid redirect URI ${uri}`, 'redirect_uris');
  }
  const ok =
    url.hash === '' &&
    (url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK.has(url.hostname)) || /^[a-z][a-z0-9+-]*\.[a-z0-9.+-]+:$/.test(url.protocol));
  if (!ok) throw badRequest(`Redirect URI ${uri} must use https, a loopback http address, or a private-use scheme, without fragment`, 'redirect_uris');
}

function assertJwksUri(uri: string): void {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw badRequest('Invalid jwks_uri', 'jwks_uri');
  }
  if (!(url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK.has(url.hostname)))) {
    throw badRequest('jwks_uri must use https', 'jwks_uri');
  }
}

function assertJwks(jwks: unknown): asserts jwks is { keys: Record<string, unknown>[] } {
  const keys = (jwks as { keys?: unknown })?.keys;
  if (!Array.isArray(keys) || keys.length === 0) throw badRequest('jwks must be a JSON Web Key Set with keys', 'jwks');
  for (const k of keys as Record<string, unknown>[]) {
    if (typeof k !== 'object' || k === null || (k.kty !== 'RSA' && k.kty !== 'EC')) throw badRequest('jwks keys must be RSA or EC public keys', 'jwks');
    if ('d' in k) throw badRequest('jwks must hold public keys only', 'jwks');
  }
}

/** Registers a client; the generated secret (client_secret_basic) is returned once and stored as a hash. */
export async function registerClient(auth: AuthServices, body: Record<string, unknown>): Promise<ClientRegistration> {
  const method = (body.token_endpoint_auth_method ?? 'none') as ClientAuthMethod;
  if (!['none', 'client_secret_basic', 'private_key_jwt'].includes(method)) {
    throw badRequest('token_endpoint_auth_method must be none, client_secret_basic or private_key_jwt', 'token_endpoint_auth_method');
  }
  const clientId = body.client_id === undefined ? `client-${randomSecret(12)}` : body.client_id;
  if (typeof clientId !== 'string' || !CLIENT_ID.test(clientId)) throw badRequest('client_id must be 3 to 128 URL-safe characters', 'client_id');
  if (body.client_name !== undefined && typeof body.client_name !== 'string') throw badRequest('client_name must be a string', 'client_name');
  const redirectUris = stringList(body.redirect_uris, 'redirect_uris');
  redirectUris.forEach(assertRedirectUri);
  const grantTypes = stringList(body.grant_types, 'grant_types');
  if (grantTypes.length === 0) {
    grantTypes.push(...(method === 'none' || redirectUris.length > 0 ? ['authorization_code', 'refresh_token'] : ['client_credentials']));
  }
  for (const g of grantTypes) if (!GRANT_TYPES.includes(g)) throw badRequest(`Unsupported grant type ${g}`, 'grant_types');
  if (method === 'none' && grantTypes.includes('client_credentials')) throw badRequest('A public client cannot use client_credentials', 'grant_types');
  if (grantTypes.includes('authorization_code') && redirectUris.length === 0) throw badRequest('authorization_code needs redirect_uris', 'redirect_uris');

  if (typeof body.scope !== 'string' || body.scope.trim() === '') throw badRequest('scope (the scopes the client may be granted) is required', 'scope');
  const scopes = body.scope.trim().split(/\s+/);
  for (const s of scopes) {
    const parsed = parseScope(s);
    if (!parsed) throw badRequest(`Unknown scope ${s}`, 'scope');
    if (parsed.kind === 'resource' && parsed.context === 'system' && !grantTypes.includes('client_credentials')) {
      throw badRequest(`${s}: system scopes need the client_credentials grant`, 'scope');
    }
  }

  const record: ClientRecord = { clientId, clientName: body.client_name as string | undefined, authMethod: method, redirectUris, grantTypes, scope: scopes.join(' ') };
  let secret: string | undefined;
  if (method === 'client_secret_basic') {
    secret = randomSecret();
    record.secretHash = sha256(secret);
  } else if (method === 'private_key_jwt') {
    if (body.jwks !== undefined) {
      assertJwks(body.jwks);
      record.jwks = body.jwks as ClientRecord['jwks'];
    } else if (typeof body.jwks_uri === 'string') {
      assertJwksUri(body.jwks_uri);
      record.jwksUri = body.jwks_uri;
    } else {
      throw badRequest('private_key_jwt needs jwks or jwks_uri', 'jwks');
    }
  }
  if (!(await insertClient(auth.db, record))) throw conflict(`Client ${clientId} already exists`);
  const out: ClientRegistration = {
    client_id: clientId,
    token_endpoint_auth_method: method,
    redirect_uris: redirectUris,
    grant_types: grantTypes,
    scope: record.scope,
  };
  if (secret) out.client_secret = secret;
  if (record.clientName) out.client_name = record.clientName;
  if (record.jwks) out.jwks = record.jwks;
  if (record.jwksUri) out.jwks_uri = record.jwksUri;
  return out;
}

// ---- client authentication ----

/** RFC 6749 section 2.3.1: id and secret are form-encoded, then joined by ':' and base64-encoded. */
function parseBasic(authorization: string): { clientId: string; secret: string } | undefined {
  const m = /^Basic +([A-Za-z0-9+/]+=*) *$/i.exec(authorization);
  if (!m) return undefined;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  const unform = (s: string) => decodeURIComponent(s.replace(/\+/g, ' '));
  try {
    return { clientId: unform(decoded.slice(0, colon)), secret: unform(decoded.slice(colon + 1)) };
  } catch {
    return undefined;
  }
}

/**
 * Authenticates the client of a token, revocation or introspection request. Exactly one method:
 * HTTP Basic, a client assertion, or (public clients) a bare client_id.
 */
export async function authenticateClient(auth: AuthServices, authorization: string | undefined, form: URLSearchParams): Promise<ClientRow> {
  const clientIdParam = form.get('client_id') ?? undefined;
  const assertionType = form.get('client_assertion_type');
  const assertion = form.get('client_assertion');
  const basic = authorization && /^Basic /i.test(authorization) ? authorization : undefined;
  if (basic && (assertionType || assertion)) throw invalidRequest('Use one client authentication method');
  if (basic) {
    const creds = parseBasic(basic);
    if (!creds) throw invalidClient('Malformed Basic credentials', true);
    if (clientIdParam !== undefined && clientIdParam !== creds.clientId) throw invalidRequest('client_id does not match the Basic credentials');
    const client = await findClient(auth.db, creds.clientId);
    const ok = client?.auth_method === 'client_secret_basic' && client.secret_hash !== null && safeEqual(sha256(creds.secret), client.secret_hash);
    if (!client || !ok) throw invalidClient('Client authentication failed', true);
    return client;
  }
  if (assertionType || assertion) {
    if (assertionType !== ASSERTION_TYPE) throw invalidRequest(`client_assertion_type must be ${ASSERTION_TYPE}`);
    if (!assertion) throw invalidRequest('client_assertion is required');
    return verifyClientAssertion(auth, assertion, clientIdParam);
  }
  if (!clientIdParam) throw invalidClient('Client authentication is required');
  const client = await findClient(auth.db, clientIdParam);
  if (!client) throw invalidClient('Unknown client');
  if (client.auth_method !== 'none') throw invalidClient('This client must authenticate');
  return client;
}
