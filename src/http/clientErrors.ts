/**
 * Requests that never reach Koa. Node's HTTP server answers some broken requests itself, with an empty body
 * (a malformed request line or chunked body: 400; headers over the limit: 431; an `Expect` it does not know:
 * 417; no `Host`: 400) and drops `CONNECT` without a word. Here each gets a FHIR JSON OperationOutcome
 * (https://hl7.org/fhir/R4/http.html#summary: every error is an OperationOutcome) where the socket allows it.
 *
 * The request line counts toward the header limit (Node's `maxHeaderSize`, 16 KB here): a 100 KB query string
 * is answered 431 like a 20 KB header, with a diagnostic pointing to `POST [type]/_search`. Node reports both as
 * one parser error (HPE_HEADER_OVERFLOW), so a 414 could only be guessed.
 *
 * Nothing from the request is logged (its URL and headers may hold PHI or tokens): only the parser's error
 * code and the status answered.
 */
import { createServer, STATUS_CODES, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { OperationOutcome } from '@medplum/fhirtypes';
import { outcome, type IssueCode } from '../fhir/outcomes';
import { logger } from '../logger';
import { FHIR_JSON } from './respond';

/** Request line plus header fields, in bytes (Node's default, fixed here so that it is documented). */
export const MAX_HEADER_BYTES = 16 * 1024;

/** How long an answered broken connection may stay open for the client to read the answer (see `answerRaw`). */
const LINGER_MS = 2_000;

/** The methods the FHIR API serves (the Allow header of a 405 to CONNECT). */
const ALLOW = 'GET, HEAD, POST, PUT, PATCH, DELETE';

interface ProtocolError {
  status: number;
  code: IssueCode;
  diagnostics: string;
}

/** An HTTP server for `handler` that answers protocol errors as OperationOutcomes. */
export function createHttpServer(handler: RequestListener): Server {
  // Node's own Host check answers an empty 400; the same rule (RFC 9112 section 3.2) is applied below instead.
  const server = createServer({ maxHeaderSize: MAX_HEADER_BYTES, requireHostHeader: false }, (req, res) => {
    if (req.httpVersion === '1.1' && req.headers.host === undefined) {
      answer(res, { status: 400, code: 'invalid', diagnostics: 'An HTTP/1.1 request needs a Host header (RFC 9112 section 3.2)' });
      return;
    }
    handler(req, res);
  });
  hardenHttpServer(server);
  return server;
}

/** Installs the `clientError`, `checkExpectation` and `connect` handlers on a server. */
export function hardenHttpServer(server: Server): void {
  server.on('clientError', onClientError);
  // Any Expect other than 100-continue (RFC 9110 section 10.1.1); 100-continue keeps Node's default (continue).
  server.on('checkExpectation', (_req: IncomingMessage, res: ServerResponse) => {
    answer(res, { status: 417, code: 'not-supported', diagnostics: 'The only expectation this server meets is Expect: 100-continue' });
  });
  // CONNECT asks for a tunnel; this is not a proxy. After 'connect' the socket is ours: Node's parser and its
  // error listener are gone, so a reset would otherwise be an uncaught error.
  server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    socket.on('error', () => socket.destroy());
    socket.resume();
    answerRaw(socket, { status: 405, code: 'not-supported', diagnostics: 'CONNECT is not supported: this server is not a proxy' }, { Allow: ALLOW });
  });
}

/** Sockets already answered: Node's parser reports an error again for every further chunk it is fed. */
const answered = new WeakSet<Duplex>();

function onClientError(err: Error & { code?: string }, socket: Duplex): void {
  if (answered.has(socket)) return;
  answered.add(socket);
  // The response in flight on this connection, if any (Node's own handler makes the same check).
  const inFlight = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage ?? undefined;
  if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
    // The client is gone, or part of another answer is on the wire: anything written now would corrupt it.
    socket.destroy();
    return;
  }
  const problem = classify(err);
  logger.info({ code: err.code, status: problem.status }, 'malformed HTTP request refused');
  // A body that breaks mid-request (bad chunking) leaves Koa's response unsent: answer through it, so that
  // the handler's own error answer later finds the response finished and writes nothing.
  if (inFlight) answer(inFlight, problem);
  else answerRaw(socket, problem);
}

function classify(err: Error & { code?: string }): ProtocolError {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return {
        status: 431,
        code: 'too-long',
        diagnostics: `The request line and headers exceed ${MAX_HEADER_BYTES / 1024} KB (the URL counts): send a long search as POST [base]/[type]/_search with a form body`,
      };
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return { status: 413, code: 'too-costly', diagnostics: 'Chunk extensions too large' };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { status: 408, code: 'timeout', diagnostics: 'The request was not received in time' };
    default: {
      // llhttp's reasons are fixed texts ("Invalid character in chunk size"), never request content.
      const reason = err.code?.startsWith('HPE_') ? `: ${err.message.replace(/^Parse Error: /, '')} (${err.code})` : '';
      return { status: 400, code: 'invalid', diagnostics: `Malformed HTTP/1.1 request${reason}` };
    }
  }
}

function body(problem: ProtocolError): string {
  const oo: OperationOutcome = outcome('error', problem.code, problem.diagnostics);
  return JSON.stringify(oo);
}

/** Answers through a ServerResponse whose headers are not sent yet, closing the connection after it. */
function answer(res: ServerResponse, problem: ProtocolError): void {
  const text = body(problem);
  res.writeHead(problem.status, { 'Content-Type': FHIR_JSON, 'Content-Length': Buffer.byteLength(text), Connection: 'close' });
  res.end(text);
}

/**
 * Writes a whole HTTP/1.1 response on a socket no ServerResponse owns. The connection is ended, not destroyed:
 * closing a socket with unread request bytes (the rest of a 100 KB URL) sends a reset, which can make the
 * client drop the answer before reading it. The socket is destroyed when the client closes or after LINGER_MS.
 */
function answerRaw(socket: Duplex, problem: ProtocolError, headers: Record<string, string> = {}): void {
  const text = body(problem);
  const lines = [
    `HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status] ?? ''}`,
    `Date: ${new Date().toUTCString()}`,
    `Content-Type: ${FHIR_JSON}`,
    `Content-Length: ${Buffer.byteLength(text)}`,
    'Connection: close',
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ];
  socket.end(`${lines.join('\r\n')}\r\n\r\n${text}`);
  const linger = setTimeout(() => socket.destroy(), LINGER_MS);
  linger.unref();
  socket.once('close', () => clearTimeout(linger));
}
