/**
 * The keys that sign access and ID tokens. Either one key from the environment (JWT_SIGNING_KEY: a PKCS#8
 * PEM or a private JWK, EC P-256 -> ES256 or RSA -> RS256), or keys kept in the database: an ES256 key is
 * generated at first start and replaced after JWT_KEY_ROTATION_DAYS. A replaced key stops signing but stays
 * in the JWKS (and verifies) until every token it signed has expired. Every token names its key (`kid`).
 *
 * A database key's private JWK is stored wrapped under the attachments' master key (issue 13, src/blobs/:
 * local AES or KMS), as `{"wrapped": base64, "keyId": ...}`, so a dump of the database cannot mint tokens. Keys
 * stored before that are wrapped in place at first start.
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import * as jose from 'jose';
import { logger } from '../logger';
import type { Database } from '../storage/database';
import { activeKey, allKeys, legacyKeys, publishedKeys, replacePrivateJwk, type KeyRow } from './store/keys';

/** The master key's wrapping of a secret bound to a label (src/blobs/index.ts `Blobs`). */
export interface SecretWrapper {
  wrapSecret(label: string, plaintext: Buffer): Promise<{ keyId: string; wrapped: Buffer }>;
  unwrapSecret(label: string, key: { keyId: string; wrapped: Buffer }): Promise<Buffer>;
}

/** How a wrapped private JWK is stored in auth_signing_keys.private_jwk. */
interface WrappedJwk {
  wrapped: string;
  keyId: string;
}

const isWrapped = (jwk: jose.JWK | WrappedJwk): jwk is WrappedJwk => typeof (jwk as WrappedJwk).wrapped === 'string';
const label = (kid: string) => `jwt-signing-key:${kid}`;

export async function wrapJwk(secrets: SecretWrapper, kid: string, jwk: jose.JWK): Promise<WrappedJwk> {
  const { keyId, wrapped } = await secrets.wrapSecret(label(kid), Buffer.from(JSON.stringify(jwk)));
  return { wrapped: wrapped.toString('base64'), keyId };
}

/** A stored key's private JWK, unwrapped (also what a test forging tokens with the server's own key needs). */
export async function privateJwk(secrets: SecretWrapper | undefined, row: Pick<KeyRow, 'kid' | 'private_jwk'>): Promise<jose.JWK> {
  const stored = row.private_jwk as jose.JWK | WrappedJwk;
  if (!isWrapped(stored)) return stored;
  if (!secrets) throw new Error(`Signing key ${row.kid} is wrapped, but no master key is configured`);
  const plain = await secrets.unwrapSecret(label(row.kid), { keyId: stored.keyId, wrapped: Buffer.from(stored.wrapped, 'base64') });
  return JSON.parse(plain.toString('utf8')) as jose.JWK;
}

/**
 * `npm run rotate-keys`: every stored signing key under the current master key (plaintext ones wrapped).
 * Returns how many were re-wrapped.
 */
export async function rewrapSigningKeys(db: Database, secrets: SecretWrapper & { rewrapSecret(label: string, key: { keyId: string; wrapped: Buffer }): Promise<{ keyId: string; wrapped: Buffer }> }): Promise<number> {
  let n = 0;
  for (const row of await allKeys(db)) {
    const stored = row.private_jwk as jose.JWK | WrappedJwk;
    const before = isWrapped(stored) ? { keyId: stored.keyId, wrapped: Buffer.from(stored.wrapped, 'base64') } : undefined;
    const after = before ? await secrets.rewrapSecret(label(row.kid), before) : await secrets.wrapSecret(label(row.kid), Buffer.from(JSON.stringify(stored)));
    if (before && after.keyId === before.keyId) continue;
    await replacePrivateJwk(db, row.kid, stored, { wrapped: after.wrapped.toString('base64'), keyId: after.keyId });
    n++;
  }
  return n;
}

