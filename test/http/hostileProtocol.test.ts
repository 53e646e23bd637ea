/**
 * Hostile input at the protocol layer (issue 16): requests Node's HTTP parser refuses, malformed
 * percent-encodings in the path, and bodies that are not UTF-8. Every answer is a 4xx with a FHIR JSON
 * OperationOutcome (https://hl7.org/fhir/R4/http.html#summary), nothing refused is stored, and the server
 * keeps serving. Raw requests go over node:net, since fetch cannot send them.
 */
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { createHttpServer } from '../../src/http/clientErrors';
import { startServer, TEST_ADMIN, type TestServer } from '../helpers/server';

let s: TestServer;
let port: number;
beforeAll(async () => {
  s = await startServer();
  port = Number(new URL(s.baseUrl).port);
});
afterAll(() => s.close());

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  text: string;
}

/** Writes `data` on a fresh connection and reads until the server closes it. */
function raw(data: string | Buffer, toPort = port): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(toPort, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer in 5 s: ${Buffer.concat(chunks).toString('latin1').slice(0, 200)}`));
    }, 5_000);
    socket.on('data', (chunk) => chunks.push(chunk));
    // A reset after the answer arrived is fine; only the answer matters.
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      const all = Buffer.concat(chunks).toString('utf8');
      const end = all.indexOf('\r\n\r\n');
      if (end < 0) return reject(new Error(`no HTTP response: ${JSON.stringify(all.slice(0, 200))}`));
      const [statusLine, ...lines] = all.slice(0, end).split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
      }
      resolve({ status: Number(statusLine.split(' ')[1]), headers, text: all.slice(end + 4) });
    });
    socket.write(data);
  });
}

function expectOutcome(res: { status: number; text: string }, status: number, code: string): void {
  expect(res.status).toBe(status);
  const body = JSON.parse(res.text);
  expect(body.resourceType).toBe('OperationOutcome');
  expect(body.issue[0]).toMatchObject({ severity: 'error', code });
  expect(body.issue[0].diagnostics).toEqual(expect.any(String));
}

describe('requests Node refuses before the app sees them', () => {
  const host = () => `Host: 127.0.0.1:${port}`;
  const cases: [string, () => string, number, string][] = [
    ['a malformed request line', () => 'GARBAGE\r\n\r\n', 400, 'invalid'],
    ['a request line with no version', () => `GET /fhir/metadata HTTP/9.9\r\n${host()}\r\n\r\n`, 400, 'invalid'],
    ['a header with a control character in its name', () => `GET /fhir/metadata HTTP/1.1\r\n${host()}\r\nX\u0001Bad: 1\r\n\r\n`, 400, 'invalid'],
    ['bad chunked encoding', () => `POST /fhir/Patient HTTP/1.1\r\n${host()}\r\nContent-Type: application/fhir+json\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n{}\r\n0\r\n\r\n`, 400, 'invalid'],
    ['both Content-Length and Transfer-Encoding (request smuggling)', () => `POST /fhir/Patient HTTP/1.1\r\n${host()}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400, 'invalid'],
    ['a Content-Length that is not a number', () => `POST /fhir/Patient HTTP/1.1\r\n${host()}\r\nContent-Length: abc\r\n\r\n`, 400, 'invalid'],
    ['two different Content-Lengths', () => `POST /fhir/Patient HTTP/1.1\r\n${host()}\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}`, 400, 'invalid'],
    ['a 20 KB header', () => `GET /fhir/metadata HTTP/1.1\r\n${host()}\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431, 'too-long'],
    ['a 100 KB query string', () => `GET /fhir/Patient?name=${'a'.repeat(100_000)} HTTP/1.1\r\n${host()}\r\n\r\n`, 431, 'too-long'],
    ['Expect: 100-foo', () => `GET /fhir/metadata HTTP/1.1\r\n${host()}\r\nExpect: 100-foo\r\n\r\n`, 417, 'not-supported'],
    ['CONNECT host:443', () => 'CONNECT host:443 HTTP/1.1\r\nHost: host:443\r\n\r\n', 405, 'not-supported'],
    ['an HTTP/1.1 request without Host', () => 'GET /fhir/metadata HTTP/1.1\r\n\r\n', 400, 'invalid'],
  ];

  test.each(cases)('%s: a 4xx OperationOutcome, and the connection closes', async (_name, request, status, code) => {
    const res = await raw(request());
    expectOutcome(res, status, code);
    expect(res.headers['content-type']).toMatch(/^application\/fhir\+json/);
    expect(res.headers.connection).toBe('close');
    expect(Number(res.headers['content-length'])).toBe(Buffer.byteLength(res.text));
  });

  test('bad chunking after a token: the same 400, and nothing is created', async () => {
    const marker = `Chunk${Date.now()}`;
    const json = JSON.stringify({ resourceType: 'Patient', name: [{ family: marker }] });
    const res = await raw(
      `POST /fhir/Patient HTTP/1.1\r\n${host()}\r\nAuthorization: Bearer ${await s.adminToken()}\r\nContent-Type: application/fhir+json\r\n` +
        `Transfer-Encoding: chunked\r\n\r\n${json.length.toString(16)}\r\n${json}\r\nXYZ\r\n`,
    );
    expectOutcome(res, 400, 'invalid');
    const search = await s.request('GET', `/fhir/Patient?family=${marker}`);
    expect(search.body.entry ?? []).toHaveLength(0);
  });

  test('CONNECT is answered with the methods the server allows', async () => {
    const res = await raw('CONNECT host:443 HTTP/1.1\r\nHost: host:443\r\n\r\n');
    expect(res.headers.allow).toBe('GET, HEAD, POST, PUT, PATCH, DELETE');
  });

  test('the 431 for a long URL says how to send a long search', async () => {
    const res = await raw(`GET /fhir/Patient?name=${'a'.repeat(100_000)} HTTP/1.1\r\n${host()}\r\n\r\n`);
    expect(JSON.parse(res.text).issue[0].diagnostics).toMatch(/_search/);
  });

  test('Expect: 100-continue still works', async () => {
    const res = await raw(`GET /healthz HTTP/1.1\r\n${host()}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`);
    expect(res.status).toBe(100);
    expect(res.text).toMatch(/^HTTP\/1\.1 200 /);
  });

  test('a request that is not received in time: 408 OperationOutcome', async () => {
    const server = createHttpServer((_req, res) => res.end());
    // Node checks its timeouts every connectionsCheckingInterval (30 s by default), starting at listen.
    Object.assign(server, { headersTimeout: 200, requestTimeout: 300, connectionsCheckingInterval: 50 });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const res = await raw('GET / HTTP/1.1\r\nHost: x\r\n', (server.address() as AddressInfo).port);
      expectOutcome(res, 408, 'timeout');
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('percent-encoding in the path', () => {
  test.each([
    '/fhir/Patient/%',
    '/fhir/%ZZ',
    '/fhir/%E0%A4%A',
    '/fhir/Patient/%C3%28',
    '/fhir/Patient/%00',
    '/fhir/Patient/a%00b/_history',
    '/fhir/Patient/a%2Fb',
    '/fhir/Patient/%0A',
  ])('GET %s: 400 OperationOutcome', async (path) => {
    expectOutcome(await s.request('GET', path), 400, 'invalid');
  });

  test('a malformed escape in a PUT or DELETE is a 400 too', async () => {
    expectOutcome(await s.request('PUT', '/fhir/Patient/%', { resourceType: 'Patient', id: '%' }), 400, 'invalid');
    expectOutcome(await s.request('DELETE', '/fhir/Patient/%E0%A4%A'), 400, 'invalid');
  });

  test('a malformed escape in a batch entry url fails that entry with 400', async () => {
    const res = await s.request('POST', '/fhir', { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url: 'Patient/%' } }] });
    expect(res.status).toBe(200);
    expect(res.body.entry[0].response.status).toMatch(/^400/);
  });

  test('a well-formed escape still reads the resource', async () => {
    const created = await s.request('POST', '/fhir/Patient', { resourceType: 'Patient' });
    const read = await s.request('GET', `/fhir/Patient/${encodeURIComponent(created.body.id).replace(/-/g, '%2D')}`);
    expect(read.status).toBe(200);
  });

  test.each(['/auth/%', '/oauth2/%', '/oauth2/token/%E0%A4%A'])('outside /fhir, %s is a 4xx OperationOutcome', async (path) => {
    const res = await s.request('GET', path, undefined, { authorization: '' });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(res.body.resourceType).toBe('OperationOutcome');
  });
});

describe('percent-decoding in credentials and scopes', () => {
  const token = (authorization: string, scope: string) =>
    fetch(`${s.baseUrl}/oauth2/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope }).toString(),
    });
  const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

  test('a client id with a malformed escape in HTTP Basic: 401, not a 500', async () => {
    expect((await token(basic('%E0%A4%A', '%'), 'system/*.*')).status).toBe(401);
  });

  test('a scope with a malformed escape in its query is refused, not a 500', async () => {
    const res = await token(basic(TEST_ADMIN.id, TEST_ADMIN.secret), 'system/Observation.rs?code=%E0%A4%A');
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
  });
});

