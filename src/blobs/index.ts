/**
 * Attachment storage, encrypted by default (issue 13, CONTRACT section 6): the only code that sees a data key
 * or an attachment's plaintext at rest. Every object gets a fresh 256-bit data key from the master key
 * (masterKeys.ts: local AES or AWS KMS), its content is an AWS Encryption SDK message under that key
 * (envelope.ts: AES-256-GCM, framed, the object's id and patient as encryption context), the ciphertext goes
 * to the object store (store.ts: files under DATA_DIR, or s3.ts) and the wrapped data key to the object's
 * row in binary_content (rows.ts), written in the transaction of the Binary version it belongs to.
 *
 * An upload is streamed: request bytes -> size limit and SHA-1 -> encryption -> store, with at most a frame
 * and a store part in memory, never the whole object.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Readable, Transform, type TransformCallback } from 'node:stream';
import type { Config } from '../config';
import type { Queryable } from '../storage/database';
import { decryptStream, encryptStream, IntegrityError } from './envelope';
import { createMasterKeys, KeyUnavailableError, type EncryptionContext, type MasterKeys, type MasterKeySettings, type Wrapped } from './masterKeys';
import { contentRow, insertRow, latestRow, objectKeyInUse, type ContentRow } from './rows';
import { s3Store, type S3Settings } from './s3';
import { localStore, type ObjectStore } from './store';
import { DEFAULT_CONTENT_TYPES, matchesSignature, SIGNATURE_BYTES } from './contentTypes';

export { IntegrityError } from './envelope';
export { KeyUnavailableError } from './masterKeys';
export type { ContentRow } from './rows';

export interface BlobSettings extends MasterKeySettings {
  maxUploadBytes: number;
  contentTypes: string[];
  s3?: S3Settings;
}

/** An upload that failed for a reason the client gave: `status` 413 or 415 (the HTTP layer words the answer). */
export class UploadError extends Error {
  constructor(
    readonly status: 400 | 413 | 415,
    message: string,
  ) {
    super(message);
  }
}

/** Content stored but not yet linked to a Binary version (linked by `record`, in the version's transaction). */
export interface PendingContent {
  binaryId: string;
  patient: string;
  objectKey: string;
  size: number;
  sha1: string;
  key: Wrapped;
  /** The patient could not be known at upload (a Bundle's urn:uuid subject): bound to its Binary id alone. */
  patientUnknown?: boolean;
  /** Set once a version's row names it: it is then no longer the upload's to discard. */
  recorded?: boolean;
}

export interface ByteRange {
  start: number;
  /** Inclusive. */
  end: number;
}

const contentContext = (binaryId: string, patient: string): EncryptionContext => ({ 'healthmed:binary': binaryId, 'healthmed:patient': patient || '-' });
const keyContext = (binaryId: string, patient: string): EncryptionContext => ({ 'healthmed:purpose': 'binary-data-key', ...contentContext(binaryId, patient) });

export class Blobs {
  readonly maxUploadBytes: number;
  readonly contentTypes: ReadonlySet<string>;

  constructor(
    readonly keys: MasterKeys,
    readonly store: ObjectStore,
    settings: Pick<BlobSettings, 'maxUploadBytes' | 'contentTypes'>,
  ) {
    this.maxUploadBytes = settings.maxUploadBytes;
    this.contentTypes = new Set(settings.contentTypes.map((t) => t.toLowerCase()));
  }

  /** The media type, if the allow-list (UPLOAD_CONTENT_TYPES) has it; else an UploadError 415. */
  acceptedType(contentType: string | undefined): string {
    if (!contentType || !this.contentTypes.has(contentType)) {
      throw new UploadError(415, `Content type ${contentType ?? '(none)'} is not accepted; accepted: ${[...this.contentTypes].join(', ')}`);
    }
    return contentType;
  }

