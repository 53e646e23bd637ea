/**
 * E-mail notices of the scheduling workflow (CONTRACT section 5, issue 12 "Everyone is told"), delivered by the
 * outbox worker (src/workflows/outbox/worker.ts). The booking workflow writes, in the transaction of the change:
 *
 * | kind                          | payload                                              | to                                  |
 * | ----------------------------- | ---------------------------------------------------- | ----------------------------------- |
 * | `mail.booking-requested`      | `{ appointment }`                                    | the practitioner(s)                 |
 * | `mail.booking-answered`       | `{ appointment, answer?: "accepted" \| "declined" }` | the patient(s)                      |
 * | `mail.appointment-cancelled`  | `{ appointment, by?: "Patient/<id>" \| ... }`        | every participant but `by`          |
 * | `mail.reminder` (due 24 h before the start) | `{ appointment }`                      | the patient(s) and practitioner(s)  |
 *
 * `appointment` is the Appointment id. Every kind also takes `to: "Patient/<id>" | "Practitioner/<id>"`, which
 * narrows it to that one participant. A notice for several recipients is split into one row per recipient (same
 * kind, with `to`), so a retry never sends twice to those already reached.
 *
 * At delivery the handler reads the Appointment as it is now: `booking-requested` goes out only while it is still
 * `pending` (the doctor may have answered already), `reminder` only while it is `pending` or `booked`,
 * `appointment-cancelled` only when it is `cancelled`. Without `answer`, `booking-answered` takes the
 * practitioner participant's status. A deleted Appointment, or one without start, is skipped. Each message
 * carries an iCalendar invitation (calendar.ts); the texts (messages.ts) hold no clinical data.
 */
import type { Appointment } from '@medplum/fhirtypes';
import type { Mailer } from '../../auth/mail';
import { logTag } from '../../auth/secrets';
import { logger } from '../../logger';
import type { Database } from '../../storage/database';
import { readCurrent } from '../../storage/repository';
import { enqueue } from '../outbox/enqueue';
import { DeliveryError, type OutboxHandler, type OutboxHandlers, type OutboxJob } from '../outbox/worker';
import { invitation } from './calendar';
import { noticeText, type NoticeKind } from './messages';
import { recipientsOf, type Recipient } from './recipients';

export const NOTIFICATION_KINDS = ['mail.booking-requested', 'mail.booking-answered', 'mail.appointment-cancelled', 'mail.reminder'] as const;
export type NotificationKind = (typeof NOTIFICATION_KINDS)[number];

export interface NotificationSettings {
  db: Database;
  mailer: Mailer;
  /** The link every message gives (the app's address). */
  appUrl: string;
  /** MAIL_FROM, e.g. `Health&Med <no-reply@healthmed.com.br>`: the calendar entry's organizer. */
  mailFrom: string;
}

const DEFAULT_MINUTES = 50;
const REFERENCE = /^(Patient|Practitioner)\/[A-Za-z0-9\-.]{1,64}$/;

function organizerOf(mailFrom: string): { name: string; email: string } {
  const m = /^\s*"?([^"<]*?)"?\s*<([^>]+)>\s*$/.exec(mailFrom);
  return m ? { name: m[1].trim() || 'Health&Med', email: m[2].trim() } : { name: 'Health&Med', email: mailFrom.trim() };
}

function timesOf(a: Appointment): { start: Date; end: Date } | undefined {
  const start = a.start ? new Date(a.start) : undefined;
  if (!start || Number.isNaN(start.getTime())) return undefined;
  const end = a.end ? new Date(a.end) : new Date(start.getTime() + (a.minutesDuration ?? DEFAULT_MINUTES) * 60_000);
  return { start, end: Number.isNaN(end.getTime()) ? new Date(start.getTime() + DEFAULT_MINUTES * 60_000) : end };
}

