/**
 * The mail seam: password resets, and the scheduling notices the outbox delivers (src/workflows/notifications/,
 * CONTRACT section 5). With SMTP_URL set, messages go out through nodemailer; without it they are logged, as far
 * as that is safe: a log line says that a message was sent (its kind) and a hash of the recipient, never the
 * address, subject details, body or invitation (they may hold PHI or a reset link).
 */
import nodemailer from 'nodemailer';
import { logger } from '../logger';
import { logTag } from './secrets';

export interface MailMessage {
  to: string;
  subject: string;
  text: string;
  /** A short, PHI-free label for logs and metrics, e.g. "password-reset". */
  kind: string;
  /**
   * An iCalendar invitation (RFC 5545 text; RFC 6047): sent as a `text/calendar; method=...` alternative and as an
   * `.ics` attachment (nodemailer's icalEvent), which calendar-aware clients offer to add, update or remove.
   */
  icalEvent?: { method: 'REQUEST' | 'CANCEL' | 'PUBLISH'; content: string; filename?: string };
  attachments?: { filename: string; content: string | Buffer; contentType?: string }[];
}

export interface Mailer {
  send(message: MailMessage): Promise<void>;
}

export function createMailer(smtpUrl: string | undefined, from: string): Mailer {
  if (!smtpUrl) {
    return {
      async send(message) {
        logger.info({ mail: message.kind, to: logTag(message.to) }, 'mail not sent (no SMTP_URL configured)');
      },
    };
  }
  // Bounded waits (nodemailer's defaults: 2 min to connect, 10 min of silence): a stalled SMTP server fails the
  // delivery in about a minute, and the outbox retries it later.
  const transport = nodemailer.createTransport({ url: smtpUrl, connectionTimeout: 30_000, greetingTimeout: 30_000, socketTimeout: 60_000 });
  return {
    async send(message) {
      await transport.sendMail({
        from,
        to: message.to,
        subject: message.subject,
        text: message.text,
        icalEvent: message.icalEvent,
        attachments: message.attachments,
      });
      logger.info({ mail: message.kind, to: logTag(message.to) }, 'mail sent');
    },
  };
}
