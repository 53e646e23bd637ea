/**
 * GET Appointment/[id]/$join (issue 12): the caller's link to the consultation room of an Appointment they take
 * part in. The room is the `addressUrl` of the Appointment's virtualService extension (src/workflows/scheduling/
 * booking.ts). With JITSI_APP_ID and JITSI_APP_SECRET (a self-hosted Jitsi Meet with JWT authentication, whose
 * bare room URLs admit nobody), the link carries a token signed for this participant and this room, valid from
 * 10 minutes before the start to the end (https://github.com/jitsi/lib-jitsi-meet/blob/master/doc/tokens.md):
 * HS256, `aud` "jitsi", `iss` the app id, `sub` the Jitsi host, `room`, `nbf`/`exp`, and `context.user`
 * (the participant's reference and display name; the practitioner is the moderator). Without them the link is
 * the room URL itself (public meet.jit.si rooms, found only by whoever reads the Appointment).
 * Who may: a participant of a live Appointment who may read it; anyone else gets what a missing id gets (404),
 * or 403 when they may read it but do not take part (an admin).
 */
import type { Appointment, Parameters } from '@medplum/fhirtypes';
import { SignJWT } from 'jose';
import { localReference } from '../../access/compartment';
import { findVisible, gate } from '../../access/visible';
import { reader, type FhirContext, type FhirRequest, type FhirResponse } from '../context';
import { conflict, forbidden, gone, notFound } from '../outcomes';
import { readCurrent } from '../../storage/repository';
import type { FhirOperation } from '.';

const VIRTUAL_SERVICE = 'http://hl7.org/fhir/5.0/StructureDefinition/extension-Appointment.virtualService';
/** The room opens this long before the start. */
export const EARLY_MS = 10 * 60_000;

export const joinOperation: FhirOperation = {
  name: 'join',
  definition: 'http://fhir.healthmed.com.br/OperationDefinition/Appointment-join',
  levels: ['instance'],
  resourceTypes: ['Appointment'],
  methods: ['GET'],
  parameters: [
    { name: 'url', use: 'out', min: 1, max: '1', type: 'url', documentation: "The caller's link to the consultation room" },
    { name: 'validFrom', use: 'out', min: 1, max: '1', type: 'instant', documentation: 'The link admits from this time (10 minutes before the start)' },
    { name: 'validUntil', use: 'out', min: 1, max: '1', type: 'instant', documentation: 'The link admits until the end of the consultation' },
  ],
  documentation: "A participant's link to the video room of a pending or booked Appointment, signed for them when the server has a Jitsi app secret.",
  run: (ctx, req, { id }) => join(ctx, req, id as string),
};

async function join(ctx: FhirContext, _req: FhirRequest, id: string): Promise<FhirResponse> {
  gate(ctx.access, 'read', 'Appointment');
  const q = reader(ctx);
  const found = await findVisible(ctx.access, q, 'read', 'Appointment', id, { fhirBaseUrl: ctx.settings.fhirBaseUrl });
  if (!found) throw notFound(`Appointment/${id} not found`);
  if (found.deleted) throw gone(`Appointment/${id} was deleted`);
  const appointment = found.resource as Appointment;
  const me = ctx.access.caller.fhirUser;
  const participant = (appointment.participant ?? []).find((p) => {
    const ref = localReference(p.actor?.reference, ctx.settings.fhirBaseUrl);
    return ref !== undefined && `${ref.type}/${ref.id}` === me;
  });
  if (!me || !participant) throw forbidden('Only a participant of the Appointment joins its consultation');
  if (appointment.status !== 'pending' && appointment.status !== 'booked') throw conflict(`Appointment/${id} is ${appointment.status}: its room is closed`);
  const room = appointment.extension
    ?.find((e) => e.url === VIRTUAL_SERVICE)
    ?.extension?.find((e) => e.url === 'addressUrl')?.valueUrl;
  if (!room || !appointment.start || !appointment.end) throw conflict(`Appointment/${id} has no video room`);
  const from = new Date(Date.parse(appointment.start) - EARLY_MS);
  const until = new Date(Date.parse(appointment.end));
  const video = ctx.settings.video;
  let url = room;
  if (video?.jitsiAppId && video.jitsiAppSecret) {
    const roomUrl = new URL(room);
    const name = await displayName(ctx, me);
    const token = await new SignJWT({
      room: decodeURIComponent(roomUrl.pathname.split('/').filter((s) => s !== '').pop() ?? ''),
      context: { user: { id: me, name, moderator: me.startsWith('Practitioner/') } },
    })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setAudience('jitsi')
      .setIssuer(video.jitsiAppId)
      .setSubject(roomUrl.host)
      .setNotBefore(Math.floor(from.getTime() / 1000))
      .setExpirationTime(Math.floor(until.getTime() / 1000))
      .sign(new TextEncoder().encode(video.jitsiAppSecret));
    roomUrl.searchParams.set('jwt', token);
    url = roomUrl.toString();
  }
  const body: Parameters = {
    resourceType: 'Parameters',
    parameter: [
      { name: 'url', valueUrl: url },
      { name: 'validFrom', valueInstant: from.toISOString() },
      { name: 'validUntil', valueInstant: until.toISOString() },
    ],
  };
  return { status: 200, body };
}

/** "Ana Souza" from the participant's own resource: what the room shows, nothing more. */
async function displayName(ctx: FhirContext, ref: string): Promise<string> {
  const [type, id] = ref.split('/');
  const stored = await readCurrent(reader(ctx), type, id);
  const name = (stored?.resource as { name?: { given?: string[]; family?: string; text?: string }[] } | undefined)?.name?.[0];
  return name?.text ?? ([...(name?.given ?? []), name?.family].filter(Boolean).join(' ') || (type === 'Practitioner' ? 'Médico' : 'Paciente'));
}
