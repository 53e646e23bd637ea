/**
 * The bootstrap admin client guards system/*.* (CONTRACT section 1): its secret must be long enough, and the
 * two variables go together. A refused configuration stops the start with a clear message.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, projectRoot } from '../../src/config';

test('a BOOTSTRAP_CLIENT_SECRET shorter than 32 characters is refused', () => {
  expect(() => loadConfig({ BOOTSTRAP_CLIENT_ID: 'admin', BOOTSTRAP_CLIENT_SECRET: 'x'.repeat(31) })).toThrow(/31 characters long; it must have at least 32/);
  expect(loadConfig({ BOOTSTRAP_CLIENT_ID: 'admin', BOOTSTRAP_CLIENT_SECRET: 'x'.repeat(32) }).auth.bootstrapClientSecret).toHaveLength(32);
});

test('BOOTSTRAP_CLIENT_ID without a secret (or the reverse) is refused', () => {
  expect(() => loadConfig({ BOOTSTRAP_CLIENT_ID: 'admin' })).toThrow(/go together/);
  expect(() => loadConfig({ BOOTSTRAP_CLIENT_SECRET: 'x'.repeat(40) })).toThrow(/go together/);
});

test('the server refuses to start with a short secret, saying why', () => {
  const res = spawnSync(process.execPath, ['-r', 'ts-node/register/transpile-only', 'src/main.ts'], {
    cwd: projectRoot(),
    env: { ...process.env, PORT: '0', DATA_DIR: mkdtempSync(join(tmpdir(), 'fhir-cfg-')), BOOTSTRAP_CLIENT_ID: 'admin', BOOTSTRAP_CLIENT_SECRET: 'short', LOG_LEVEL: 'info' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect(res.status).not.toBe(0);
  expect(res.stdout + res.stderr).toMatch(/BOOTSTRAP_CLIENT_SECRET is 5 characters long/);
}, 90_000);
