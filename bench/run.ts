/**
 * `npm run bench`: our server against a minimal Koa + pg baseline on the same freshly loaded database.
 * Not a test: it prints numbers and the ratios we aim for. See `npm run bench -- --help`.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { recreateDatabase, tableSizes } from './database';
import { measure, probe } from './measure';
import { parseOptions, type BenchOptions } from './options';
import { loadPatients } from './patients';
import { table, type Row } from './report';
import { scenarios, type BenchData, type Target } from './scenarios';
import { startServer, type RunningServer } from './servers';

const root = join(__dirname, '..');

function section(title: string): void {
  console.log(`\n== ${title}`);
}

function build(): void {
  section('npm run build');
  const result = spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) throw new Error(`npm run build failed (${result.status ?? result.signal})`);
}

function startOurs(options: BenchOptions, databaseUrl: string, logDir: string): Promise<RunningServer> {
  return startServer({
    name: 'ours',
    command: process.execPath,
    args: [options.entry],
    cwd: root,
    env: {
      DATABASE_URL: databaseUrl,
      DB_POOL_SIZE: String(options.poolSize),
      LOG_LEVEL: 'warn',
      NODE_ENV: 'production',
      PORT: String(options.oursPort),
      BASE_URL: `http://127.0.0.1:${options.oursPort}`,
      DATA_DIR: join(logDir, 'data'),
    },
    port: options.oursPort,
    readyPath: '/readyz',
    logDir,
  });
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2), process.env);
  const logDir = mkdtempSync(join(tmpdir(), 'fhir-bench-'));
  const servers: RunningServer[] = [];
  const stopAll = async (): Promise<void> => {
    await Promise.all(servers.splice(0).map((s) => s.stop()));
  };
  process.once('SIGINT', () => void stopAll().then(() => process.exit(130)));

  try {
    if (options.build) build();

    section(`database ${options.database}`);
    const databaseUrl = await recreateDatabase(options.adminUrl, options.database);
    console.log(`fresh database at ${databaseUrl.replace(/\/\/[^@]*@/, '//')}; server logs in ${logDir}`);

    section('our server');
    const ours = await startOurs(options, databaseUrl, logDir);
    servers.push(ours);
    console.log(`ready at ${ours.url}`);

    section(`load ${options.resources} Patients (batch of ${options.batchSize}, ${options.loadConcurrency} in flight)`);
    let lastPrinted = 0;
    const load = await loadPatients(
      `${ours.url}/fhir`,
      options.resources,
      options.batchSize,
      options.loadConcurrency,
      (done) => {
        if (done - lastPrinted >= options.resources / 10 || done === options.resources) {
          lastPrinted = done;
          process.stdout.write(`  ${done}/${options.resources}\n`);
        }
      },
    );
    console.log(
      `loaded ${load.ids.length} in ${load.seconds.toFixed(1)} s (${(load.ids.length / load.seconds).toFixed(0)} resources/s), ${load.failed} failed`,
    );
    if (load.ids.length === 0) throw new Error('no Patient was created; nothing to read');
    const sizes = await tableSizes(databaseUrl, ['resources', 'resource_history', 'search_token']);
    console.log('on disk: ' + Object.entries(sizes).map(([t, s]) => `${t} ${s}`).join(', '));

    section('baseline (Koa + pg)');
    const baseline = await startServer({
      name: 'baseline',
      command: process.execPath,
      args: ['-r', 'ts-node/register/transpile-only', 'bench/baseline.ts'],
      cwd: root,
      env: { DATABASE_URL: databaseUrl, DB_POOL_SIZE: String(options.poolSize), PORT: String(options.baselinePort) },
      port: options.baselinePort,
      readyPath: '/healthz',
      logDir,
    });
    servers.push(baseline);
    console.log(`ready at ${baseline.url}`);

    const targets: Target[] = [
      { name: 'ours', origin: ours.url, patientPath: '/fhir/Patient' },
      { name: 'baseline', origin: baseline.url, patientPath: '/Patient' },
    ];
    const data: BenchData = { patientIds: load.ids };
    const selected = scenarios.filter((s) => options.only.length === 0 || options.only.includes(s.name));
    if (selected.length === 0) throw new Error(`no scenario named ${options.only.join(', ')}`);

    const rows: Row[] = [];
    for (const scenario of selected) {
      for (const target of targets) {
        const problem = await probe(scenario, target, data);
        if (problem) console.log(`warning: ${scenario.name} on ${target.name}: ${problem}`);
      }
      for (const connections of options.connections) {
        section(`${scenario.name}, ${connections} connection(s), ${options.duration} s each`);
        const results = [];
        for (const target of targets) {
          // A short unrecorded run first, so neither side is measured while it warms up (JIT, pool).
          await measure(scenario, target, data, connections, Math.min(2, Math.max(1, options.duration / 5)));
          const m = await measure(scenario, target, data, connections, options.duration);
          console.log(
            `  ${target.name.padEnd(8)} ${m.requestsPerSecond.toFixed(0).padStart(7)} req/s  p50 ${m.p50.toFixed(1)} ms  p95 ${m.p95.toFixed(1)} ms  p99 ${m.p99.toFixed(1)} ms  non-2xx ${m.non2xx}  errors ${m.errors}`,
          );
          results.push(m);
        }
        rows.push({ scenario: scenario.name, connections, target: scenario.target, ours: results[0], baseline: results[1] });
      }
    }

    section('results (ratio = ours / baseline req/s)');
    console.log(table(rows));
  } finally {
    await stopAll();
  }
}

main().catch((err: unknown) => {
  console.error(`\nbench failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
