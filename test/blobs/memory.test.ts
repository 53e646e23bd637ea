/**
 * Streaming end to end (issue 13): the server's RSS grows by less than 64 MB while a 50 MB attachment is uploaded
 * and downloaded (raw, then as FHIR JSON with base64 data). The server runs in a child process of its own;
 * this process is the client, streaming the bytes out and hashing them in.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { projectRoot } from '../../src/config';
import { tempDataDir } from './support';

const MB = 1024 * 1024;
const SIZE = 50 * MB;
let child: ChildProcessWithoutNullStreams;
let lines: AsyncIterator<string>;
let baseUrl: string;
let token: string;

async function next(prefix: string): Promise<string[]> {
  for (;;) {
    const { value, done } = await lines.next();
    if (done) throw new Error('the server process ended');
    if (value.startsWith(`${prefix} `)) return value.split(' ').slice(1);
  }
}

/** [rss, live] of the server now (MARK) or at its highest since the last MARK (PEAK). */
async function ask(command: string, answer: string): Promise<[number, number]> {
  child.stdin.write(`${command}\n`);
  const [rss, live] = (await next(answer)).map(Number);
  return [rss, live];
}

beforeAll(async () => {
  child = spawn(process.execPath, ['--expose-gc', '-r', 'ts-node/register/transpile-only', join(projectRoot(), 'test/blobs/memoryServer.ts'), tempDataDir('memory')], {
    cwd: projectRoot(),
    env: { ...process.env, TS_NODE_PROJECT: join(projectRoot(), 'tsconfig.json') },
  });
  child.stderr.on('data', (c: Buffer) => process.stderr.write(c));
  lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  [baseUrl, token] = await next('READY');
}, 180_000);
afterAll(async () => {
  child?.stdin.write('EXIT\n');
  await new Promise((r) => child?.once('exit', r));
});

/** 50 MB of a PDF, made as it is sent (the client does not hold it either). */
function pdfStream(hash: ReturnType<typeof createHash>): ReadableStream<Uint8Array> {
  let sent = 0;
  const chunk = Buffer.alloc(256 * 1024);
  return new ReadableStream({
    pull(controller) {
      if (sent >= SIZE) return controller.close();
      const n = Math.min(chunk.length, SIZE - sent);
      for (let i = 0; i < n; i += 4) chunk.writeUInt32LE((sent + i) * 2654435761 >>> 0, i);
      if (sent === 0) chunk.write('%PDF-1.7\n', 0, 'latin1');
      const piece = Buffer.from(chunk.subarray(0, n));
      hash.update(piece);
      controller.enqueue(piece);
      sent += n;
    },
  });
}

async function drain(res: Response, hash: ReturnType<typeof createHash>): Promise<number> {
  let n = 0;
  for await (const c of res.body as unknown as AsyncIterable<Uint8Array>) {
    hash.update(c);
    n += c.length;
  }
  return n;
}

test('a 50 MB upload and its downloads grow the server RSS by less than 64 MB', async () => {
  const auth = { authorization: `Bearer ${token}` };
  // warm up every path once
  const warm = await fetch(`${baseUrl}/fhir/Binary`, { method: 'POST', headers: { ...auth, 'content-type': 'application/pdf' }, body: '%PDF-1.7 warm up' });
  expect(warm.status).toBe(201);
  const warmId = ((await warm.json()) as { id: string }).id;
  await (await fetch(`${baseUrl}/fhir/Binary/${warmId}`, { headers: auth })).arrayBuffer();
  await (await fetch(`${baseUrl}/fhir/Binary/${warmId}`, { headers: { ...auth, accept: 'application/fhir+json' } })).arrayBuffer();

  const baseline = await ask('MARK', 'RSS');
  const sent = createHash('sha256');
  const t0 = Date.now();
  const up = await fetch(`${baseUrl}/fhir/Binary`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/pdf' },
    body: pdfStream(sent),
    duplex: 'half',
  } as RequestInit);
  expect(up.status).toBe(201);
  const uploadMs = Date.now() - t0;
  const id = ((await up.json()) as { id: string }).id;
  const afterUpload = await ask('PEAK', 'PEAK');

  const t1 = Date.now();
  const got = createHash('sha256');
  const res = await fetch(`${baseUrl}/fhir/Binary/${id}`, { headers: { ...auth, accept: '*/*' } });
  expect(res.status).toBe(200);
  expect(await drain(res, got)).toBe(SIZE);
  const downloadMs = Date.now() - t1;
  expect(got.digest('hex')).toBe(sent.digest('hex'));
  const afterDownload = await ask('PEAK', 'PEAK');

  const json = await fetch(`${baseUrl}/fhir/Binary/${id}`, { headers: { ...auth, accept: 'application/fhir+json' } });
  expect(json.status).toBe(200);
  expect(await drain(json, createHash('sha1'))).toBe(Number(json.headers.get('content-length')));
  const afterJson = await ask('PEAK', 'PEAK');

  const mb = (n: number) => (n / MB).toFixed(0);
  const grown = (Math.max(afterUpload[0], afterDownload[0], afterJson[0]) - baseline[0]) / MB;
  const liveGrown = (Math.max(afterUpload[1], afterDownload[1], afterJson[1]) - baseline[1]) / MB;
  console.log(
    `50 MB: upload ${uploadMs} ms (${((50 * 1000) / uploadMs).toFixed(0)} MB/s), download ${downloadMs} ms (${((50 * 1000) / downloadMs).toFixed(0)} MB/s); ` +
      `RSS ${mb(baseline[0])} MB, peaks (upload/raw/json) ${mb(afterUpload[0])}/${mb(afterDownload[0])}/${mb(afterJson[0])} MB: +${grown.toFixed(1)} MB; ` +
      `live heap+buffers ${mb(baseline[1])} MB, peaks ${mb(afterUpload[1])}/${mb(afterDownload[1])}/${mb(afterJson[1])} MB: +${liveGrown.toFixed(1)} MB`,
  );
  expect(grown).toBeLessThan(64);
  // RSS keeps what the start-up freed, which could hide a buffered upload: the live memory must stay small too.
  expect(liveGrown).toBeLessThan(64);
}, 180_000);
