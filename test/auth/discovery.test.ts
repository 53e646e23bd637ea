/**
 * SMART discovery (CONTRACT section 4, https://hl7.org/fhir/smart-app-launch/conformance.html), OpenID
 * Connect discovery and the JWKS.
 */
import { startServer, type TestServer } from '../helpers/server';
import { ADMIN_ENV } from './helpers';

let server: TestServer;
beforeAll(async () => {
  server = await startServer(ADMIN_ENV);
});
afterAll(() => server.close());

describe('GET /.well-known/smart-configuration', () => {
  it.each(['/.well-known/smart-configuration', '/fhir/.well-known/smart-configuration'])('%s lists every contract field', async (path) => {
    const res = await server.request('GET', path, undefined, { accept: 'application/json' });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    const b = res.body;
    expect(b.authorization_endpoint).toBe(`${server.baseUrl}/oauth2/authorize`);
    expect(b.token_endpoint).toBe(`${server.baseUrl}/oauth2/token`);
    expect(b.jwks_uri).toBe(`${server.baseUrl}/oauth2/jwks`);
    expect(b.revocation_endpoint).toBe(`${server.baseUrl}/oauth2/revoke`);
    expect(b.introspection_endpoint).toBe(`${server.baseUrl}/oauth2/introspect`);
    expect(b.userinfo_endpoint).toBe(`${server.baseUrl}/oauth2/userinfo`);
    expect(b.issuer).toBe(server.baseUrl);
    expect(b.code_challenge_methods_supported).toEqual(['S256']);
    expect(b.token_endpoint_auth_methods_supported).toEqual(expect.arrayContaining(['private_key_jwt', 'client_secret_basic']));
    expect(b.grant_types_supported).toEqual(expect.arrayContaining(['authorization_code', 'refresh_token', 'client_credentials']));
    expect(b.scopes_supported).toEqual(expect.arrayContaining(['openid', 'fhirUser', 'offline_access', 'launch/patient', 'patient/*.rs', 'system/*.*']));
    expect(b.capabilities).toEqual(
      expect.arrayContaining([
        'launch-standalone',
        'client-public',
        'client-confidential-asymmetric',
        'context-standalone-patient',
        'permission-v1',
        'permission-v2',
        'sso-openid-connect',
        'permission-patient',
        'permission-user',
      ]),
    );
  });

  it('serves OpenID Connect discovery for the issuer', async () => {
    const res = await server.request('GET', '/.well-known/openid-configuration', undefined, { accept: 'application/json' });
    expect(res.status).toBe(200);
    expect(res.body.issuer).toBe(server.baseUrl);
    expect(res.body.id_token_signing_alg_values_supported).toContain('ES256');
  });
});

describe('GET /oauth2/jwks', () => {
  it('publishes public signing keys with kid and alg, never private parts', async () => {
    const res = await server.request('GET', '/oauth2/jwks', undefined, { accept: 'application/json' });
    expect(res.status).toBe(200);
    expect(res.body.keys.length).toBeGreaterThanOrEqual(1);
    for (const key of res.body.keys) {
      expect(key.kid).toEqual(expect.any(String));
      expect(['ES256', 'RS256']).toContain(key.alg);
      expect(key.use).toBe('sig');
      expect(key.d).toBeUndefined();
    }
  });
});
