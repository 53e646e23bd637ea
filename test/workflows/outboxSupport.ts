/**
 * Test support for the outbox and its e-mail notices: a real SMTP server (smtp-server) whose answer to each
 * message the test chooses (accept, a 4xx/5xx, or stall the DATA phase), messages parsed with mailparser, a
 * polling wait, and resources stored directly (so a notice's test depends on no booking rule).
 */
import type { AddressInfo } from 'node:net';
import type { Resource } from '@medplum/fhirtypes';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import type { Queryable } from '../../src/storage/database';
import { readCurrent, writeVersion } from '../../src/storage/repository';

export interface ReceivedMail {
  /** Envelope recipients. */
  to: string[];
  raw: string;
  parsed: ParsedMail;
}

/** What the server answers to the n-th message (from 1): accept, an SMTP error code, or never answer. */
export type SmtpAnswer = 'accept' | 'stall' | number;

export interface TestSmtp {
  url: string;
  received: ReceivedMail[];
  /** DATA phases started (accepted or not). */
  attempts: number;
  answer: (n: number) => SmtpAnswer;
  close(): Promise<void>;
}

export async function startSmtp(answer: (n: number) => SmtpAnswer = () => 'accept'): Promise<TestSmtp> {
  const state: TestSmtp = { url: '', received: [], attempts: 0, answer, close: async () => undefined };
  const smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    // Stalled sessions would hold close() open for 30 s.
    closeTimeout: 100,
    onData(stream, session, callback) {
      const n = ++state.attempts;
      const what = state.answer(n);
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        if (what === 'stall') return; // the client waits for an answer that never comes
        if (typeof what === 'number') {
          const err = Object.assign(new Error(`test answers ${what}`), { responseCode: what });
          return callback(err);
        }
        const raw = Buffer.concat(chunks).toString('utf8');
        simpleParser(raw)
          .then((parsed) => {
            state.received.push({ to: session.envelope.rcptTo.map((r) => r.address), raw, parsed });
            callback();
          })
          .catch((err: Error) => callback(err));
      });
    },
  });
  // A client that goes away mid-session (a server killed while it sends, as the crash test does) resets its
  // connection: that is the test's doing, not a failure of the SMTP server (unhandled, the 'error' event would throw).
  smtp.on('error', () => undefined);
  await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
  state.url = `smtp://127.0.0.1:${(smtp.server.address() as AddressInfo).port}`;
  state.close = () => new Promise<void>((resolve) => smtp.close(() => resolve()));
  return state;
}

export async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Stores a resource as its next version, bypassing the FHIR layer and its workflows. */
export async function storeResource<T extends Resource>(q: Queryable, fhirBaseUrl: string, resource: T & { id: string }): Promise<T> {
  const current = await readCurrent(q, resource.resourceType, resource.id);
  const versionId = (current?.versionId ?? 0) + 1;
  const lastUpdated = new Date().toISOString();
  const stored = { ...resource, meta: { ...resource.meta, versionId: String(versionId), lastUpdated } } as T;
  const ok = await writeVersion(q, { resourceType: resource.resourceType, id: resource.id, versionId, lastUpdated, method: versionId === 1 ? 'POST' : 'PUT', resource: stored }, fhirBaseUrl);
  if (!ok) throw new Error(`could not store ${resource.resourceType}/${resource.id}`);
  return stored;
}

/** The .ics of a parsed message (nodemailer's icalEvent: an application/ics attachment). */
export function icsOf(mail: ReceivedMail): string | undefined {
  const part = mail.parsed.attachments.find((a) => a.contentType === 'application/ics' || a.filename?.endsWith('.ics'));
  return part?.content.toString('utf8');
}

/** Unfolded iCalendar lines (RFC 5545 section 3.1). */
export function icsLines(ics: string): string[] {
  return ics.replace(/\r?\n[ \t]/g, '').split(/\r?\n/);
}
