/** Command-line options of `npm run bench [-- --quick] [--duration 10] ...`. */

export interface BenchOptions {
  /** Admin connection; the bench database is created next to it. */
  adminUrl: string;
  database: string;
  resources: number;
  /** Seconds per measurement. */
  duration: number;
  /**
   * Seconds of unrecorded load, at the largest connection count, before a scenario's first measurement on
   * each server: our server needs ~15-20 s under load before V8 has optimized its hot paths.
   */
  warmup: number;
  /**
   * Fixed-rate latency run of each scenario with a p95 target: both servers at this fraction of our saturated
   * req/s at the largest connection count (0: skip).
   */
  latencyLoad: number;
  connections: number[];
  /** Scenario names to run (`search` = every search scenario); empty = all. */
  only: string[];
  /** Size of the search data set relative to issue 3's (200,000 Slots, 50,000 Patients, ...). */
  searchScale: number;
  /** Free Slots loaded for the booking scenario, on each side (each booking takes one). */
  bookingSlots: number;
  /** Print EXPLAIN (ANALYZE, BUFFERS) of ours and the baseline for each search scenario. */
  explain: boolean;
  /** Take measurements (off: load, verify and explain only). */
  measure: boolean;
  /** Requests per search scenario whose answers are compared between the two servers. */
  verifySamples: number;
  /** Keep the database of a previous run when it holds the same data sets (skip the load). */
  reuse: boolean;
  batchSize: number;
  loadConcurrency: number;
  oursPort: number;
  baselinePort: number;
  poolSize: number;
  build: boolean;
  /** Our server's entry point, relative to the repository (another build can be compared). */
  entry: string;
}

export const USAGE = `usage: npm run bench -- [options]
  --quick                 10,000 resources, search scale 0.05, 3 s per measurement, 2 s warm-up (smoke run)
  --duration <s>          seconds per measurement (default 10)
  --warmup <s>            unrecorded load before each scenario's first measurement on each server, at the
                          largest connection count (default 15; V8 needs that long to optimize our server);
                          later connection counts get a short warm-up (1-2 s); 0 = short warm-up only
  --latency-load <f>      for each scenario with a p95 target, one more run of both servers at the largest
                          connection count at a fixed rate of f x our saturated req/s there (default 0.5),
                          to show latency when the server is not saturated (the \`@rate\` rows); 0 = skip
  --resources <n>         Patients to load (default 100000)
  --connections <a,b>     connection counts (default 1,32)
  --only <name,...>       scenarios to run (default all): read, create, slot-agenda, patient-cpf,
                          patient-name, doctor-near, appointments, booking; \`search\` = the five searches
  --search-scale <f>      size of the search data set (default 1: 200,000 Slots over 400 Schedules,
                          50,000 Patients, 50,000 Appointments, 5,000 PractitionerRoles); 0.1 for quick runs
  --booking-slots <n>     free Slots loaded through our API for the booking scenario (default 48000; every
                          booking of the run, warm-ups included, takes a new one; the baseline gets 200,000)
  --explain               print EXPLAIN (ANALYZE, BUFFERS) of our SQL and the baseline's for each search,
                          flagging Seq Scans on big tables
  --no-measure            load, verify (and explain) only
  --verify <n>            requests per search compared between the two servers (default 20; 0 = skip)
  --reuse                 keep the bench database of a previous run when it holds the same data
                          (same --resources and --search-scale); its index is as that run's server wrote it
  --pool-size <n>         database connections of each server, ours and the baseline alike (default 20)
  --batch-size <n>        entries per batch Bundle of the read benchmark's Patients (default 500)
  --load-concurrency <n>  batch Bundles in flight while loading (default 4)
  --port <n>              our server's port (default 18080; the baseline uses port + 1)
  --no-build              skip \`npm run build\`
  --entry <file>          our server's entry point (default dist/src/main.js; implies --no-build)
env: BENCH_DATABASE_URL admin connection (default postgres://postgres@127.0.0.1:5432/postgres)`;

function nonNegative(name: string, value: string | undefined): number {
  const n = Number(value);
  if (value === undefined || value === '' || !Number.isFinite(n) || n < 0) throw new Error(`${name} expects a number >= 0, got ${value}`);
  return n;
}

function positive(name: string, value: string | undefined): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} expects a positive number, got ${value}`);
  return n;
}

export function parseOptions(argv: string[], env: NodeJS.ProcessEnv): BenchOptions {
  const options: BenchOptions = {
    adminUrl: env.BENCH_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres',
    database: 'fhir_bench',
    resources: 100_000,
    duration: 10,
    warmup: 15,
    latencyLoad: 0.5,
    connections: [1, 32],
    only: [],
    searchScale: 1,
    bookingSlots: 48_000,
    explain: false,
    measure: true,
    verifySamples: 20,
    reuse: false,
    batchSize: 500,
    loadConcurrency: 4,
    oursPort: 18080,
    baselinePort: 18081,
    poolSize: 20,
    build: true,
    entry: 'dist/src/main.js',
  };
  let explicitResources = false;
  let explicitDuration = false;
  let explicitWarmup = false;
  let explicitScale = false;
  let quick = false;
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split('=', 2);
    const value = (): string => inline ?? argv[++i];
    switch (flag) {
      case '--quick':
        quick = true;
        break;
      case '--duration':
        options.duration = positive(flag, value());
        explicitDuration = true;
        break;
      case '--warmup':
        options.warmup = nonNegative(flag, value());
        explicitWarmup = true;
        break;
      case '--latency-load':
        options.latencyLoad = nonNegative(flag, value());
        break;
      case '--resources':
        options.resources = Math.floor(positive(flag, value()));
        explicitResources = true;
        break;
      case '--connections':
        options.connections = value().split(',').map((c) => Math.floor(positive(flag, c)));
        break;
      case '--only':
        options.only = value().split(',').filter((s) => s !== '');
        break;
      case '--search-scale':
        options.searchScale = positive(flag, value());
        explicitScale = true;
        break;
      case '--booking-slots':
        options.bookingSlots = Math.floor(positive(flag, value()));
        break;
      case '--explain':
        options.explain = true;
        break;
      case '--no-measure':
        options.measure = false;
        break;
      case '--verify': {
        const n = Number(value());
        if (!Number.isInteger(n) || n < 0) throw new Error(`--verify expects a count, got ${n}`);
        options.verifySamples = n;
        break;
      }
      case '--reuse':
        options.reuse = true;
        break;
      case '--pool-size':
        options.poolSize = Math.floor(positive(flag, value()));
        break;
      case '--batch-size':
        options.batchSize = Math.floor(positive(flag, value()));
        break;
      case '--load-concurrency':
        options.loadConcurrency = Math.floor(positive(flag, value()));
        break;
      case '--port':
        options.oursPort = Math.floor(positive(flag, value()));
        options.baselinePort = options.oursPort + 1;
        break;
      case '--entry':
        options.entry = value();
        options.build = false;
        break;
      case '--no-build':
        options.build = false;
        break;
      case '--help':
      case '-h':
        console.log(USAGE);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown option ${argv[i]}\n${USAGE}`);
    }
  }
  if (quick) {
    if (!explicitResources) options.resources = 10_000;
    if (!explicitDuration) options.duration = 3;
    if (!explicitWarmup) options.warmup = 2;
    if (!explicitScale) options.searchScale = 0.05;
    if (!argv.includes('--booking-slots')) options.bookingSlots = 4_000;
  }
  return options;
}