  /**
   * Encrypts and stores a stream. Refuses (UploadError, nothing stored) a type outside the allow-list, first bytes
   * that do not match the type's signature (checked before anything is written), an empty body, and more than
   * maxUploadBytes (the partial object is removed). The caller links the result to a version (`record`) or
   * discards it.
   */
  async upload(binaryId: string, patient: string, contentType: string, body: Readable): Promise<PendingContent> {
    this.acceptedType(contentType);
    const { head, rest } = await peek(body, SIGNATURE_BYTES);
    if (head.length === 0) throw new UploadError(400, 'The upload is empty');
    if (!matchesSignature(contentType, head)) throw new UploadError(415, `The content does not start as ${contentType} does`);
    const { plaintext: dataKey, ...key } = await this.keys.generateDataKey(keyContext(binaryId, patient));
    const objectKey = `${binaryId}/${randomUUID()}`;
    const sha1 = createHash('sha1');
    let size = 0;
    let refused: UploadError | undefined;
    const max = this.maxUploadBytes;
    const ciphertext = new PassThrough();
    // The SDK's streams are never destroyed (their inner streams would report it with no one listening): past the
    // limit the plaintext just ends, and the store's side is failed, which removes what it had written.
    const measure = new Transform({
      transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
        if (refused) return cb();
        size += chunk.length;
        if (size > max) {
          refused = new UploadError(413, `The upload is larger than ${max} bytes (MAX_UPLOAD_MB)`);
          rest.unpipe(measure);
          ciphertext.destroy(refused);
          this.push(null);
          return cb();
        }
        sha1.update(chunk);
        cb(null, chunk);
      },
    });
    const encrypt = encryptStream(dataKey, contentContext(binaryId, patient));
    encrypt.on('error', (err) => ciphertext.destroy(err));
    // The request itself is never destroyed either (the 413 answer still has to reach the client).
    rest.once('error', (err) => ciphertext.destroy(err));
    rest.once('aborted', () => ciphertext.destroy(new UploadError(400, 'The upload was aborted')));
    rest.pipe(measure).pipe(encrypt).pipe(ciphertext);
    try {
      await this.store.put(objectKey, ciphertext);
    } catch (err) {
      rest.unpipe(measure);
      await this.store.delete(objectKey).catch(() => undefined);
      throw refused ?? err;
    } finally {
      dataKey.fill(0);
    }
    return { binaryId, patient, objectKey, size, sha1: sha1.digest('base64'), key };
  }

  /** Removes the object of an upload no version links (a refused write; `failed`: a write that rolled back). */
  async discard(pending: PendingContent, failed = false): Promise<void> {
    if (pending.recorded && !failed) return;
    await this.store.delete(pending.objectKey).catch(() => undefined);
  }

  /** Links an upload to a Binary version, in that version's transaction. */
  async record(q: Queryable, pending: PendingContent, versionId: number): Promise<void> {
    await insertRow(q, {
      binary_id: pending.binaryId,
      version_id: versionId,
      object_key: pending.objectKey,
      patient: pending.patient,
      size: pending.size,
      sha1: pending.sha1,
      key_id: pending.key.keyId,
      data_key: pending.key.wrapped,
    });
    pending.recorded = true;
  }

  /** A version that changes only metadata keeps the content of the one before it (same object, same key). */
  async carryOver(q: Queryable, binaryId: string, versionId: number): Promise<ContentRow | undefined> {
    const before = await latestRow(q, binaryId, versionId);
    if (before) await insertRow(q, { ...before, version_id: versionId });
    return before;
  }

  content(q: Queryable, binaryId: string, versionId: number): Promise<ContentRow | undefined> {
    return contentRow(q, binaryId, versionId);
  }

  previousContent(q: Queryable, binaryId: string, beforeVersion: number): Promise<ContentRow | undefined> {
    return latestRow(q, binaryId, beforeVersion);
  }

  /**
   * The plaintext of a version's content (or of `range`). Resolves once the data key unwrapped and the stored
   * header authenticated as this object's (IntegrityError otherwise, before any byte); a tampered frame later
   * errors the stream before its bytes are released.
   */
  async open(row: ContentRow, range?: ByteRange): Promise<Readable> {
    let dataKey: Buffer;
    try {
      dataKey = await this.keys.unwrap({ keyId: row.key_id, wrapped: row.data_key }, keyContext(row.binary_id, row.patient));
    } catch (err) {
      if (err instanceof KeyUnavailableError) throw new IntegrityError(err.message);
      if ((err as Error).message?.includes('Unable to decrypt')) throw new IntegrityError('The data key does not unwrap for this object');
      throw err;
    }
    const plaintext = await decryptStream(dataKey, contentContext(row.binary_id, row.patient), await this.store.get(row.object_key)).finally(() => dataKey.fill(0));
    return range ? slice(plaintext, range) : plaintext;
  }

  /** Deletes objects no row names, written more than `olderThanMs` ago (an upload whose write never committed). */
  async sweepOrphans(q: Queryable, olderThanMs: number): Promise<number> {
    let removed = 0;
    for await (const o of this.store.list()) {
      if (Date.now() - o.modified.getTime() < olderThanMs) continue;
      if (await objectKeyInUse(q, o.key)) continue;
      await this.store.delete(o.key);
      removed++;
    }
    return removed;
  }

  /** A secret (a token signing key's private JWK) wrapped under the master key, bound to `label`. */
  async wrapSecret(label: string, plaintext: Buffer): Promise<Wrapped> {
    return this.keys.wrap(plaintext, { 'healthmed:purpose': 'secret', 'healthmed:label': label });
  }

  async unwrapSecret(label: string, key: Wrapped): Promise<Buffer> {
    return this.keys.unwrap(key, { 'healthmed:purpose': 'secret', 'healthmed:label': label });
  }

  async rewrapSecret(label: string, key: Wrapped): Promise<Wrapped> {
    return this.keys.rewrap(key, { 'healthmed:purpose': 'secret', 'healthmed:label': label });
  }

  /** The same data key under the current master key (rotate.ts). */
  rewrapRow(row: ContentRow): Promise<Wrapped> {
    return this.keys.rewrap({ keyId: row.key_id, wrapped: row.data_key }, keyContext(row.binary_id, row.patient));
  }
}