/** First start after wrapping came in: every key still stored in plaintext is wrapped in place. */
async function wrapLegacyKeys(db: Database, secrets: SecretWrapper): Promise<void> {
  for (const row of await legacyKeys(db)) {
    await replacePrivateJwk(db, row.kid, row.private_jwk, await wrapJwk(secrets, row.kid, row.private_jwk));
  }
}

/** What this server signs with, and so the only algorithms it accepts on its own tokens. */
export const TOKEN_ALGORITHMS = ['ES256', 'RS256'] as const;

export interface SigningKey {
  kid: string;
  alg: string;
  key: jose.CryptoKey;
}

interface Loaded {
  kid: string;
  alg: string;
  publicJwk: jose.JWK;
  verify: jose.CryptoKey;
}

/** How often a server looks for a key another server rotated in, and how soon it may look for an unknown kid. */
const REFRESH_MS = 5 * 60_000;
const UNKNOWN_KID_RETRY_MS = 10_000;

export class SigningKeys {
  private signer?: { key: SigningKey; loadedAt: number };
  private refreshing?: Promise<void>;
  private verifiers = new Map<string, Loaded>();
  private verifiersLoadedAt = 0;
  private envKey?: Promise<{ signer: SigningKey; loaded: Loaded }>;
  private legacyWrapped = false;

  constructor(
    private readonly db: Database,
    private readonly opts: { envKey?: string; rotationSeconds: number; tokenLifetimeSeconds: number; secrets?: SecretWrapper },
  ) {
    if (opts.envKey) {
      this.envKey = fromEnvironment(opts.envKey);
      // A bad key fails every use (and startup); mark the promise handled so it is not also reported globally.
      this.envKey.catch(() => undefined);
    }
  }

  /**
   * The key that signs now. Only the first call waits for the database; later ones return the cached key
   * and refresh it in the background when it is due, so signing inside a transaction never waits for
   * another one (PGlite runs one at a time).
   */
  async current(): Promise<SigningKey> {
    if (this.envKey) return (await this.envKey).signer;
    if (!this.signer) await this.refreshSigner();
    else if (Date.now() - this.signer.loadedAt > REFRESH_MS) {
      this.refreshSigner().catch((err: Error) => logger.error({ err: err.message }, 'signing key refresh failed'));
    }
    return this.signer!.key;
  }

