/**
 * The master key that wraps every data key (CONTRACT section 1 "keys"): AWS KMS with KMS_KEY_ID, else a local
 * AES-256 key (LOCAL_MASTER_KEY, or a key file created under DATA_DIR at first start, mode 0600).
 *
 * A wrapped key always travels with the id of the master key that wrapped it (`local:<fingerprint>` or
 * `kms:<key ARN>`), so rotation (src/blobs/rotate.ts) knows what is not yet under the current key, and every
 * wrap binds an encryption context (the object's id and patient, or a signing key's kid): a wrapped key
 * moved to another object does not unwrap.
 *
 * Local wrapping is an AWS Encryption SDK message (raw AES keyring, AES-256-GCM, key commitment, no
 * hand-written crypto); KMS wrapping is KMS itself (GenerateDataKey, Decrypt, ReEncrypt: under KMS a data
 * key is re-wrapped without its plaintext ever reaching this server).
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import {
  AlgorithmSuiteIdentifier,
  buildClient,
  CommitmentPolicy,
  RawAesKeyringNode,
  RawAesWrappingSuiteIdentifier,
} from '@aws-crypto/client-node';
import { DecryptCommand, DescribeKeyCommand, EncryptCommand, GenerateDataKeyCommand, KMSClient, ReEncryptCommand } from '@aws-sdk/client-kms';

export type EncryptionContext = Record<string, string>;

export interface Wrapped {
  keyId: string;
  wrapped: Buffer;
}

export interface MasterKeys {
  /** The id new wraps get (resolves a KMS alias to its key ARN once). */
  currentId(): Promise<string>;
  /** A fresh 256-bit data key, and the same key wrapped under the current master key. */
  generateDataKey(context: EncryptionContext): Promise<{ plaintext: Buffer } & Wrapped>;
  wrap(plaintext: Buffer, context: EncryptionContext): Promise<Wrapped>;
  unwrap(key: Wrapped, context: EncryptionContext): Promise<Buffer>;
  /** The same data key under the current master key. */
  rewrap(key: Wrapped, context: EncryptionContext): Promise<Wrapped>;
}

export interface MasterKeySettings {
  /** base64 of 32 bytes; unset: the key file `master.key` under dataDir (created at first start). */
  localMasterKey?: string;
  /** Earlier local keys (base64), still able to unwrap what they wrapped until rotate-keys has run. */
  localPreviousKeys?: string[];
  dataDir: string;
  kmsKeyId?: string;
  kmsEndpoint?: string;
}

export class KeyUnavailableError extends Error {}

const esdk = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
/** Unsigned, committing suite: only this server writes these messages, so a signature would add nothing. */
export const SUITE = AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY;
const KEY_FILE = 'master.key';

function decodeKey(base64: string, what: string): Buffer {
  const key = Buffer.from(base64.trim(), 'base64');
  if (key.length !== 32) throw new Error(`${what} must be 32 bytes in base64 (e.g. \`openssl rand -base64 32\`), got ${key.length} bytes`);
  return key;
}

/** The key file under DATA_DIR: read it, or create it (exclusively, mode 0600) with 32 random bytes. */
export function keyFile(dataDir: string): Buffer {
  const path = join(dataDir, KEY_FILE);
  if (!existsSync(path)) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, `${randomBytes(32).toString('base64')}\n`);
      closeSync(fd);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  return decodeKey(readFileSync(path, 'utf8'), path);
}

const fingerprint = (key: Buffer) => `local:${createHash('sha256').update('healthmed master key\0').update(key).digest('hex').slice(0, 16)}`;

function rawKeyring(keyName: string, key: Buffer): RawAesKeyringNode {
  return new RawAesKeyringNode({
    keyName,
    keyNamespace: 'healthmed',
    unencryptedMasterKey: new Uint8Array(key), // the SDK wants a buffer of its own
    wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
  });
}

/** Compares the context a message carries with the one expected (the SDK authenticated it; we check it is ours). */
export function sameContext(found: EncryptionContext, expected: EncryptionContext): boolean {
  const keys = Object.keys(expected);
  return keys.length === Object.keys(found).length && keys.every((k) => found[k] === expected[k]);
}

class LocalKeys {
  readonly keyrings = new Map<string, RawAesKeyringNode>();
  constructor(keys: Buffer[]) {
    for (const key of keys) this.keyrings.set(fingerprint(key), rawKeyring(fingerprint(key), key));
  }
  async wrap(keyId: string, plaintext: Buffer, context: EncryptionContext): Promise<Buffer> {
    const { result } = await esdk.encrypt(this.keyring(keyId), plaintext, { encryptionContext: context, suiteId: SUITE });
    return Buffer.from(result);
  }
  async unwrap(key: Wrapped, context: EncryptionContext): Promise<Buffer> {
    const { plaintext, messageHeader } = await esdk.decrypt(this.keyring(key.keyId), key.wrapped);
    if (!sameContext(messageHeader.encryptionContext, context)) throw new KeyUnavailableError('The wrapped key belongs to another object');
    return plaintext;
  }
  private keyring(keyId: string): RawAesKeyringNode {
    const k = this.keyrings.get(keyId);
    if (!k) throw new KeyUnavailableError(`Master key ${keyId} is not configured (LOCAL_MASTER_KEY, LOCAL_MASTER_KEYS_PREVIOUS or the key file)`);
    return k;
  }
}

