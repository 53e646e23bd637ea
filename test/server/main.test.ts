/**
 * The real entry point (CONTRACT section 1): starts, migrates, answers the probes, and on SIGTERM stops
 * accepting, finishes the requests in flight and exits 0.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../../src/config';

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

async function waitReady(url: string, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
    try {
      if ((await fetch(`${url}/readyz`)).status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('server did not become ready');
}

test('serves FHIR, then on SIGTERM finishes in-flight requests and exits 0', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'fhir-main-'));
  const port = await freePort();
  const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', 'src/main.ts'], {
    cwd: projectRoot(),
    env: { ...process.env, PORT: String(port), DATA_DIR: dataDir, LOG_LEVEL: 'warn', BOOTSTRAP_CLIENT_ID: 'main-admin', BOOTSTRAP_CLIENT_SECRET: 'main-admin-secret-0123456789abcdef' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitReady(url, child);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    const token = await fetch(`${url}/oauth2/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from('main-admin:main-admin-secret-0123456789abcdef').toString('base64')}`,
      },
      body: 'grant_type=client_credentials&scope=system%2F*.*',
    });
    expect(token.status).toBe(200);
    const auth = { authorization: `Bearer ${((await token.json()) as { access_token: string }).access_token}` };
    expect((await fetch(`${url}/fhir/Patient`)).status).toBe(401);
    const created = await fetch(`${url}/fhir/Patient`, {
      method: 'POST',
      headers: { 'content-type': 'application/fhir+json', ...auth },
      body: JSON.stringify({ resourceType: 'Patient', gender: 'female' }),
    });
    expect(created.status).toBe(201);
    expect(created.headers.get('location')).toMatch(new RegExp(`^http://localhost:${port}/fhir/Patient/`));

    // A transaction large enough to still be running when SIGTERM arrives.
    const entries = Array.from({ length: 300 }, () => ({
      resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' } },
      request: { method: 'POST', url: 'Observation' },
    }));
    const inFlight = fetch(`${url}/fhir`, {
      method: 'POST',
      headers: { 'content-type': 'application/fhir+json', ...auth },
      body: JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry: entries }),
    });
    await new Promise((r) => setTimeout(r, 30));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    child.kill('SIGTERM');
    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(((await res.json()) as { entry: unknown[] }).entry).toHaveLength(300);
    expect(await exited).toBe(0);
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  } catch (err) {
    throw new Error(`${(err as Error).message}\nserver stderr:\n${stderr}`);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  }
}, 120_000);
