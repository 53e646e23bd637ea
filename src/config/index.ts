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
  /** Connections that plain creates may occupy at once; creates waiting for one are written together. */
  createWriters: number;
  /** The most creates written together in one statement. */
  createBatchMax: number;
  maxJsonBytes: number;
  /** What one request may ask of the server (README "Limits"): past them, 400 with an OperationOutcome. */
  limits: Limits;
  /** Longest a single SQL statement may run (ms, 0: no limit): no query outlives the request that sent it. */
  dbStatementTimeoutMs: number;
  profilesDir: string;
  /** HAPI's default: refuse deleting a resource that others still reference. */
  enforceReferentialIntegrityOnDelete: boolean;
  /** HAPI's default: refuse writing a reference to a local resource that does not exist. */
  enforceReferentialIntegrityOnWrite: boolean;
  logLevel: string;
  /** NODE_ENV=production: the embedded database is then a loud warning at start. */
  production: boolean;
  shutdownTimeoutMs: number;
  /** SMTP server for outgoing mail (`smtp://user:pass@host:587`); unset: mail is logged, not sent. */
  smtpUrl?: string;
  mailFrom: string;
  /** CONTRACT section 1: base of the consultation rooms, and a self-hosted Jitsi's JWT app (signed links). */
  videoBaseUrl: string;
  jitsiAppId?: string;
  jitsiAppSecret?: string;
  /** Hosts (`host` or `host:port`) rest-hook endpoints may use over http or on loopback/private addresses. */
  subscriptionEndpointAllowlist: string[];
  /** How often each server's outbox worker looks for due deliveries (ms). */
  outboxPollMs: number;
  auth: AuthConfig;
  /** Attachments (README "Attachments"): where encrypted objects go and the master key that wraps their keys. */
  blobs: BlobConfig;
}

/** Attachments (issue 13, src/blobs/). */
export interface BlobConfig {
  /** MAX_UPLOAD_MB: larger uploads get 413 (CONTRACT section 2). */
  maxUploadBytes: number;
  /** UPLOAD_CONTENT_TYPES: media types a Binary may have. */
  contentTypes: string[];
  /** base64 of 32 bytes; unset (and no KMS): a key file under DATA_DIR. */
  localMasterKey?: string;
  /** Earlier local master keys, kept to unwrap until `npm run rotate-keys` re-wrapped everything. */
  localPreviousKeys: string[];
  kmsKeyId?: string;
  kmsEndpoint?: string;
  s3Bucket?: string;
  s3Endpoint?: string;
  s3ForcePathStyle?: boolean;
}

/** Request limits (README "Limits"). */
export interface Limits {
  /** Times one search parameter (with any modifier) may repeat in a query (`name=a&name=b`: 2). */
  searchMaxRepeats: number;
  /** Values in one comma-separated OR list (`code=a,b,c`: 3). */
  searchMaxOrValues: number;
  /** Conditions in one search: every value of every parameter, `_has` and chained ones included. */
  searchMaxConditions: number;
  /** Links in one chain (`subject:Patient.organization.name`: 2) or nested `_has`. */
  searchMaxChainDepth: number;
  /** Entries in one batch or transaction Bundle. */
  bundleMaxEntries: number;
}

