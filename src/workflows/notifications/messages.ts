/**
 * The texts of the scheduling notices, in Portuguese (pt-BR). They say who and when, never why: no reason text,
 * no specialty, service type or code (they could tell a condition), only the participants' display names, the
 * time in Brasília time (America/Sao_Paulo) and the app's link.
 */

export type NoticeKind = 'booking-requested' | 'booking-accepted' | 'booking-declined' | 'appointment-cancelled' | 'reminder';

export interface NoticeText {
  subject: string;
  text: string;
  /** The calendar entry's title. */
  summary: string;
}

const TIME_ZONE = 'America/Sao_Paulo';
const long = new Intl.DateTimeFormat('pt-BR', {
  timeZone: TIME_ZONE,
  weekday: 'long',
  day: 'numeric',
  month: 'long',
  year: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
});
const short = new Intl.DateTimeFormat('pt-BR', { timeZone: TIME_ZONE, day: '2-digit', month: '2-digit', hour: '2-digit', minute: '2-digit' });

/** "sábado, 10 de outubro de 2026 às 14:00 (horário de Brasília)". */
export function whenText(start: Date): string {
  return `${long.format(start)} (horário de Brasília)`;
}

/** "10/10 14:00": for subjects. */
export function shortWhen(start: Date): string {
  return short.format(start).replace(',', '');
}

function names(list: string[], fallback: string): string {
  const known = list.filter((n) => n !== '');
  if (known.length === 0) return fallback;
  return known.length === 1 ? known[0] : `${known.slice(0, -1).join(', ')} e ${known[known.length - 1]}`;
}

export interface NoticeInput {
  kind: NoticeKind;
  /** The recipient's display name, if known. */
  recipientName?: string;
  recipientRole: 'patient' | 'practitioner';
  /** The other participants' display names. */
  others: string[];
  start: Date;
  appUrl: string;
}

const capitalized = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

const FOOTER = '\n\nEsta é uma mensagem automática da Health&Med; não é preciso respondê-la.\n';

export function noticeText(n: NoticeInput): NoticeText {
  const hello = n.recipientName ? `Olá, ${n.recipientName}.` : 'Olá.';
  const when = whenText(n.start);
  const other = names(n.others, n.recipientRole === 'patient' ? 'o profissional de saúde' : 'o paciente');
  const summary = `Teleconsulta Health&Med com ${other}`;
  switch (n.kind) {
    case 'booking-requested':
      return {
        subject: 'Nova solicitação de teleconsulta',
        text: `${hello}\n\n${names(n.others, 'Um paciente')} solicitou uma teleconsulta com você para ${when}.\n\nAbra o aplicativo Health&Med para aceitar ou recusar a solicitação:\n${n.appUrl}${FOOTER}`,
        summary,
      };
    case 'booking-accepted':
      return {
        subject: 'Teleconsulta confirmada',
        text: `${hello}\n\n${capitalized(other)} confirmou a sua teleconsulta de ${when}.\n\nNo horário marcado, entre pelo aplicativo Health&Med:\n${n.appUrl}${FOOTER}`,
        summary,
      };
    case 'booking-declined':
      return {
        subject: 'Teleconsulta não confirmada',
        text: `${hello}\n\n${capitalized(other)} não pôde confirmar a teleconsulta solicitada para ${when}. O horário foi liberado.\n\nVocê pode escolher outro horário no aplicativo Health&Med:\n${n.appUrl}${FOOTER}`,
        summary,
      };
    case 'appointment-cancelled':
      return {
        subject: 'Teleconsulta cancelada',
        text: `${hello}\n\nA teleconsulta de ${when} com ${other} foi cancelada.\n\nDetalhes no aplicativo Health&Med:\n${n.appUrl}${FOOTER}`,
        summary,
      };
    case 'reminder':
      return {
        subject: `Lembrete: teleconsulta em ${shortWhen(n.start)}`,
        text: `${hello}\n\nLembrete: a sua teleconsulta com ${other} está marcada para ${when}.\n\nNo horário marcado, entre pelo aplicativo Health&Med:\n${n.appUrl}${FOOTER}`,
        summary,
      };
  }
}
