/**
 * The iCalendar invitation each notice carries (RFC 5545, scheduled per iTIP RFC 5546), made with ical-generator:
 * UID is the Appointment id, so every notice about one Appointment updates the same calendar entry; SEQUENCE is
 * its version, so a later notice supersedes an earlier one; times are UTC. METHOD:REQUEST adds or updates the
 * entry, METHOD:CANCEL (with STATUS:CANCELLED) removes it. Like the mail, it holds no clinical data: a title,
 * the times, the app's link, the organizer (the server's sender address) and the recipient as attendee.
 */
import ical, { ICalAttendeeRole, ICalAttendeeStatus, ICalCalendarMethod, ICalEventStatus } from 'ical-generator';

export interface CalendarEvent {
  method: 'REQUEST' | 'CANCEL';
  appointmentId: string;
  /** The Appointment's version (meta.versionId). */
  sequence: number;
  start: Date;
  end: Date;
  summary: string;
  description: string;
  url: string;
  /** Pending (tentative) or booked (confirmed); ignored when cancelling. */
  confirmed: boolean;
  organizer: { name: string; email: string };
  attendee: { email: string; name?: string; accepted: boolean };
}

export function invitation(e: CalendarEvent): string {
  const calendar = ical({
    prodId: { company: 'Health&Med', product: 'FHIR server', language: 'PT-BR' },
    method: e.method === 'CANCEL' ? ICalCalendarMethod.CANCEL : ICalCalendarMethod.REQUEST,
  });
  calendar.createEvent({
    id: e.appointmentId,
    sequence: e.sequence,
    start: e.start,
    end: e.end,
    summary: e.summary,
    description: e.description,
    url: e.url,
    status: e.method === 'CANCEL' ? ICalEventStatus.CANCELLED : e.confirmed ? ICalEventStatus.CONFIRMED : ICalEventStatus.TENTATIVE,
    organizer: e.organizer,
    attendees: [
      {
        email: e.attendee.email,
        name: e.attendee.name,
        role: ICalAttendeeRole.REQ,
        status: e.attendee.accepted ? ICalAttendeeStatus.ACCEPTED : ICalAttendeeStatus.NEEDSACTION,
      },
    ],
  });
  return calendar.toString();
}