/** The authorization server (CONTRACT section 4). */
export interface AuthConfig {
  accessTokenTtlSeconds: number;
  /** How long a verified token's "not revoked" answer is reused (ms); revocations by this process apply at once. */
  revocationRecheckMs: number;
  refreshTokenTtlSeconds: number;
  /** CONTRACT section 1: the admin client, created at start (client_credentials, client_secret_basic, system/*.*). */
  bootstrapClientId?: string;
  bootstrapClientSecret?: string;
  /** Redirect URIs of the first-party public client `healthmed-app`. */
  appRedirectUris: string[];
  requirePractitionerMfa: boolean;
  /** A PKCS#8 PEM or private JWK (EC P-256 or RSA) that signs tokens; unset: a key kept in the database. */
  signingKey?: string;
  /** Age after which a database signing key is replaced (its public key stays in the JWKS while needed). */
  signingKeyRotationDays: number;
  /** Failed logins per account, and per client address, before a lockout (429 with Retry-After). */
  loginMaxFailures: number;
  loginMaxFailuresPerAddress: number;
  loginLockoutSeconds: number;
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

/** A shorter bootstrap secret is refused at start: it guards `system/*.*` (every record of every patient). */
export const MIN_BOOTSTRAP_SECRET_LENGTH = 32;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const port = int(env.PORT, 8080, 'PORT');
  if (env.BOOTSTRAP_CLIENT_SECRET && env.BOOTSTRAP_CLIENT_SECRET.length < MIN_BOOTSTRAP_SECRET_LENGTH) {
    throw new Error(
      `BOOTSTRAP_CLIENT_SECRET is ${env.BOOTSTRAP_CLIENT_SECRET.length} characters long; it must have at least ${MIN_BOOTSTRAP_SECRET_LENGTH} ` +
        '(e.g. `openssl rand -base64 32`)',
    );
  }
  if (!!env.BOOTSTRAP_CLIENT_ID !== !!env.BOOTSTRAP_CLIENT_SECRET) {
    throw new Error('BOOTSTRAP_CLIENT_ID and BOOTSTRAP_CLIENT_SECRET go together: set both or neither');
  }
  const dbPoolSize = int(env.DB_POOL_SIZE, 20, 'DB_POOL_SIZE');
  const baseUrl = (env.BASE_URL || `http://localhost:${port}`).replace(/\/+$/, '');
  return {
    port,
    baseUrl,
    databaseUrl: env.DATABASE_URL || undefined,
    dataDir: resolve(env.DATA_DIR || './data'),
    dbPoolSize,
    createWriters: Math.max(1, int(env.CREATE_WRITERS, 1, 'CREATE_WRITERS')),
    createBatchMax: Math.max(1, int(env.CREATE_BATCH_MAX, 64, 'CREATE_BATCH_MAX')),
    maxJsonBytes: Math.floor(int(env.MAX_JSON_MB, 16, 'MAX_JSON_MB') * 1024 * 1024),
    limits: {
      searchMaxRepeats: Math.max(1, int(env.SEARCH_MAX_REPEATS, 10, 'SEARCH_MAX_REPEATS')),
      searchMaxOrValues: Math.max(1, int(env.SEARCH_MAX_OR_VALUES, 1000, 'SEARCH_MAX_OR_VALUES')),
      searchMaxConditions: Math.max(1, int(env.SEARCH_MAX_CONDITIONS, 1000, 'SEARCH_MAX_CONDITIONS')),
      searchMaxChainDepth: Math.max(1, int(env.SEARCH_MAX_CHAIN_DEPTH, 4, 'SEARCH_MAX_CHAIN_DEPTH')),
      bundleMaxEntries: Math.max(1, int(env.BUNDLE_MAX_ENTRIES, 5000, 'BUNDLE_MAX_ENTRIES')),
    },
    dbStatementTimeoutMs: int(env.DB_STATEMENT_TIMEOUT_MS, 30000, 'DB_STATEMENT_TIMEOUT_MS'),
    profilesDir: resolve(env.FHIR_PROFILES_DIR || join(projectRoot(), 'fhir-profiles')),
    enforceReferentialIntegrityOnDelete: bool(env.ENFORCE_REFERENTIAL_INTEGRITY_ON_DELETE, true),
    enforceReferentialIntegrityOnWrite: bool(env.ENFORCE_REFERENTIAL_INTEGRITY_ON_WRITE, true),
    logLevel: env.LOG_LEVEL || 'info',
    production: env.NODE_ENV === 'production',
    shutdownTimeoutMs: int(env.SHUTDOWN_TIMEOUT_MS, 25000, 'SHUTDOWN_TIMEOUT_MS'),
    smtpUrl: env.SMTP_URL || undefined,
    mailFrom: env.MAIL_FROM || 'Health&Med <no-reply@healthmed.com.br>',
    videoBaseUrl: (env.VIDEO_BASE_URL || 'https://meet.jit.si').replace(/\/+$/, ''),
    jitsiAppId: env.JITSI_APP_ID || undefined,
    jitsiAppSecret: env.JITSI_APP_SECRET || undefined,
    subscriptionEndpointAllowlist: (env.SUBSCRIPTION_ENDPOINT_ALLOWLIST ?? '').split(',').map((h) => h.trim().toLowerCase()).filter((h) => h !== ''),
    outboxPollMs: Math.max(10, int(env.OUTBOX_POLL_MS, 1000, 'OUTBOX_POLL_MS')),
    blobs: {
      maxUploadBytes: Math.floor(int(env.MAX_UPLOAD_MB, 50, 'MAX_UPLOAD_MB') * 1024 * 1024),
      contentTypes: (env.UPLOAD_CONTENT_TYPES || 'application/pdf,image/png,image/jpeg,application/dicom,text/plain')
        .split(',').map((t) => t.trim().toLowerCase()).filter((t) => t !== ''),
      localMasterKey: env.LOCAL_MASTER_KEY || undefined,
      localPreviousKeys: (env.LOCAL_MASTER_KEYS_PREVIOUS ?? '').split(',').map((k) => k.trim()).filter((k) => k !== ''),
      kmsKeyId: env.KMS_KEY_ID || undefined,
      kmsEndpoint: env.KMS_ENDPOINT || undefined,
      s3Bucket: env.S3_BUCKET || undefined,
      s3Endpoint: env.S3_ENDPOINT || undefined,
      s3ForcePathStyle: env.S3_FORCE_PATH_STYLE ? bool(env.S3_FORCE_PATH_STYLE, false) : undefined,
    },
    auth: {
      accessTokenTtlSeconds: int(env.ACCESS_TOKEN_TTL_SECONDS, 900, 'ACCESS_TOKEN_TTL_SECONDS'),
      revocationRecheckMs: int(env.TOKEN_REVOCATION_RECHECK_MS, 1000, 'TOKEN_REVOCATION_RECHECK_MS'),
      refreshTokenTtlSeconds: int(env.REFRESH_TOKEN_TTL_SECONDS, 30 * 86400, 'REFRESH_TOKEN_TTL_SECONDS'),
      bootstrapClientId: env.BOOTSTRAP_CLIENT_ID || undefined,
      bootstrapClientSecret: env.BOOTSTRAP_CLIENT_SECRET || undefined,
      appRedirectUris: (env.APP_REDIRECT_URIS ?? '').split(',').map((u) => u.trim()).filter((u) => u !== ''),
      requirePractitionerMfa: bool(env.REQUIRE_PRACTITIONER_MFA, false),
      signingKey: env.JWT_SIGNING_KEY || undefined,
      signingKeyRotationDays: int(env.JWT_KEY_ROTATION_DAYS, 90, 'JWT_KEY_ROTATION_DAYS'),
      loginMaxFailures: int(env.LOGIN_MAX_FAILURES, 5, 'LOGIN_MAX_FAILURES'),
      loginMaxFailuresPerAddress: int(env.LOGIN_MAX_FAILURES_PER_ADDRESS, 50, 'LOGIN_MAX_FAILURES_PER_ADDRESS'),
      loginLockoutSeconds: int(env.LOGIN_LOCKOUT_SECONDS, 900, 'LOGIN_LOCKOUT_SECONDS'),
    },
  };
}
