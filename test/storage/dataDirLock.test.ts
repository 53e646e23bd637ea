/**
 * One server per embedded data directory (issue 11): the lock holds the real PID, a second open is refused
 * naming the holder, a lock left by a dead process is taken over, and a second real server on a DATA_DIR in
 * use exits with a clear message while the first keeps serving.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../../src/config';
import { DataDirInUseError, lockDataDir } from '../../src/storage/dataDirLock';
import { openDatabase } from '../../src/storage/database';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'fhir-lock-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

test('a second open of one data directory is refused, naming the holder; after close it opens again', async () => {
  const data = join(dir, 'pglite');
  const first = await openDatabase({ dataDir: data, poolSize: 1 });
  const holder = JSON.parse(readFileSync(`${data}.lock`, 'utf8'));
  expect(holder).toEqual({ pid: process.pid, host: hostname(), since: expect.any(String) });
  await expect(openDatabase({ dataDir: data, poolSize: 1 })).rejects.toThrow(new RegExp(`in use by process ${process.pid} \\(since`));
  await first.close();
  expect(existsSync(`${data}.lock`)).toBe(false);
  const again = await openDatabase({ dataDir: data, poolSize: 1 });
  await again.close();
}, 60_000);

test('a lock left by a process that died is taken over', () => {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  const deadPid = Number(child.stdout.toString());
  writeFileSync(join(dir, 'x.lock'), JSON.stringify({ pid: deadPid, host: hostname(), since: '2026-01-01T00:00:00.000Z' }));
  const lock = lockDataDir(join(dir, 'x'));
  expect(JSON.parse(readFileSync(join(dir, 'x.lock'), 'utf8')).pid).toBe(process.pid);
  expect(() => lockDataDir(join(dir, 'x'))).toThrow(DataDirInUseError);
  lock.release();
  expect(existsSync(join(dir, 'x.lock'))).toBe(false);
});

test('a lock naming this very PID from an earlier life (a restarted container is PID 1 again) is stale', () => {
  writeFileSync(join(dir, 'y.lock'), JSON.stringify({ pid: process.pid, host: hostname(), since: '2026-01-01T00:00:00.000Z' }));
  const lock = lockDataDir(join(dir, 'y'));
  lock.release();
});

test('a lock held by a live process on another host is refused with advice', () => {
  writeFileSync(join(dir, 'z.lock'), JSON.stringify({ pid: 1, host: 'other-host', since: '2026-01-01T00:00:00.000Z' }));
  expect(() => lockDataDir(join(dir, 'z'))).toThrow(/process 1 on host other-host.*remove the lock file/);
});

test('a second real server on a DATA_DIR in use exits non-zero naming the first; the first keeps serving', async () => {
  const env = (port: number) => ({ ...process.env, PORT: String(port), DATA_DIR: dir, DATABASE_URL: '', LOG_LEVEL: 'info', NODE_ENV: 'production' });
  const args = ['-r', 'ts-node/register/transpile-only', 'src/main.ts'];
  const first = spawn(process.execPath, args, { cwd: projectRoot(), env: env(0), stdio: ['ignore', 'pipe', 'pipe'] });
  let firstOut = '';
  first.stdout!.on('data', (d) => (firstOut += d));
  try {
    for (let i = 0; i < 300 && !/FHIR server listening/.test(firstOut); i++) await new Promise((r) => setTimeout(r, 100));
    expect(firstOut).toMatch(/FHIR server listening/);
    // NODE_ENV=production without DATABASE_URL says so loudly (pino level 40 = warn)
    expect(firstOut).toMatch(/"level":40[^\n]*NODE_ENV=production without DATABASE_URL/);
    expect(firstOut).toMatch(/no admin client/);
    const second = spawnSync(process.execPath, args, { cwd: projectRoot(), env: env(0), encoding: 'utf8', timeout: 60_000 });
    expect(second.status).not.toBe(0);
    expect(second.stdout + second.stderr).toMatch(new RegExp(`in use by process ${first.pid}`));
    expect(first.exitCode).toBeNull();
  } finally {
    first.kill('SIGTERM');
    await new Promise((r) => first.once('exit', r));
  }
  expect(existsSync(join(dir, 'pglite.lock'))).toBe(false);
}, 120_000);
