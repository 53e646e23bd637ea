/**
 * `npm run bench`: our server against a minimal Koa + pg baseline on the same freshly loaded database.
 * Not a test: it prints numbers and the ratios we aim for. See `npm run bench -- --help`.
 * Steps: build, load through our FHIR API (the read benchmark's Patients, and the search data set of
 * issue 3 when a search scenario is selected), VACUUM ANALYZE, start the baseline, check that both
 * servers answer each search alike, print EXPLAIN plans (--explain), then measure each scenario at each
 * connection count on both servers (after a --warmup at the largest count before its first measurement), and
 * each scenario with a p95 target once more at a fixed rate below saturation (--latency-load).
 */
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { authEnv, authHeaders } from './auth';
import { loadBookingData } from './booking';
import { loadConsentData } from './consent';
import { patientToken } from './patientToken';
import { analyze, databaseExists, databaseUrl as urlOf, loadManifest, recreateDatabase, saveManifest, tableSizes } from './database';
import { measure, probe, type Measurement } from './measure';
import { parseOptions, type BenchOptions } from './options';
import { loadPatients } from './patients';
import { table, type Row } from './report';
import { scenarios, type BenchData, type Scenario, type Target } from './scenarios';
import { capturedSource, explainScenarios, explainSearchSource, findExplainSearch, printExplainSummary } from './search/explain';
import { loadSearchData, type SearchData } from './search/load';
import { printAgreement, verify } from './search/verify';
import { startServer, type RunningServer } from './servers';

const root = join(__dirname, '..');
const TABLES = [
  'resources',
  'resource_history',
  'search_token',
  'search_string',
  'search_date',
  'search_number',
  'search_quantity',
  'search_reference',
  'search_uri',
  'search_position',
];

function section(title: string): void {
  console.log(`\n== ${title}`);
}

function build(): void {
  section('npm run build');
  const result = spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) throw new Error(`npm run build failed (${result.status ?? result.signal})`);
}

function select(only: string[]): Scenario[] {
  const names = new Set(scenarios.map((s) => s.name));
  for (const name of only) if (name !== 'search' && !names.has(name)) throw new Error(`no scenario named ${name}`);
  const selected = scenarios.filter((s) => only.length === 0 || only.includes(s.name) || (s.search && only.includes('search')));
  if (selected.length === 0) throw new Error('no scenario selected');
  return selected;
}

function startOurs(options: BenchOptions, databaseUrl: string, logDir: string, captureFile?: string): Promise<RunningServer> {
  return startServer({
    name: 'ours',
    command: process.execPath,
    // --explain without explainSearch: record the SQL of marked requests (bench/sql-capture.js).
    args: captureFile ? ['-r', join(root, 'bench/sql-capture.js'), options.entry] : [options.entry],
    cwd: root,
    env: {
      DATABASE_URL: databaseUrl,
      DB_POOL_SIZE: String(options.poolSize),
      LOG_LEVEL: 'warn',
      NODE_ENV: 'production',
      PORT: String(options.oursPort),
      BASE_URL: `http://127.0.0.1:${options.oursPort}`,
      DATA_DIR: join(logDir, 'data'),
      // The master key that wraps the token signing keys stored in the database (src/blobs/): one per bench
      // database, so that a run with --reuse unwraps what the run that loaded the data wrapped. Synthetic data only.
      LOCAL_MASTER_KEY: createHash('sha256').update(`fhir-bench master key:${options.database}`).digest('base64'),
      ...authEnv(),
      ...(captureFile ? { BENCH_SQL_CAPTURE: captureFile } : {}),
    },
    port: options.oursPort,
    readyPath: '/readyz',
    logDir,
  });
}

interface PatientsManifest {
  count: number;
  ids: string[];
}