/** What the doctor answered: the payload says, else the practitioner participant's status now. */
function answerOf(payload: Record<string, unknown>, a: Appointment): 'accepted' | 'declined' {
  if (payload.answer === 'accepted' || payload.answer === 'declined') return payload.answer;
  const statuses = (a.participant ?? []).filter((p) => /^Practitioner(Role)?\//.test(p.actor?.reference ?? '')).map((p) => p.status);
  if (statuses.includes('declined')) return 'declined';
  if (statuses.includes('accepted')) return 'accepted';
  return a.status === 'booked' ? 'accepted' : 'declined';
}

/** Whether the notice still makes sense for the Appointment as it is now. */
function stillRelevant(kind: NotificationKind, a: Appointment): boolean {
  switch (kind) {
    case 'mail.booking-requested':
      return a.status === 'pending';
    case 'mail.reminder':
      return a.status === 'pending' || a.status === 'booked';
    case 'mail.appointment-cancelled':
      return a.status === 'cancelled';
    case 'mail.booking-answered':
      return true;
  }
}

function audience(kind: NotificationKind, everyone: Recipient[], payload: Record<string, unknown>): Recipient[] {
  switch (kind) {
    case 'mail.booking-requested':
      return everyone.filter((r) => r.role === 'practitioner');
    case 'mail.booking-answered':
      return everyone.filter((r) => r.role === 'patient');
    case 'mail.appointment-cancelled':
      return everyone.filter((r) => r.reference !== payload.by);
    case 'mail.reminder':
      return everyone;
  }
}

/** SMTP answers: 5xx is permanent (the server will refuse the same message again), 4xx transient (RFC 5321 section 4.2.1). */
function mailFailure(err: unknown): unknown {
  const code = (err as { responseCode?: unknown })?.responseCode;
  if (typeof code === 'number' && code >= 400) return new DeliveryError(`SMTP server answered ${code}`, { permanent: code >= 500, cause: err });
  return err;
}

export function notificationHandlers(settings: NotificationSettings): OutboxHandlers {
  const { db, mailer } = settings;
  const organizer = organizerOf(settings.mailFrom);

  const handler =
    (kind: NotificationKind): OutboxHandler =>
    async (payload: Record<string, unknown>, job: OutboxJob) => {
      const id = payload.appointment;
      if (typeof id !== 'string' || !/^[A-Za-z0-9\-.]{1,64}$/.test(id)) throw new DeliveryError(`${kind}: the payload names no Appointment id`, { permanent: true });
      const to = payload.to;
      if (to !== undefined && (typeof to !== 'string' || !REFERENCE.test(to))) throw new DeliveryError(`${kind}: "to" is not a Patient or Practitioner reference`, { permanent: true });
      const skip = (why: string) => logger.info({ outbox: job.id, kind, appointment: id }, `notice skipped: ${why}`);

      const current = await readCurrent(db, 'Appointment', id);
      const appointment = current && !current.deleted ? (current.resource as Appointment | undefined) : undefined;
      if (!current || !appointment) return skip('the Appointment no longer exists');
      if (!stillRelevant(kind, appointment)) return skip(`the Appointment is ${appointment.status}`);
      const times = timesOf(appointment);
      if (!times) return skip('the Appointment has no start');

      const everyone = await recipientsOf(db, appointment);
      let targets = audience(kind, everyone, payload);
      if (to !== undefined) targets = targets.filter((r) => r.reference === to);
      for (const r of targets.filter((t) => !t.email)) logger.info({ outbox: job.id, kind, recipient: logTag(r.reference) }, 'notice skipped for a participant without an e-mail address');
      targets = targets.filter((t) => t.email);
      if (targets.length === 0) return;
      if (targets.length > 1) {
        // One row per recipient: each is retried on its own.
        await db.transaction((tx) => enqueue(tx, targets.map((r) => ({ kind, payload: { ...payload, to: r.reference } }))));
        return;
      }

      const recipient = targets[0];
      const answer = kind === 'mail.booking-answered' ? answerOf(payload, appointment) : undefined;
      const notice: NoticeKind =
        kind === 'mail.booking-answered' ? (answer === 'accepted' ? 'booking-accepted' : 'booking-declined') : (kind.slice('mail.'.length) as NoticeKind);
      const others = everyone.filter((r) => r.reference !== recipient.reference && r.role !== recipient.role).map((r) => r.name ?? '');
      const text = noticeText({ kind: notice, recipientName: recipient.name, recipientRole: recipient.role, others, start: times.start, appUrl: settings.appUrl });
      const cancel = notice === 'appointment-cancelled' || notice === 'booking-declined';
      const participant = (appointment.participant ?? []).find((p) => p.actor?.reference === recipient.reference);
      const ics = invitation({
        method: cancel ? 'CANCEL' : 'REQUEST',
        appointmentId: id,
        sequence: current.versionId,
        start: times.start,
        end: times.end,
        summary: text.summary,
        description: `Entre pelo aplicativo Health&Med: ${settings.appUrl}`,
        url: settings.appUrl,
        confirmed: appointment.status === 'booked',
        organizer,
        attendee: { email: recipient.email!, name: recipient.name, accepted: participant?.status === 'accepted' },
      });
      try {
        await mailer.send({
          to: recipient.email!,
          subject: text.subject,
          text: text.text,
          kind,
          icalEvent: { method: cancel ? 'CANCEL' : 'REQUEST', content: ics, filename: 'teleconsulta.ics' },
        });
      } catch (err) {
        throw mailFailure(err);
      }
    };

  return Object.fromEntries(NOTIFICATION_KINDS.map((kind) => [kind, handler(kind)]));
}
