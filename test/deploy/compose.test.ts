/**
 * The deployment files, checked without a Docker engine: docker-compose.yml is parsed with `yaml`, the
 * Dockerfile as text. What a broken file would cost is a failed `docker build` or `docker compose up`
 * on someone else's machine, so the checks follow what those commands need.
 * Compose file reference: https://docs.docker.com/reference/compose-file/
 * Dockerfile reference: https://docs.docker.com/reference/dockerfile/
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

const root = join(__dirname, '..', '..');

type Dict = Record<string, unknown>;

function dict(value: unknown, what: string): Dict {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`${what} is not a mapping`);
  }
  return value as Dict;
}

/** Compose's `${VAR:-default}` / `${VAR-default}` / `${VAR}` interpolation with an empty environment. */
function interpolate(value: string): string {
  return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}/g, (_m, _name: string, def?: string) => def ?? '');
}

/** One Dockerfile instruction: keyword and its arguments, continuation lines joined, comments dropped. */
interface Instruction {
  keyword: string;
  args: string;
}

function parseDockerfile(text: string): Instruction[] {
  const instructions: Instruction[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#') || (line === '' && pending === '')) continue;
    if (line.endsWith('\\')) {
      pending += line.slice(0, -1) + ' ';
      continue;
    }
    const full = (pending + line).trim();
    pending = '';
    if (full === '') continue;
    const match = /^(\S+)\s*(.*)$/.exec(full);
    if (match) instructions.push({ keyword: match[1].toUpperCase(), args: match[2] });
  }
  return instructions;
}

/** Instructions split at each FROM; the first element of each stage is its FROM. */
function stages(instructions: Instruction[]): Instruction[][] {
  const result: Instruction[][] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') result.push([instruction]);
    else if (result.length > 0) result[result.length - 1].push(instruction);
  }
  return result;
}

interface Copy {
  from?: string;
  sources: string[];
  destination: string;
}

function parseCopy(args: string): Copy {
  const words = args.startsWith('[') ? (JSON.parse(args) as string[]) : args.split(/\s+/);
  const flags = words.filter((w) => w.startsWith('--'));
  const paths = words.filter((w) => !w.startsWith('--'));
  const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
  return { from, sources: paths.slice(0, -1), destination: paths[paths.length - 1] };
}

/** A path a clean clone has: git keeps no empty directory, so a directory must hold something. */
function inClone(path: string): boolean {
  if (!existsSync(path)) return false;
  return !statSync(path).isDirectory() || readdirSync(path).length > 0;
}

/** Resolves `${ARG}` in a FROM line from the Dockerfile's global ARG defaults. */
function baseImage(from: Instruction, args: Map<string, string>): string {
  const image = from.args.split(/\s+/).find((w) => !w.startsWith('--')) ?? '';
  return image.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_m, name: string) => args.get(name) ?? '');
}

describe('docker-compose.yml', () => {
  const compose = dict(parse(readFileSync(join(root, 'docker-compose.yml'), 'utf8')), 'compose file');
  const services = dict(compose.services, 'services');
  const postgres = dict(services.postgres, 'services.postgres');
  const fhir = dict(services.fhir, 'services.fhir');

  it('has the postgres and fhir services', () => {
    expect(Object.keys(services).sort()).toEqual(['fhir', 'postgres']);
  });

  it('runs PostgreSQL 16 with a persistent volume and a pg_isready healthcheck', () => {
    expect(postgres.image).toMatch(/^postgres:16(\b|$)/);
    const volumes = postgres.volumes as string[];
    const dataVolume = volumes.find((v) => v.endsWith(':/var/lib/postgresql/data'));
    expect(dataVolume).toBeDefined();
    const volumeName = dataVolume!.split(':')[0];
    expect(Object.keys(dict(compose.volumes, 'volumes'))).toContain(volumeName);
    const healthcheck = dict(postgres.healthcheck, 'postgres.healthcheck');
    expect(JSON.stringify(healthcheck.test)).toContain('pg_isready');
    const env = dict(postgres.environment, 'postgres.environment');
    expect(env.POSTGRES_PASSWORD).toMatch(/^\$\{POSTGRES_PASSWORD:-[^}]+\}$/);
  });

  it('builds the server from this directory and starts it once postgres is healthy', () => {
    expect(fhir.build).toBe('.');
    const dependsOn = dict(fhir.depends_on, 'fhir.depends_on');
    expect(dict(dependsOn.postgres, 'fhir.depends_on.postgres').condition).toBe('service_healthy');
    expect(fhir.restart).toBe('unless-stopped');
  });

  it('points DATABASE_URL at the postgres service with its credentials', () => {
    const env = dict(fhir.environment, 'fhir.environment');
    const pgEnv = dict(postgres.environment, 'postgres.environment');
    const url = new URL(interpolate(String(env.DATABASE_URL)));
    expect(url.protocol).toBe('postgres:');
    expect(url.hostname).toBe('postgres');
    expect(url.port).toBe('5432');
    expect(url.username).toBe(interpolate(String(pgEnv.POSTGRES_USER)));
    expect(url.password).toBe(interpolate(String(pgEnv.POSTGRES_PASSWORD)));
    expect(url.pathname).toBe('/' + interpolate(String(pgEnv.POSTGRES_DB)));
  });

  it('listens on 8080, publishes it, and announces a BASE_URL', () => {
    const env = dict(fhir.environment, 'fhir.environment');
    expect(String(env.PORT)).toBe('8080');
    expect(interpolate(String(env.BASE_URL))).toBe('http://localhost:8080');
    expect(fhir.ports).toContain('8080:8080');
  });

  it('checks readiness with node against /readyz', () => {
    const test = dict(fhir.healthcheck, 'fhir.healthcheck').test as string[];
    expect(test[0]).toBe('CMD');
    expect(test[1]).toBe('node');
    expect(test.join(' ')).toContain('http://127.0.0.1:8080/readyz');
  });
});