/** The data sets a previous run left in the database, if they are the ones this run needs. */
async function reusable(options: BenchOptions, needs: Set<string>): Promise<BenchData | undefined> {
  if (!(await databaseExists(options.adminUrl, options.database))) return undefined;
  const url = urlOf(options.adminUrl, options.database);
  const data: BenchData = { patientIds: [] };
  if (needs.has('patients')) {
    const patients = await loadManifest<PatientsManifest>(url, 'patients');
    if (patients?.count !== options.resources) return undefined;
    data.patientIds = patients.ids;
  }
  if (needs.has('search')) {
    const search = await loadManifest<SearchData>(url, 'search');
    if (search?.scale !== options.searchScale) return undefined;
    data.search = search;
  }
  return data;
}

async function loadReadPatients(options: BenchOptions, fhirBase: string, headers: Record<string, string>): Promise<string[]> {
  section(`load ${options.resources} Patients (batch of ${options.batchSize}, ${options.loadConcurrency} in flight)`);
  let lastPrinted = 0;
  const load = await loadPatients(fhirBase, options.resources, options.batchSize, options.loadConcurrency, (done) => {
    if (done - lastPrinted >= options.resources / 10 || done === options.resources) {
      lastPrinted = done;
      process.stdout.write(`  ${done}/${options.resources}\n`);
    }
  }, headers);
  console.log(
    `loaded ${load.ids.length} in ${load.seconds.toFixed(1)} s (${(load.ids.length / load.seconds).toFixed(0)} resources/s), ${load.failed} failed`,
  );
  if (load.ids.length === 0) throw new Error('no Patient was created; nothing to read');
  return load.ids;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2), process.env);
  const selected = select(options.only);
  const searches = selected.filter((s) => s.search);
  const needs = new Set(selected.map((s) => s.needs));
  const started = Date.now();
  const logDir = mkdtempSync(join(tmpdir(), 'fhir-bench-'));
  const servers: RunningServer[] = [];
  const stopAll = async (): Promise<void> => {
    await Promise.all(servers.splice(0).map((s) => s.stop()));
  };
  process.once('SIGINT', () => void stopAll().then(() => process.exit(130)));

  try {
    if (options.build) build();
    const explainSearch = options.explain && searches.length ? findExplainSearch(resolve(root, options.entry)) : undefined;
    const captureFile = options.explain && searches.length && !explainSearch ? join(logDir, 'sql-capture.jsonl') : undefined;

    section(`database ${options.database}`);
    let data = options.reuse ? await reusable(options, needs) : undefined;
    const reused = data !== undefined;
    const databaseUrl = reused ? urlOf(options.adminUrl, options.database) : await recreateDatabase(options.adminUrl, options.database);
    console.log(
      `${reused ? 'reusing the data of a previous run in' : 'fresh database at'} ${databaseUrl.replace(/\/\/[^@]*@/, '//')}; server logs in ${logDir}`,
    );

    section('our server');
    const ours = await startOurs(options, databaseUrl, logDir, captureFile);
    servers.push(ours);
    const oursHeaders = await authHeaders(ours.url);
    console.log(`ready at ${ours.url}${oursHeaders.authorization ? ' (requires a token: using the bootstrap client\'s)' : ''}`);

    if (!data) {
      data = { patientIds: [] };
      if (needs.has('patients')) {
        data.patientIds = await loadReadPatients(options, `${ours.url}/fhir`, oursHeaders);
        await saveManifest(databaseUrl, 'patients', { count: options.resources, ids: data.patientIds } satisfies PatientsManifest);
      }
      if (needs.has('search')) {
        section(`load the search data set, scale ${options.searchScale} (${options.loadConcurrency} Bundles in flight)`);
        data.search = await loadSearchData(`${ours.url}/fhir`, options.searchScale, options.loadConcurrency, oursHeaders);
        await saveManifest(databaseUrl, 'search', data.search);
      }
      console.log(`VACUUM ANALYZE in ${(await analyze(databaseUrl)).toFixed(1)} s`);
    }
    if (needs.has('booking')) {
      // Never reused: a run books its Slots.
      section(`load ${options.bookingSlots} free Slots for the booking scenario`);
      data.booking = await loadBookingData(ours.url, oursHeaders, options.bookingSlots);
    }
    if (needs.has('consent')) {
      // Never reused: the shares are time-boxed from now.
      section('load the consent data set (3,040 documents, 51 Consents)');
      data.consent = await loadConsentData(ours.url, oursHeaders);
      console.log(`VACUUM ANALYZE in ${(await analyze(databaseUrl)).toFixed(1)} s`);
    }
    const sizes = await tableSizes(databaseUrl, TABLES);
    console.log('on disk: ' + Object.entries(sizes).map(([t, s]) => `${t} ${s}`).join(', '));

    section('baseline (Koa + pg)');
    const baseline = await startServer({
      name: 'baseline',
      command: process.execPath,
      args: ['-r', 'ts-node/register/transpile-only', 'bench/baseline.ts'],
      cwd: root,
      env: {
        DATABASE_URL: databaseUrl,
        DB_POOL_SIZE: String(options.poolSize),
        PORT: String(options.baselinePort),
        // rows are cheap here, and the baseline books several times faster than ours
        BASELINE_SLOTS: String(needs.has('booking') ? Math.max(200_000, options.bookingSlots) : 0),
      },
      port: options.baselinePort,
      readyPath: '/healthz',
      logDir,
    });
    servers.push(baseline);
    console.log(`ready at ${baseline.url}`);

    const targets: [Target, Target] = [
      { name: 'ours', origin: ours.url, patientPath: '/fhir/Patient', fhirPath: '/fhir', headers: oursHeaders },
      { name: 'baseline', origin: baseline.url, patientPath: '/Patient', fhirPath: '', headers: {} },
    ];

    if (searches.length && options.verifySamples > 0) {
      section(`same answers? (${options.verifySamples} requests per search, ours vs baseline)`);
      for (const scenario of searches) printAgreement(await verify(scenario, targets, data, options.verifySamples));
    }

    let plans;
    if (options.explain && searches.length) {
      section('EXPLAIN (ANALYZE, BUFFERS): ours, then the baseline, for the first request of each search');
      const source = explainSearch ? explainSearchSource(explainSearch, databaseUrl, `${ours.url}/fhir`) : capturedSource(targets[0], captureFile!);
      plans = await explainScenarios(searches, targets[0], targets[1], data, databaseUrl, source);
    }

    if (selected.some((s) => s.versus === 'system-token')) data.patientUser = await patientToken(ours.url);
    // ours with a patient's token, against ours with the system token
    const tokenPair: [Target, Target] | undefined = data.patientUser
      ? [
          { ...targets[0], headers: data.patientUser.headers },
          { ...targets[0], name: 'baseline', headers: oursHeaders },
        ]
      : undefined;

    const rows: Row[] = [];
    const largest = Math.max(...options.connections);
    // the p95 target is judged where a request is not queued behind others: at the fewest connections
    const fewest = Math.min(...options.connections);
    // A short unrecorded run before each measurement, so neither side is measured while it settles (pool).
    const shortWarmup = Math.min(2, Math.max(1, options.duration / 5));
    const report = (name: string, m: Measurement, label = ''): void => {
      console.log(
        `  ${name.padEnd(8)} ${label}${m.requestsPerSecond.toFixed(0).padStart(7)} req/s  p50 ${m.p50.toFixed(1)} ms  p95 ${m.p95.toFixed(1)} ms  p99 ${m.p99.toFixed(1)} ms  non-2xx ${m.non2xx}  errors ${m.errors}`,
      );
    };
    for (const scenario of options.measure ? selected : []) {
      // Booking: ours with the booking patient's own token (a patient books for themself)
      // (each request carries its patient's Authorization: the bootstrap client's is not sent)
      const bookingPair: [Target, Target] | undefined = data.booking ? [{ ...targets[0], headers: {} }, targets[1]] : undefined;
      // Consent: ours with the doctor's token, against ours with the patient's own
      const consentPair: [Target, Target] | undefined = data.consent
        ? [
            { ...targets[0], headers: data.consent.practitioner },
            { ...targets[0], name: 'baseline', headers: data.consent.patient },
          ]
        : undefined;
      const pair =
        scenario.versus === 'system-token' ? tokenPair! : scenario.versus === 'patient-token' ? consentPair! : scenario.needs === 'booking' ? bookingPair! : targets;
      for (const target of pair) {
        const problem = await probe(scenario, target, data);
        if (problem) console.log(`warning: ${scenario.name} on ${target.name}: ${problem}`);
      }
      const saturated = new Map<number, Measurement>();
      for (const [i, connections] of options.connections.entries()) {
        const first = i === 0 && options.warmup > 0;
        section(
          `${scenario.name}, ${connections} connection(s), ${options.duration} s each` +
            (first ? ` (after a ${options.warmup} s warm-up at ${largest} connection(s) on each side)` : ''),
        );
        const results = [];
        for (const target of pair) {
          // Before a scenario's first measurement, a long warm-up at full load: our server's code paths need
          // ~15-20 s of load before V8 has optimized them, the baseline's a second.
          if (first) await measure(scenario, target, data, largest, options.warmup);
          else await measure(scenario, target, data, connections, shortWarmup);
          const m = await measure(scenario, target, data, connections, options.duration);
          report(target.name, m);
          results.push(m);
        }
        saturated.set(connections, results[0]);
        rows.push({
          scenario: scenario.name,
          connections,
          target: scenario.target,
          // Saturated at many connections, p95 is mostly queueing (connections / req/s): 32 / 300 req/s is
          // 107 ms on average for the hand-written SQL too. The fixed-rate rows below show both sides' tails.
          p95Target: connections === fewest ? scenario.p95TargetMs : undefined,
          ours: results[0],
          baseline: results[1],
        });
      }
      // The latency a user sees when the server is not saturated: both sides at the same fixed rate, a
      // fraction of what ours managed at the largest connection count.
      if (scenario.p95TargetMs === undefined || options.latencyLoad === 0) continue;
      const rate = Math.round(options.latencyLoad * saturated.get(largest)!.requestsPerSecond);
      if (rate < 1) {
        console.log(`\n${scenario.name}: no fixed-rate run (ours answered ${saturated.get(largest)!.requestsPerSecond.toFixed(1)} req/s)`);
        continue;
      }
      section(
        `${scenario.name}, ${rate} req/s (${options.latencyLoad} x ours at ${largest} connection(s)) over up to ${largest} connection(s), ${options.duration} s each`,
      );
      const results = [];
      for (const target of pair) {
        await measure(scenario, target, data, largest, shortWarmup, rate);
        const m = await measure(scenario, target, data, largest, options.duration, rate);
        report(target.name, m, `@${rate}/s `);
        results.push(m);
      }
      rows.push({
        scenario: scenario.name,
        connections: largest,
        rate,
        target: scenario.target,
        ours: results[0],
        baseline: results[1],
      });
    }

    if (rows.length) {
      section(
        'results (ratio = ours / baseline req/s; for read-patient-token: ours with a patient token / ours with the system token;' +
          ' for consent-search: ours with the token of the doctor the patient shared with / ours with the patient\'s)',
      );
      if (rows.some((r) => r.rate !== undefined)) {
        console.log(
          'Rows `<conns>@<rate>/s`: both servers at the same fixed request rate (random arrivals, --latency-load x ours\' req/s\n' +
            'at <conns> connections): the tails of both sides under the same load, when neither is saturated.\n' +
            'Other rows: closed loop (each connection sends its next request when the answer arrives); ratio and target\n' +
            'apply to those. The p95 target is judged at the fewest connections, where no request queues behind another;\n' +
            'saturated at many, p95 is mostly queueing (connections / req/s), the baseline\'s too.',
        );
      }
      console.log(table(rows));
    }
    if (plans) {
      section('plans (execution time of each statement; Seq Scans on big tables)');
      printExplainSummary(plans);
    }
    console.log(`\nbench took ${((Date.now() - started) / 60_000).toFixed(1)} min`);
  } finally {
    await stopAll();
  }
}

main().catch((err: unknown) => {
  console.error(`\nbench failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
