/**
 * The mail seam: password resets here, booking notices elsewhere (CONTRACT section 5). With SMTP_URL set,
 * messages go out through nodemailer; without it they are logged, as far as that is safe: a log line says
 * that a message was sent and a hash of the recipient, never the address, subject details or body (they may
 * hold PHI or a reset link).
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
  const transport = nodemailer.createTransport(smtpUrl);
  return {
    async send(message) {
      await transport.sendMail({ from, to: message.to, subject: message.subject, text: message.text });
      logger.info({ mail: message.kind, to: logTag(message.to) }, 'mail sent');
    },
  };
}