describe('Dockerfile', () => {
  const text = readFileSync(join(root, 'Dockerfile'), 'utf8');
  const instructions = parseDockerfile(text);
  const globalArgs = new Map<string, string>();
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') break;
    if (instruction.keyword === 'ARG') {
      const [name, ...value] = instruction.args.split('=');
      globalArgs.set(name.trim(), value.join('=').trim());
    }
  }
  const allStages = stages(instructions);
  const final = allStages[allStages.length - 1];
  const stageNames = allStages.map((s) => /\bAS\s+(\S+)/i.exec(s[0].args)?.[1]);
  const copies = allStages.flatMap((s) => s.filter((i) => i.keyword === 'COPY').map((i) => parseCopy(i.args)));
  const finalCopies = final.filter((i) => i.keyword === 'COPY').map((i) => parseCopy(i.args));

  it('is multi-stage on Node 22', () => {
    expect(allStages.length).toBeGreaterThanOrEqual(2);
    for (const stage of allStages) expect(baseImage(stage[0], globalArgs)).toMatch(/^node:22([.-]|$)/);
  });

  it('builds with npm ci and npm run build, and installs only production dependencies for runtime', () => {
    const runs = instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args);
    expect(runs.some((r) => /npm ci(?!.*--omit=dev)/.test(r))).toBe(true);
    expect(runs.some((r) => r.includes('npm run build'))).toBe(true);
    expect(runs.some((r) => /npm ci .*--omit=dev/.test(r))).toBe(true);
  });

  it('copies into the final stage what the server needs at run time', () => {
    const copied = finalCopies.flatMap((c) => c.sources.map((s) => s.replace(/^\/app\//, '')));
    for (const needed of ['dist', 'node_modules', 'migrations', 'fhir-profiles', 'package.json']) {
      expect(copied).toContain(needed);
    }
    const fromStages = finalCopies.filter((c) => c.from !== undefined).map((c) => c.from);
    for (const from of fromStages) expect(stageNames).toContain(from);
  });

  it('runs as a non-root user in production mode', () => {
    const users = final.filter((i) => i.keyword === 'USER').map((i) => i.args.split(':')[0]);
    expect(users.length).toBeGreaterThan(0);
    expect(['root', '0']).not.toContain(users[users.length - 1]);
    const env = final.filter((i) => i.keyword === 'ENV').map((i) => i.args).join(' ');
    expect(env).toMatch(/NODE_ENV[= ]production/);
  });

  it('exposes 8080, checks /healthz with node and starts dist/src/main.js', () => {
    expect(final.some((i) => i.keyword === 'EXPOSE' && i.args.split(/\s+/).includes('8080'))).toBe(true);
    const healthcheck = final.find((i) => i.keyword === 'HEALTHCHECK');
    expect(healthcheck?.args).toMatch(/CMD \["node"/);
    expect(healthcheck?.args).toContain('/healthz');
    const cmd = final.filter((i) => i.keyword === 'CMD').pop();
    expect(JSON.parse(cmd!.args)).toEqual(['node', 'dist/src/main.js']);
  });

  it('copies only files that a clean clone has and are not excluded by .dockerignore', () => {
    const ignored = readFileSync(join(root, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    const fromContext = copies.filter((c) => c.from === undefined).flatMap((c) => c.sources);
    expect(fromContext.length).toBeGreaterThan(0);
    for (const source of fromContext) {
      const path = source.replace(/^\.\//, '').replace(/\/$/, '');
      expect({ source, inClone: inClone(join(root, path)) }).toEqual({ source, inClone: true });
      expect({ source, ignored: ignored.includes(path) }).toEqual({ source, ignored: false });
    }
  });
});