export function createMasterKeys(settings: MasterKeySettings): MasterKeys {
  const locals: Buffer[] = [];
  if (settings.localMasterKey) locals.push(decodeKey(settings.localMasterKey, 'LOCAL_MASTER_KEY'));
  // Without KMS and without LOCAL_MASTER_KEY the key file is the master key; with them it still unwraps what it wrapped.
  const fileKey = !settings.kmsKeyId && !settings.localMasterKey ? keyFile(settings.dataDir) : existsSync(join(settings.dataDir, KEY_FILE)) ? keyFile(settings.dataDir) : undefined;
  if (fileKey) locals.push(fileKey);
  for (const k of settings.localPreviousKeys ?? []) locals.push(decodeKey(k, 'LOCAL_MASTER_KEYS_PREVIOUS'));
  const local = new LocalKeys(locals);
  const localCurrent = locals[0] ? fingerprint(locals[0]) : undefined;

  if (!settings.kmsKeyId) {
    const id = localCurrent as string;
    return {
      currentId: async () => id,
      async generateDataKey(context) {
        const plaintext = randomBytes(32);
        return { plaintext, keyId: id, wrapped: await local.wrap(id, plaintext, context) };
      },
      wrap: async (plaintext, context) => ({ keyId: id, wrapped: await local.wrap(id, plaintext, context) }),
      unwrap: (key, context) => local.unwrap(key, context),
      rewrap: async (key, context) => (key.keyId === id ? key : { keyId: id, wrapped: await local.wrap(id, await local.unwrap(key, context), context) }),
    };
  }

  const kms = new KMSClient(settings.kmsEndpoint ? { endpoint: settings.kmsEndpoint } : {});
  const kmsKeyId = settings.kmsKeyId;
  let arn: Promise<string> | undefined;
  const currentId = () => {
    arn ??= kms.send(new DescribeKeyCommand({ KeyId: kmsKeyId })).then((r) => {
      if (!r.KeyMetadata?.Arn) throw new KeyUnavailableError(`KMS key ${kmsKeyId} has no ARN`);
      return `kms:${r.KeyMetadata.Arn}`;
    });
    arn.catch(() => (arn = undefined));
    return arn;
  };
  const kmsArn = (keyId: string) => keyId.slice('kms:'.length);
  const unwrap = async (key: Wrapped, context: EncryptionContext): Promise<Buffer> => {
    if (!key.keyId.startsWith('kms:')) return local.unwrap(key, context);
    try {
      const r = await kms.send(new DecryptCommand({ CiphertextBlob: key.wrapped, EncryptionContext: context, KeyId: kmsArn(key.keyId) }));
      return Buffer.from(r.Plaintext as Uint8Array);
    } catch (err) {
      if ((err as { name?: string }).name === 'InvalidCiphertextException') throw new KeyUnavailableError('The wrapped key belongs to another object');
      throw err;
    }
  };
  const wrap = async (plaintext: Buffer, context: EncryptionContext): Promise<Wrapped> => {
    const keyId = await currentId();
    const r = await kms.send(new EncryptCommand({ KeyId: kmsArn(keyId), Plaintext: plaintext, EncryptionContext: context }));
    return { keyId, wrapped: Buffer.from(r.CiphertextBlob as Uint8Array) };
  };
  return {
    currentId,
    async generateDataKey(context) {
      const keyId = await currentId();
      const r = await kms.send(new GenerateDataKeyCommand({ KeyId: kmsArn(keyId), KeySpec: 'AES_256', EncryptionContext: context }));
      return { keyId, plaintext: Buffer.from(r.Plaintext as Uint8Array), wrapped: Buffer.from(r.CiphertextBlob as Uint8Array) };
    },
    wrap,
    unwrap,
    async rewrap(key, context) {
      const keyId = await currentId();
      if (key.keyId === keyId) return key;
      if (!key.keyId.startsWith('kms:')) return wrap(await local.unwrap(key, context), context);
      const r = await kms.send(
        new ReEncryptCommand({
          CiphertextBlob: key.wrapped,
          SourceKeyId: kmsArn(key.keyId),
          SourceEncryptionContext: context,
          DestinationKeyId: kmsArn(keyId),
          DestinationEncryptionContext: context,
        }),
      );
      return { keyId, wrapped: Buffer.from(r.CiphertextBlob as Uint8Array) };
    },
  };
}