  private refreshSigner(): Promise<void> {
    this.refreshing ??= (async () => {
      const { secrets } = this.opts;
      if (secrets && !this.legacyWrapped) {
        await wrapLegacyKeys(this.db, secrets);
        this.legacyWrapped = true;
      }
      // A new key is made (and wrapped: with KMS a network call) before the transaction that stores it, when due.
      const due = !(await publishedKeys(this.db, 0)).some((r) => !r.retired_at && Date.now() - r.created_at.getTime() < this.opts.rotationSeconds * 1000 - 60_000);
      const made = due ? await generateKey(secrets) : undefined;
      const row = await activeKey(this.db, this.opts.rotationSeconds, async () => made ?? (await generateKey(secrets)));
      const key = (await jose.importJWK(await privateJwk(secrets, row), row.alg)) as jose.CryptoKey;
      this.signer = { key: { kid: row.kid, alg: row.alg, key }, loadedAt: Date.now() };
    })().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  /** The public key for a token's `kid` and `alg`, or undefined (unknown key, or an algorithm it does not use). */
  async verificationKey(kid: string | undefined, alg: string | undefined): Promise<jose.CryptoKey | undefined> {
    if (!kid || !alg) return undefined;
    let found = await this.lookup(kid);
    if (!found && Date.now() - this.verifiersLoadedAt > UNKNOWN_KID_RETRY_MS) {
      await this.reload();
      found = await this.lookup(kid);
    }
    return found && found.alg === alg ? found.verify : undefined;
  }

  /** The JWKS (RFC 7517) of every key whose tokens may still be valid. */
  async jwks(): Promise<jose.JSONWebKeySet> {
    await this.current();
    await this.reload();
    const keys = [...this.verifiers.values()];
    if (this.envKey) keys.unshift((await this.envKey).loaded);
    return { keys: keys.map((k) => ({ ...k.publicJwk, kid: k.kid, alg: k.alg, use: 'sig' })) };
  }

  private async lookup(kid: string): Promise<Loaded | undefined> {
    if (this.envKey) {
      const env = await this.envKey;
      if (env.loaded.kid === kid) return env.loaded;
    }
    if (Date.now() - this.verifiersLoadedAt > REFRESH_MS) await this.reload();
    return this.verifiers.get(kid);
  }

  private async reload(): Promise<void> {
    // Keep a retired key while tokens it signed can still be presented: other servers may sign with it until
    // their next refresh, and those tokens live a full lifetime after that (plus clock skew).
    const rows = await publishedKeys(this.db, this.opts.tokenLifetimeSeconds + (2 * REFRESH_MS) / 1000);
    const next = new Map<string, Loaded>();
    for (const row of rows) next.set(row.kid, this.verifiers.get(row.kid) ?? (await loadRow(row)));
    this.verifiers = next;
    this.verifiersLoadedAt = Date.now();
  }
}

async function loadRow(row: KeyRow): Promise<Loaded> {
  return { kid: row.kid, alg: row.alg, publicJwk: row.public_jwk, verify: (await jose.importJWK(row.public_jwk, row.alg)) as jose.CryptoKey };
}

async function generateKey(secrets: SecretWrapper | undefined): Promise<Omit<KeyRow, 'created_at' | 'retired_at'>> {
  const { publicKey, privateKey } = await jose.generateKeyPair('ES256', { extractable: true });
  const public_jwk = await jose.exportJWK(publicKey);
  const plain = await jose.exportJWK(privateKey);
  const kid = await jose.calculateJwkThumbprint(public_jwk);
  const private_jwk = secrets ? ((await wrapJwk(secrets, kid, plain)) as unknown as jose.JWK) : plain;
  return { kid, alg: 'ES256', public_jwk, private_jwk };
}

/** JWT_SIGNING_KEY: a PKCS#8 PEM, or a private JWK (JSON); EC P-256 signs ES256, RSA (>= 2048 bits) RS256. */
async function fromEnvironment(value: string): Promise<{ signer: SigningKey; loaded: Loaded }> {
  const text = value.trim();
  const keyObject = text.startsWith('{')
    ? createPrivateKey({ key: JSON.parse(text) as import('node:crypto').JsonWebKey, format: 'jwk' })
    : createPrivateKey(text.replace(/\\n/g, '\n'));
  const type = keyObject.asymmetricKeyType;
  const details = keyObject.asymmetricKeyDetails;
  let alg: string;
  if (type === 'ec' && details?.namedCurve === 'prime256v1') alg = 'ES256';
  else if (type === 'rsa' && (details?.modulusLength ?? 0) >= 2048) alg = 'RS256';
  else throw new Error('JWT_SIGNING_KEY must be an EC P-256 or an RSA (>= 2048 bits) private key');
  const privateJwk = keyObject.export({ format: 'jwk' }) as jose.JWK;
  const publicJwk = createPublicKey(keyObject).export({ format: 'jwk' }) as jose.JWK;
  const kid = text.startsWith('{') && typeof (JSON.parse(text) as { kid?: unknown }).kid === 'string'
    ? (JSON.parse(text) as { kid: string }).kid
    : await jose.calculateJwkThumbprint(publicJwk);
  return {
    signer: { kid, alg, key: (await jose.importJWK(privateJwk, alg)) as jose.CryptoKey },
    loaded: { kid, alg, publicJwk, verify: (await jose.importJWK(publicJwk, alg)) as jose.CryptoKey },
  };
}
