/**
 * Typed configuration from the environment (CONTRACT section 1). Nothing else reads process.env.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/** The directory holding package.json, whether running from src/ (ts) or dist/src/ (js). */
export function projectRoot(): string {
  let dir = __dirname;
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

export interface Config {
  port: number;
  baseUrl: string;
  /** Unset: embedded PGlite under dataDir. */
  databaseUrl?: string;
  dataDir: string;
  dbPoolSize: number;
  maxJsonBytes: number;
  profilesDir: string;
  /** HAPI's default: refuse deleting a resource that others still reference. */
  enforceReferentialIntegrityOnDelete: boolean;
  /** HAPI's default: refuse writing a reference to a local resource that does not exist. */
  enforceReferentialIntegrityOnWrite: boolean;
  logLevel: string;
  shutdownTimeoutMs: number;
}

function int(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new Error(`Invalid ${name}: expected a non-negative number`);
  return n;
}

function bool(value: string | undefined, fallback: boolean): boolean {
  if (value === undefined || value === '') return fallback;
  return !['false', '0', 'no', 'off'].includes(value.toLowerCase());
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const port = int(env.PORT, 8080, 'PORT');
  const baseUrl = (env.BASE_URL || `http://localhost:${port}`).replace(/\/+$/, '');
  return {
    port,
    baseUrl,
    databaseUrl: env.DATABASE_URL || undefined,
    dataDir: resolve(env.DATA_DIR || './data'),
    dbPoolSize: int(env.DB_POOL_SIZE, 20, 'DB_POOL_SIZE'),
    maxJsonBytes: Math.floor(int(env.MAX_JSON_MB, 16, 'MAX_JSON_MB') * 1024 * 1024),
    profilesDir: resolve(env.FHIR_PROFILES_DIR || join(projectRoot(), 'fhir-profiles')),
    enforceReferentialIntegrityOnDelete: bool(env.ENFORCE_REFERENTIAL_INTEGRITY_ON_DELETE, true),
    enforceReferentialIntegrityOnWrite: bool(env.ENFORCE_REFERENTIAL_INTEGRITY_ON_WRITE, true),
    logLevel: env.LOG_LEVEL || 'info',
    shutdownTimeoutMs: int(env.SHUTDOWN_TIMEOUT_MS, 25000, 'SHUTDOWN_TIMEOUT_MS'),
  };
}
