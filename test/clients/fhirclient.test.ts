/**
 * SMART's own JavaScript client (`fhirclient`, https://docs.smarthealthit.org/client-js/) through a standalone
 * launch against this server, as a Node app would run it: its launch page calls `smart(req, res).authorize()`
 * (discovery from `$FHIR_BASE/.well-known/smart-configuration`, PKCE S256, redirect to /oauth2/authorize), the
 * user signs in and approves on the server's pages (plain HTTP here; the browser test does it in Chromium), and
 * its redirect page calls `smart(req, res).ready()`, which exchanges the code. The client then reads FHIR data
 * with the token it holds.
 * https://hl7.org/fhir/smart-app-launch/app-launch.html
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import smart from 'fhirclient';
import type Client from 'fhirclient/lib/Client';
import { startServer, type TestServer } from '../helpers/server';
import { ADMIN_ENV, punctuatedCpf, signUp } from '../auth/helpers';
import { signInAndApprove } from './browser';

const SCOPE = 'openid fhirUser launch/patient patient/*.rs offline_access';

/**
 * A minimal SMART app: GET /launch starts the launch, GET /callback completes it. Its session storage is one
 * in-memory map (one user at a time); the clients it got are kept by `state` for the test to use.
 */
interface SmartApp {
  origin: string;
  redirectUri: string;
  fhirBase: string;
  clients: Map<string, Client>;
  close(): Promise<void>;
}

async function startSmartApp(): Promise<SmartApp> {
  const session = new Map<string, unknown>();
  const storage = {
    get: async (key: string) => session.get(key),
    set: async (key: string, value: unknown) => (session.set(key, value), value),
    unset: async (key: string) => session.delete(key),
  };
  const app: SmartApp = { origin: '', redirectUri: '', fhirBase: '', clients: new Map(), close: async () => undefined };
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', app.origin).pathname;
    const handle = async () => {
      if (path === '/launch') {
        await smart(req, res, storage).authorize({ clientId: 'healthmed-app', scope: SCOPE, redirectUri: app.redirectUri, iss: app.fhirBase });
      } else if (path === '/callback') {
        const client = await smart(req, res, storage).ready();
        app.clients.set(new URL(req.url!, app.origin).searchParams.get('state')!, client);
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ready');
      } else {
        res.writeHead(404).end();
      }
    };
    handle().catch((err: Error) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(err.message);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  app.origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  app.redirectUri = `${app.origin}/callback`;
  app.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return app;
}

let app: SmartApp;
let server: TestServer;
beforeAll(async () => {
  app = await startSmartApp();
  server = await startServer({ ...ADMIN_ENV, APP_REDIRECT_URIS: app.redirectUri });
  app.fhirBase = server.fhirBase;
});
afterAll(async () => {
  await server?.close();
  await app?.close();
});

/** The app's launch page -> the server's pages -> the app's redirect page; returns fhirclient's Client. */
async function launch(login: string): Promise<Client> {
  const started = await fetch(`${app.origin}/launch`, { redirect: 'manual' });
  expect(started.status).toBe(302);
  const authorizeUrl = new URL(started.headers.get('location')!);
  expect(`${authorizeUrl.origin}${authorizeUrl.pathname}`).toBe(`${server.baseUrl}/oauth2/authorize`);
  expect(Object.fromEntries(authorizeUrl.searchParams)).toMatchObject({
    client_id: 'healthmed-app',
    redirect_uri: app.redirectUri,
    aud: server.fhirBase,
    scope: SCOPE,
    code_challenge_method: 'S256',
  });

  const back = await signInAndApprove(authorizeUrl.href, login);
  expect(back.href.startsWith(`${app.redirectUri}?`)).toBe(true);
  const state = back.searchParams.get('state')!;
  expect(state).toBe(authorizeUrl.searchParams.get('state'));
  const ready = await fetch(back);
  expect({ status: ready.status, text: await ready.text() }).toEqual({ status: 200, text: 'ready' });
  return app.clients.get(state)!;
}

describe('fhirclient (SMART on FHIR JavaScript client), standalone launch', () => {
  it('completes the launch and reads the patient in context', async () => {
    const person = await signUp(server);
    const id = person.patient.split('/')[1];
    const client = await launch(person.email);

    expect(client.getPatientId()).toBe(id);
    expect(client.getFhirUser()).toBe(person.patient);
    expect(client.state.tokenResponse).toMatchObject({ token_type: 'Bearer', patient: id, refresh_token: expect.any(String) });

    const byPath = await client.request(`Patient/${id}`);
    expect(byPath).toMatchObject({ resourceType: 'Patient', id });
    const inContext = await client.patient.read();
    expect(inContext).toMatchObject({ resourceType: 'Patient', id });
    expect(inContext.identifier).toEqual(expect.arrayContaining([expect.objectContaining({ value: person.cpf })]));
  });

  it("is refused another patient's record", async () => {
    const person = await signUp(server);
    const other = await signUp(server);
    const client = await launch(punctuatedCpf(person.cpf));
    const refused = await client.request(other.patient).then(
      () => undefined,
      (err: { status?: number }) => err,
    );
    expect([403, 404]).toContain(refused?.status);
  });

  it('refreshes its token (offline_access) and keeps reading', async () => {
    const person = await signUp(server);
    const client = await launch(person.email);
    const before = { ...client.state.tokenResponse! };
    // fhirclient's default refresh sends only grant_type and refresh_token (SMART App Launch 2.x, public apps).
    await client.refresh();
    const after = client.state.tokenResponse!;
    expect(after.access_token).toEqual(expect.any(String));
    expect(after.access_token).not.toBe(before.access_token);
    expect(after.refresh_token).not.toBe(before.refresh_token);
    expect(await client.patient.read()).toMatchObject({ resourceType: 'Patient', id: client.getPatientId() });
  });
});
