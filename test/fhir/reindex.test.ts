/**
 * The search index follows every write (same statement), and `$reindex` / `npm run reindex` rebuild it after
 * a SearchParameter is added to fhir-profiles/.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { projectRoot } from '../../src/config';
import { registerSearchParameters } from '../../src/fhir/searchParameters';
import { openDatabase } from '../../src/storage/database';
import { migrate } from '../../src/storage/migrate';
import { startServer, type TestServer } from '../helpers/server';

let s: TestServer;
beforeAll(async () => {
  s = await startServer();
});
afterAll(async () => {
  await s.close();
});

const colorParam = (code: string) => ({
  resourceType: 'SearchParameter',
  id: `basic-${code}`,
  url: `http://fhir.healthmed.com.br/SearchParameter/basic-${code}`,
  name: code,
  status: 'active',
  description: 'test parameter',
  code,
  base: ['Basic'],
  type: 'string',
  expression: "Basic.extension('urn:test:color').value",
});

const basic = (color: string) => ({ resourceType: 'Basic', code: { text: 'x' }, extension: [{ url: 'urn:test:color', valueString: color }] });

async function stringRows(id: string, code: string): Promise<string[]> {
  const r = await s.db.query<{ value: string }>('SELECT value FROM search_string WHERE resource_type = $1 AND resource_id = $2 AND code = $3', ['Basic', id, code]);
  return r.rows.map((x) => x.value);
}

test('index rows are replaced on update and removed on delete', async () => {
  const mrn = randomUUID();
  const p = (await s.request('POST', '/fhir/Patient', { resourceType: 'Patient', identifier: [{ system: 'urn:mrn', value: mrn }], name: [{ family: 'Alves' }] })).body;
  const family = async () =>
    (await s.db.query<{ value: string }>(`SELECT value FROM search_string WHERE resource_type = 'Patient' AND resource_id = $1 AND code = 'family'`, [p.id])).rows.map((r) => r.value);
  expect(await family()).toEqual(['alves']);
  await s.request('PUT', `/fhir/Patient/${p.id}`, { ...p, name: [{ family: 'Barros' }] });
  expect(await family()).toEqual(['barros']);
  await s.request('DELETE', `/fhir/Patient/${p.id}`);
  expect(await family()).toEqual([]);
  const tokens = await s.db.query(`SELECT 1 FROM search_token WHERE resource_type = 'Patient' AND resource_id = $1`, [p.id]);
  expect(tokens.rowCount).toBe(0);
});

test('$reindex indexes existing data for a SearchParameter added later', async () => {
  const created = (await s.request('POST', '/fhir/Basic', basic('Vermelho'))).body;
  expect(await stringRows(created.id, 'color')).toEqual([]);
  registerSearchParameters([colorParam('color') as never]);
  const res = await s.request('POST', '/fhir/Basic/$reindex');
  expect(res.status).toBe(200);
  expect(res.body.parameter[0].valueInteger).toBeGreaterThanOrEqual(1);
  expect(await stringRows(created.id, 'color')).toEqual(['vermelho']);
  // new writes are indexed at once
  const later = (await s.request('POST', '/fhir/Basic', basic('Azul'))).body;
  expect(await stringRows(later.id, 'color')).toEqual(['azul']);
  expect((await s.request('POST', '/fhir/Spaceship/$reindex')).status).toBe(404);
});

test('npm run reindex (src/reindex.ts) rebuilds the index from the command line', async () => {
  if (process.env.DATABASE_URL) return; // the CLI is exercised on the embedded database; same code path otherwise
  const dataDir = mkdtempSync(join(tmpdir(), 'fhir-reindex-'));
  const profiles = mkdtempSync(join(tmpdir(), 'fhir-profiles-'));
  try {
    const db = await openDatabase({ dataDir: join(dataDir, 'pglite'), poolSize: 1 });
    await migrate(db, join(projectRoot(), 'migrations'));
    await db.query(
      `INSERT INTO resources (resource_type, id, version_id, last_updated, deleted, content) VALUES ('Basic', 'b1', 1, now(), false, $1)`,
      [basic('Verde')],
    );
    await db.close();
    cpSync(join(projectRoot(), 'fhir-profiles'), profiles, { recursive: true });
    writeFileSync(join(profiles, 'SearchParameter-basic-shade.json'), JSON.stringify(colorParam('shade')));
    const run = spawnSync(process.execPath, ['-r', 'ts-node/register/transpile-only', 'src/reindex.ts', 'Basic'], {
      cwd: projectRoot(),
      env: { ...process.env, DATA_DIR: dataDir, FHIR_PROFILES_DIR: profiles, LOG_LEVEL: 'silent' },
      encoding: 'utf8',
    });
    expect(run.stderr).toBe('');
    expect(run.stdout).toContain('Basic: 1');
    const after = await openDatabase({ dataDir: join(dataDir, 'pglite'), poolSize: 1 });
    const r = await after.query<{ value: string }>(`SELECT value FROM search_string WHERE resource_id = 'b1' AND code = 'shade'`);
    expect(r.rows).toEqual([{ value: 'verde' }]);
    await after.close();
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(profiles, { recursive: true, force: true });
  }
}, 60_000);
