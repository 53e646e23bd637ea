/**
 * Helpers for the attachment tests: raw requests (bytes in, bytes out), distinctive plaintext, and a data
 * directory of the test's own (every object and the master key file land there).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type TestServer } from '../helpers/server';

export interface RawResponse {
  status: number;
  headers: Headers;
  bytes: Buffer;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

export function tempDataDir(label: string): string {
  return mkdtempSync(join(tmpdir(), `blobs-${label}-`));
}

export async function startBlobServer(label: string, env: Record<string, string> = {}): Promise<TestServer & { dataDir: string }> {
  const dataDir = env.DATA_DIR ?? tempDataDir(label);
  const s = await startServer({ DATA_DIR: dataDir, ...env });
  return Object.assign(s, { dataDir });
}

export async function raw(
  s: TestServer,
  method: string,
  path: string,
  body?: Buffer | string | ReadableStream<Uint8Array>,
  headers: Record<string, string> = {},
): Promise<RawResponse> {
  const h: Record<string, string> = { ...headers };
  if (!Object.keys(h).some((k) => k.toLowerCase() === 'authorization')) h.authorization = `Bearer ${await s.adminToken()}`;
  else if (h.authorization === '') delete h.authorization;
  const init: RequestInit & { duplex?: string } = { method, headers: h, body: body as BodyInit | undefined };
  if (body instanceof ReadableStream) init.duplex = 'half';
  const res = await fetch(`${s.baseUrl}${path}`, init);
  const bytes = Buffer.from(await res.arrayBuffer());
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, bytes, json };
}

/** A PDF-looking payload with a marker no other test writes: what "no plaintext at rest" searches for. */
export function pdfWithMarker(marker: string, size = 4096): Buffer {
  const head = Buffer.from(`%PDF-1.7\n% ${marker}\n`);
  const fill = Buffer.alloc(Math.max(size - head.length, 0));
  for (let i = 0; i < fill.length; i++) fill[i] = marker.charCodeAt(i % marker.length);
  return Buffer.concat([head, fill]);
}

export const PNG_HEAD = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/**
 * With DATABASE_URL, a database of the test's own on that server (a test that changes the master key re-wraps
 * the signing keys every other test file on a shared database relies on); without it, undefined (PGlite in
 * memory is the test's own anyway). `drop()` removes it.
 */
export async function privateDatabase(label: string): Promise<{ url?: string; drop(): Promise<void> }> {
  const shared = process.env.DATABASE_URL;
  if (!shared) return { url: undefined, drop: async () => undefined };
  const { Client } = await import('pg');
  const name = `blobs_${label}_${Date.now()}_${Math.floor(Math.random() * 1e6)}`;
  const admin = new Client({ connectionString: shared });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${name}"`);
  await admin.end();
  const url = new URL(shared);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new Client({ connectionString: shared });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await c.end();
    },
  };
}