describe('request bodies are strictly UTF-8', () => {
  const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

  async function post(path: string, bytes: Buffer, contentType = 'application/fhir+json', headers: Record<string, string> = {}) {
    const res = await fetch(`${s.fhirBase}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await s.adminToken()}`, 'content-type': contentType, accept: 'application/fhir+json', ...headers },
      body: new Uint8Array(bytes),
    });
    const text = await res.text();
    return { status: res.status, text, body: JSON.parse(text) };
  }

  /** A Patient whose family name is `marker` followed by `tail` (raw bytes, inside the JSON string). */
  function patient(marker: string, tail: Buffer = Buffer.alloc(0)): Buffer {
    return Buffer.concat([Buffer.from(`{"resourceType":"Patient","name":[{"family":"${marker}`), tail, Buffer.from('"}]}')]);
  }

  async function stored(marker: string): Promise<number> {
    const search = await s.request('GET', `/fhir/Patient?family=${marker}`);
    expect(search.status).toBe(200);
    return (search.body.entry ?? []).length;
  }

  test.each([
    ['an invalid sequence (C3 28)', [0xc3, 0x28]],
    ['a truncated sequence (E2 82)', [0xe2, 0x82]],
    ['an overlong encoding (C0 AF)', [0xc0, 0xaf]],
    ['an encoded surrogate (ED A0 80)', [0xed, 0xa0, 0x80]],
    ['a Latin-1 byte (E9)', [0xe9]],
  ])('%s inside a string: 400, and nothing is stored', async (_name, bytes) => {
    const marker = `Utf${Date.now()}${Math.floor(Math.random() * 1e6)}`;
    const res = await post('/Patient', patient(marker, Buffer.from(bytes)));
    expect(res.status).toBe(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(res.body.issue[0].diagnostics).toMatch(/UTF-8/);
    expect(await stored(marker)).toBe(0);
  });

  test('valid multi-byte UTF-8 is stored as sent', async () => {
    const marker = `Conceição${Date.now()}`;
    const res = await post('/Patient', patient(marker));
    expect(res.status).toBe(201);
    expect(res.body.name[0].family).toBe(marker);
  });

  test('one leading byte order mark is accepted (201)', async () => {
    const marker = `Bom${Date.now()}`;
    const res = await post('/Patient', Buffer.concat([BOM, patient(marker)]));
    expect(res.status).toBe(201);
    expect(await stored(marker)).toBe(1);
  });

  test('two byte order marks: 400, and nothing is stored', async () => {
    const marker = `Bom2${Date.now()}`;
    const res = await post('/Patient', Buffer.concat([BOM, BOM, patient(marker)]));
    expect(res.status).toBe(400);
    expect(res.body.issue[0].diagnostics).toMatch(/byte order mark/);
    expect(await stored(marker)).toBe(0);
  });

  test('an invalid sequence in a form-encoded _search body: 400', async () => {
    const res = await post('/Patient/_search', Buffer.concat([Buffer.from('family='), Buffer.from([0xc3, 0x28])]), 'application/x-www-form-urlencoded');
    expect(res.status).toBe(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
  });

  test('a compressed body: 415, not read as text', async () => {
    const res = await post('/Patient', Buffer.from([0x1f, 0x8b, 0x08, 0x00]), 'application/fhir+json', { 'content-encoding': 'gzip' });
    expect(res.status).toBe(415);
    expect(res.body.resourceType).toBe('OperationOutcome');
  });

  test('the size limit still answers 413', async () => {
    const big = Buffer.alloc(s.config.maxJsonBytes + 1, 0x20);
    const res = await post('/Patient', big);
    expect(res.status).toBe(413);
    expect(res.body.resourceType).toBe('OperationOutcome');
  });
});

describe('afterwards', () => {
  test('the server still answers', async () => {
    expect((await s.request('GET', '/healthz')).status).toBe(200);
    expect((await s.request('GET', '/fhir/metadata', undefined, { authorization: '' })).status).toBe(200);
  });
});
