/**
 * No attachment byte at rest in plaintext (issue 13, CONTRACT section 6), and no token signing key either: after
 * uploads of a distinctive marker (raw, as a Binary with data, inline in a DocumentReference), no file under
 * DATA_DIR, no row of any table and no pg_dump of the database (when DATABASE_URL is set) holds the marker, in
 * plain or base64; the private part of the signing key is in none of them.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as jose from 'jose';
import { privateJwk } from '../../src/auth/keys';
import { createBlobs } from '../../src/blobs';
import type { TestServer } from '../helpers/server';
import { pdfWithMarker, raw, startBlobServer } from './support';

let s: TestServer & { dataDir: string };
beforeAll(async () => {
  s = await startBlobServer('at-rest');
}, 120_000);
afterAll(() => s?.close());

function filesUnder(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).map((f) => join(dir, f)).filter((f) => statSync(f).isFile());
}

/** Every table of the public schema as text. */
async function tablesAsText(): Promise<string> {
  const tables = await s.db.query<{ tablename: string }>("SELECT tablename FROM pg_tables WHERE schemaname = 'public'");
  let text = '';
  for (const { tablename } of tables.rows) {
    const r = await s.db.query<{ t: string | null }>(`SELECT string_agg(x::text, E'\\n') AS t FROM "${tablename}" x`);
    text += r.rows[0].t ?? '';
  }
  return text;
}

/** Forms the marker could take at rest: as is, hex (bytea), and base64 at each of the three alignments. */
function forms(marker: string): string[] {
  const out = [marker, Buffer.from(marker).toString('hex')];
  for (const pad of ['', 'x', 'xx']) {
    const b64 = Buffer.from(pad + marker).toString('base64');
    out.push(b64.slice(4, b64.length - 4));
  }
  return out;
}

test('after uploads, the marker is in no file under DATA_DIR, no table and no pg_dump', async () => {
  const marker = `PLAINTEXT-MARKER-${randomUUID()}`;
  const patient = await s.request('POST', '/fhir/Patient', { resourceType: 'Patient', name: [{ family: 'Lima' }] });
  const bytes = pdfWithMarker(marker, 2 * 1024 * 1024 + 5);
  const rawUp = await raw(s, 'POST', '/fhir/Binary', bytes, { 'content-type': 'application/pdf', 'x-security-context': `Patient/${patient.body.id}` });
  expect(rawUp.status).toBe(201);
  const jsonUp = await s.request('POST', '/fhir/Binary', { resourceType: 'Binary', contentType: 'text/plain', data: Buffer.from(`${marker} as json`).toString('base64') });
  expect(jsonUp.status).toBe(201);
  const doc = await s.request('POST', '/fhir/DocumentReference', {
    resourceType: 'DocumentReference',
    status: 'current',
    subject: { reference: `Patient/${patient.body.id}` },
    content: [{ attachment: { contentType: 'text/plain', data: Buffer.from(`${marker} inline`).toString('base64') } }],
  });
  expect(doc.status).toBe(201);
  // the bytes are still there for a reader
  const back = await raw(s, 'GET', `/fhir/Binary/${rawUp.json.id}`, undefined, { accept: '*/*' });
  expect(back.bytes.equals(bytes)).toBe(true);

  const needles = forms(marker);
  const files = filesUnder(s.dataDir);
  expect(files.length).toBeGreaterThanOrEqual(3);
  for (const f of files) {
    const content = readFileSync(f);
    for (const n of needles) expect([f, content.includes(n)]).toEqual([f, false]);
  }
  const tables = await tablesAsText();
  expect(tables).toContain(rawUp.json.id);
  for (const n of needles) expect(tables.includes(n)).toBe(false);

  // The signing key's private part: wrapped in the row, and its value nowhere.
  const key = (await s.db.query<{ kid: string; private_jwk: jose.JWK }>('SELECT kid, private_jwk FROM auth_signing_keys')).rows;
  expect(key.length).toBeGreaterThan(0);
  const secrets: string[] = [];
  for (const row of key) {
    expect(Object.keys(row.private_jwk).sort()).toEqual(['keyId', 'wrapped']);
    secrets.push((await privateJwk(createBlobs({ ...s.config.blobs, dataDir: s.config.dataDir }), row)).d as string);
  }
  for (const d of secrets) expect(tables.includes(d)).toBe(false);

  if (process.env.DATABASE_URL) {
    const dump = execFileSync('pg_dump', ['--data-only', process.env.DATABASE_URL], { maxBuffer: 1024 * 1024 * 1024 }).toString('utf8');
    expect(dump).toContain(rawUp.json.id);
    for (const n of needles) expect(dump.includes(n)).toBe(false);
    for (const d of secrets) expect(dump.includes(d)).toBe(false);
  }
});