/** The attachments of a server's configuration (S3 with S3_BUCKET, else files under DATA_DIR). */
export function blobsFromConfig(config: Config): Blobs {
  const { s3Bucket, s3Endpoint, s3ForcePathStyle, ...rest } = config.blobs;
  return createBlobs({ ...rest, dataDir: config.dataDir, s3: s3Bucket ? { bucket: s3Bucket, endpoint: s3Endpoint, forcePathStyle: s3ForcePathStyle } : undefined });
}

export function createBlobs(settings: BlobSettings): Blobs {
  mkdirSync(settings.dataDir, { recursive: true });
  const store = settings.s3 ? s3Store(settings.s3) : localStore(join(settings.dataDir, 'blobs'));
  return new Blobs(createMasterKeys(settings), store, { maxUploadBytes: settings.maxUploadBytes, contentTypes: settings.contentTypes.length ? settings.contentTypes : DEFAULT_CONTENT_TYPES });
}

/**
 * The first `n` bytes of a stream (fewer at its end), and a stream that still yields every byte: the same one
 * with the bytes put back, or, when it has ended, one of what was read.
 */
function peek(stream: Readable, n: number): Promise<{ head: Buffer; rest: Readable }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const done = (err?: Error, ended = false) => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', done);
      stream.pause();
      const head = Buffer.concat(chunks);
      if (err) return reject(err);
      if (ended) return resolve({ head, rest: Readable.from(head.length ? [head] : []) });
      if (head.length > 0) stream.unshift(head);
      resolve({ head: head.subarray(0, n), rest: stream });
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      length += chunk.length;
      if (length >= n) done();
    };
    const onEnd = () => done(undefined, true);
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('error', done);
  });
}

/** Bytes start..end (inclusive) of a stream; stops reading (and decrypting) past the end. */
function slice(source: Readable, { start, end }: ByteRange): Readable {
  let position = 0;
  const out = new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      const from = Math.max(start - position, 0);
      const to = Math.min(end + 1 - position, chunk.length);
      position += chunk.length;
      if (to > from) this.push(chunk.subarray(from, to));
      if (position > end) {
        this.push(null);
        source.unpipe(out);
        source.destroy();
      }
      cb();
    },
  });
  source.once('error', (err) => out.destroy(err));
  return source.pipe(out);
}
