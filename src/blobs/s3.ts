/**
 * S3 (or an S3-compatible server with S3_ENDPOINT, path-style) behind the ObjectStore interface. Uploads are
 * multipart through @aws-sdk/lib-storage with one part in flight, so a large object streams through in 8 MiB
 * parts; an aborted upload is aborted on S3 too (no object).
 */
import type { Readable } from 'node:stream';
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { assertKey, type ObjectStore } from './store';

export interface S3Settings {
  bucket: string;
  endpoint?: string;
  /** Path-style URLs (bucket in the path): what most S3-compatible servers need. Default: with an endpoint. */
  forcePathStyle?: boolean;
  prefix?: string;
}

export function s3Store(settings: S3Settings): ObjectStore {
  const client = new S3Client({
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
    forcePathStyle: settings.forcePathStyle ?? !!settings.endpoint,
  });
  const Bucket = settings.bucket;
  const prefix = settings.prefix ?? 'binary/';
  const Key = (key: string) => {
    assertKey(key);
    return `${prefix}${key}`;
  };
  return {
    async put(key, body) {
      const upload = new Upload({ client, params: { Bucket, Key: Key(key), Body: body }, queueSize: 1, partSize: 8 * 1024 * 1024, leavePartsOnError: false });
      body.once('error', () => void upload.abort().catch(() => undefined));
      await upload.done();
    },
    async get(key) {
      const r = await client.send(new GetObjectCommand({ Bucket, Key: Key(key) }));
      return r.Body as Readable;
    },
    async delete(key) {
      await client.send(new DeleteObjectCommand({ Bucket, Key: Key(key) }));
    },
    async *list() {
      let ContinuationToken: string | undefined;
      do {
        const r = await client.send(new ListObjectsV2Command({ Bucket, Prefix: prefix, ContinuationToken }));
        for (const o of r.Contents ?? []) if (o.Key) yield { key: o.Key.slice(prefix.length), modified: o.LastModified ?? new Date(0) };
        ContinuationToken = r.IsTruncated ? r.NextContinuationToken : undefined;
      } while (ContinuationToken);
    },
  };
}
