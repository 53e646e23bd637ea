/**
 * Who an Appointment's notices go to, and where: each Patient and Practitioner participant (a PractitionerRole
 * stands for its practitioner), with the e-mail address of their account (`auth_users.email`, the one they sign in
 * with), else the first current `telecom` of system `email` on their resource, else none (they are skipped).
 * Read with system access: the worker acts for the server, not for a caller.
 */
import type { Appointment, ContactPoint, HumanName, Patient, Practitioner, PractitionerRole } from '@medplum/fhirtypes';
import type { Queryable } from '../../storage/database';
import { readCurrent } from '../../storage/repository';

export interface Recipient {
  /** "Patient/<id>" or "Practitioner/<id>". */
  reference: string;
  role: 'patient' | 'practitioner';
  /** Absent when neither the account nor the resource has one. */
  email?: string;
  /** A display name (participant display, else the resource's name); never anything clinical. */
  name?: string;
}

function localReference(reference: string | undefined): { type: string; id: string } | undefined {
  const m = /^(Patient|Practitioner|PractitionerRole)\/([A-Za-z0-9\-.]{1,64})$/.exec(reference ?? '');
  return m ? { type: m[1], id: m[2] } : undefined;
}

/** "Ana Souza": the official (else first) name's text, or its given names and family. */
export function displayName(names: HumanName[] | undefined): string | undefined {
  const name = names?.find((n) => n.use === 'official') ?? names?.find((n) => n.use !== 'old') ?? names?.[0];
  if (!name) return undefined;
  const text = name.text?.trim() || [...(name.given ?? []), name.family].filter((p) => p && p.trim()).join(' ').trim();
  return text || undefined;
}

function emailOf(telecom: ContactPoint[] | undefined): string | undefined {
  const now = Date.now();
  const current = (telecom ?? []).filter(
    (t) => t.system === 'email' && typeof t.value === 'string' && /^[^\s@]+@[^\s@]+$/.test(t.value.trim()) && t.use !== 'old' && !(t.period?.end && Date.parse(t.period.end) < now),
  );
  current.sort((a, b) => (a.rank ?? Number.MAX_SAFE_INTEGER) - (b.rank ?? Number.MAX_SAFE_INTEGER));
  return current[0]?.value?.trim();
}

/** Every Patient and Practitioner taking part in the Appointment, each once, with an address when one is known. */
export async function recipientsOf(q: Queryable, appointment: Appointment): Promise<Recipient[]> {
  const seen = new Map<string, { role: Recipient['role']; display?: string }>();
  for (const participant of appointment.participant ?? []) {
    const ref = localReference(participant.actor?.reference);
    if (!ref) continue;
    let reference = `${ref.type}/${ref.id}`;
    if (ref.type === 'PractitionerRole') {
      const role = (await readCurrent(q, 'PractitionerRole', ref.id))?.resource as PractitionerRole | undefined;
      const practitioner = localReference(role?.practitioner?.reference);
      if (practitioner?.type !== 'Practitioner') continue;
      reference = `Practitioner/${practitioner.id}`;
    }
    if (!seen.has(reference)) {
      seen.set(reference, { role: reference.startsWith('Patient/') ? 'patient' : 'practitioner', display: ref.type === 'PractitionerRole' ? undefined : participant.actor?.display });
    }
  }
  if (seen.size === 0) return [];
  // One statement: each participant's current resource and account e-mail.
  const refs = [...seen.keys()];
  const rows = await q.query<{ ref: string; content: Patient | Practitioner | string | null; email: string | null }>(
    `SELECT t.ref, r.content, u.email
       FROM unnest($1::text[]) AS t(ref)
       LEFT JOIN resources r ON r.resource_type = split_part(t.ref, '/', 1) AND r.id = split_part(t.ref, '/', 2) AND NOT r.deleted
       LEFT JOIN auth_users u ON u.fhir_user = t.ref`,
    [refs],
    'appointment_recipients',
  );
  const found = new Map(rows.rows.map((r) => [r.ref, { resource: (typeof r.content === 'string' ? JSON.parse(r.content) : r.content) as Patient | Practitioner | null, email: r.email }]));
  const out: Recipient[] = [];
  for (const [reference, { role, display }] of seen) {
    const row = found.get(reference);
    const resource = row?.resource ?? undefined;
    out.push({
      reference,
      role,
      email: row?.email ?? emailOf(resource?.telecom),
      name: display?.trim() || displayName(resource?.name),
    });
  }
  return out;
}
