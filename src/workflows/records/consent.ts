/**
 * The rules of a Consent (CONTRACT section 6, "Sharing"; https://hl7.org/fhir/R4/consent.html), run in the
 * transaction of every write of one (src/fhir/context.ts `Workflows`). Who may write a patient's Consent (the patient,
 * or an admin/system client; never a practitioner) is decided by access before this runs.
 *
 * The shape the server honours: `scope` patient-privacy, `category` LOINC 59284-0, `patient` a Patient here,
 * `policy` or `policyRule` (ppc-1), and a `provision` of type permit whose actors are IRCP Practitioners. Each
 * provision may state `period`, `dataPeriod`, `data` (instances of DocumentReference), `code` (DocumentReference
 * category codings), `actor`, and nested provisions (permit or deny). A nested provision applies within the one around
 * it: its criteria narrow those of its parent, and the most specific provision that matches a document decides
 * (on a tie, deny). Criteria the server cannot evaluate (securityLabel, purpose, another class or action) are 422
 * not-supported rather than ignored: a provision must never open more than it says.
 *
 * While the Consent is `active`, its provisions are rows of consent_grant (migrations/0011_consent.sql), replaced on
 * every write in the same transaction; any other status, or a delete, leaves none (revocation is immediate).
 */
import type { CodeableConcept, Coding, Consent, ConsentProvision, Period } from '@medplum/fhirtypes';
import type { TypeHook } from '..';
import { localReference } from '../../access/compartment';
import { categoryKey } from '../../access/consent';
import type { FhirContext, WriteEvent } from '../../fhir/context';
import { badRequest, OperationOutcomeError, outcome, unprocessable } from '../../fhir/outcomes';
import type { Queryable } from '../../storage/database';
import { dateRange } from '../../storage/values';

const CONSENT_SCOPE = 'http://terminology.hl7.org/CodeSystem/consentscope';
const LOINC = 'http://loinc.org';
const PRIVACY_CONSENT = '59284-0';
const PARTICIPATION_TYPE = 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType';
const CONSENT_ACTION = 'http://terminology.hl7.org/CodeSystem/consentaction';
const RESOURCE_TYPES = 'http://hl7.org/fhir/resource-types';

/** Provisions in one Consent and how deep they nest, at most (each is a row per actor in consent_grant). */
const MAX_PROVISIONS = 100;
const MAX_DEPTH = 8;

const notSupported = (diagnostics: string, expression: string) => new OperationOutcomeError(422, outcome('error', 'not-supported', diagnostics, expression));

/** A row of consent_grant, as the workflow writes it. */
export interface GrantRecord {
  consent_id: string;
  node: number;
  depth: number;
  permit: boolean;
  patient_id: string;
  practitioner_id: string;
  period_start: string;
  period_end: string;
  data_start: string | null;
  data_end: string | null;
  documents: string[] | null;
  categories: string[][] | null;
}

export const consentHook: TypeHook = {
  async beforeWrite(ctx: FhirContext, _q: Queryable, event: WriteEvent): Promise<void> {
    // Refused before anything is written, with the reason.
    if (event.next) grantRows(event.id, event.next as Consent, ctx.settings.fhirBaseUrl);
  },
  async afterWrite(ctx: FhirContext, q: Queryable, event: WriteEvent): Promise<void> {
    await q.query('DELETE FROM consent_grant WHERE consent_id = $1', [event.id]);
    const next = event.next as Consent | undefined;
    if (!next || next.status !== 'active') return;
    const rows = grantRows(event.id, next, ctx.settings.fhirBaseUrl);
    if (rows.length === 0) return;
    await q.query(
      `INSERT INTO consent_grant (consent_id, node, depth, permit, patient_id, practitioner_id, period_start, period_end,
         data_start, data_end, documents, categories)
       SELECT consent_id, node, depth, permit, patient_id, practitioner_id, period_start, period_end, data_start, data_end,
         documents, categories
         FROM jsonb_to_recordset($1::jsonb) AS x(consent_id text, node integer, depth integer, permit boolean, patient_id text,
           practitioner_id text, period_start timestamptz, period_end timestamptz, data_start timestamptz, data_end timestamptz,
           documents text[], categories jsonb)`,
      [JSON.stringify(rows)],
    );
  },
};

/** A provision with its criteria intersected with those around it. */
interface Scope {
  permit: boolean;
  practitioners: string[];
  /** Milliseconds since the epoch, [start, end); ±Infinity when open. */
  start: number;
  end: number;
  data?: { start: number; end: number };
  documents?: string[];
  categories: string[][];
}

const ts = (ms: number) => (ms === -Infinity ? '-infinity' : ms === Infinity ? 'infinity' : new Date(ms).toISOString());

/** Validates the Consent (400/422) and flattens its provisions into consent_grant rows. */
export function grantRows(id: string, consent: Consent, fhirBaseUrl: string): GrantRecord[] {
  checkHeader(consent, fhirBaseUrl);
  const patient = localReference(consent.patient?.reference, fhirBaseUrl)!.id;
  if (!consent.provision) throw unprocessable('A Consent that shares records needs a provision (type permit, naming whom it opens to)', 'Consent.provision');
  const rows: GrantRecord[] = [];
  let count = 0;
  const walk = (p: ConsentProvision, at: string, depth: number, parent: Scope | undefined): void => {
    if (++count > MAX_PROVISIONS) throw unprocessable(`A Consent holds at most ${MAX_PROVISIONS} provisions`, 'Consent.provision');
    if (depth >= MAX_DEPTH) throw unprocessable(`Provisions nest at most ${MAX_DEPTH} deep`, at);
    const scope = narrow(p, at, parent, fhirBaseUrl);
    const node = count - 1;
    const open = scope.start < scope.end && (!scope.data || scope.data.start < scope.data.end) && (!scope.documents || scope.documents.length > 0);
    if (open) {
      for (const practitioner of scope.practitioners) {
        rows.push({
          consent_id: id,
          node,
          depth,
          permit: scope.permit,
          patient_id: patient,
          practitioner_id: practitioner,
          period_start: ts(scope.start),
          period_end: ts(scope.end),
          data_start: scope.data ? ts(scope.data.start) : null,
          data_end: scope.data ? ts(scope.data.end) : null,
          documents: scope.documents ?? null,
          categories: scope.categories.length > 0 ? scope.categories : null,
        });
      }
    }
    (p.provision ?? []).forEach((child, i) => walk(child, `${at}.provision[${i}]`, depth + 1, scope));
  };
  walk(consent.provision, 'Consent.provision', 0, undefined);
  return rows;
}

const hasCoding = (concepts: CodeableConcept[] | undefined, system: string, code: string) =>
  (concepts ?? []).some((c) => (c.coding ?? []).some((x) => x.system === system && x.code === code));

function checkHeader(consent: Consent, fhirBaseUrl: string): void {
  if (!hasCoding(consent.scope ? [consent.scope] : [], CONSENT_SCOPE, 'patient-privacy')) {
    throw unprocessable(`Consent.scope must be patient-privacy (${CONSENT_SCOPE}): this server keeps Consents that share records`, 'Consent.scope');
  }
  if (!hasCoding(consent.category, LOINC, PRIVACY_CONSENT)) {
    throw unprocessable(`Consent.category must include LOINC ${PRIVACY_CONSENT} (patient consent)`, 'Consent.category');
  }
  const patient = localReference(consent.patient?.reference, fhirBaseUrl);
  if (patient?.type !== 'Patient') throw unprocessable('Consent.patient must refer to a Patient on this server', 'Consent.patient');
  // ppc-1: either a Policy or PolicyRule (https://hl7.org/fhir/R4/consent.html#invs)
  if (!consent.policyRule && (consent.policy ?? []).length === 0) {
    throw unprocessable('A Consent needs a policy or a policyRule (ppc-1), e.g. policyRule v3-ActCode OPTIN', 'Consent.policyRule');
  }
}

/** A period as [start, end) in milliseconds at its precision (open sides infinite); 400 for a value that is no date. */
function range(period: Period | undefined, at: string): { start: number; end: number } | undefined {
  if (!period) return undefined;
  const side = (v: string | undefined, i: 0 | 1, name: string): number => {
    if (v === undefined) return i === 0 ? -Infinity : Infinity;
    const r = dateRange(v);
    if (!r) throw badRequest(`${at}.${name} is not a FHIR dateTime: ${String(v).slice(0, 40)}`, `${at}.${name}`);
    return Date.parse(r[i]);
  };
  const start = side(period.start, 0, 'start');
  const end = side(period.end, 1, 'end');
  // The end is inclusive at its precision: a period from 10:00:05 to 10:00:05 is that second; an end before the start is no period.
  if (end <= start) throw unprocessable(`${at} ends (${period.end}) before it starts (${period.start})`, at);
  return { start, end };
}

/** The provision's own criteria, checked, intersected with its parent's. */
function narrow(p: ConsentProvision, at: string, parent: Scope | undefined, fhirBaseUrl: string): Scope {
  if (p.type !== undefined && p.type !== 'permit' && p.type !== 'deny') throw badRequest(`${at}.type must be permit or deny`, `${at}.type`);
  if (!parent && p.type !== 'permit') {
    throw unprocessable('The outermost provision must be a permit (nested provisions may deny within it)', `${at}.type`);
  }
  if ((p.securityLabel ?? []).length > 0) throw notSupported(`${at}.securityLabel is not supported: documents are shared by instance or category`, `${at}.securityLabel`);
  if ((p.purpose ?? []).length > 0) throw notSupported(`${at}.purpose is not supported: the server cannot tell a request's purpose of use`, `${at}.purpose`);
  (p.action ?? []).forEach((a, i) => {
    if (!(a.coding ?? []).some((c) => c.system === CONSENT_ACTION && c.code === 'access')) {
      throw notSupported(`${at}.action[${i}]: only access (${CONSENT_ACTION}) is supported: a Consent lets practitioners read documents`, `${at}.action[${i}]`);
    }
  });
  (p.class ?? []).forEach((c: Coding, i) => {
    if (c.system !== RESOURCE_TYPES || c.code !== 'DocumentReference') {
      throw notSupported(`${at}.class[${i}]: only DocumentReference (${RESOURCE_TYPES}) is shared by Consent`, `${at}.class[${i}]`);
    }
  });

  const permit = (p.type ?? (parent?.permit ? 'permit' : 'deny')) === 'permit';
  const own = actors(p, at, fhirBaseUrl);
  let practitioners = parent?.practitioners ?? [];
  if (own) {
    if (parent) {
      const outside = own.find((x) => !parent.practitioners.includes(x));
      if (outside) throw unprocessable(`${at}.actor names Practitioner/${outside}, whom the enclosing provision does not: a nested provision applies within it`, `${at}.actor`);
    }
    practitioners = own;
  }
  if (permit && practitioners.length === 0) {
    throw unprocessable(`${at} permits without an actor: name the Practitioner it opens to (role IRCP, ${PARTICIPATION_TYPE})`, `${at}.actor`);
  }

  const period = range(p.period, `${at}.period`);
  const dataPeriod = range(p.dataPeriod, `${at}.dataPeriod`);
  const documents = dataRefs(p, at, fhirBaseUrl);
  const codes = categoryCodes(p, at);
  return {
    permit,
    practitioners,
    start: Math.max(parent?.start ?? -Infinity, period?.start ?? -Infinity),
    end: Math.min(parent?.end ?? Infinity, period?.end ?? Infinity),
    data: intersect(parent?.data, dataPeriod),
    documents: documents && parent?.documents ? documents.filter((d) => parent.documents!.includes(d)) : (documents ?? parent?.documents),
    categories: [...(parent?.categories ?? []), ...(codes ? [codes] : [])],
  };
}

function intersect(a: { start: number; end: number } | undefined, b: { start: number; end: number } | undefined) {
  if (!a || !b) return a ?? b;
  return { start: Math.max(a.start, b.start), end: Math.min(a.end, b.end) };
}

/** Practitioner ids of the provision's actors (undefined: it names none); each must be an IRCP Practitioner here. */
function actors(p: ConsentProvision, at: string, fhirBaseUrl: string): string[] | undefined {
  if (!p.actor || p.actor.length === 0) return undefined;
  return [
    ...new Set(
      p.actor.map((a, i) => {
        const where = `${at}.actor[${i}]`;
        if (!(a.role?.coding ?? []).some((c) => c.system === PARTICIPATION_TYPE && c.code === 'IRCP')) {
          throw notSupported(`${where}.role must be IRCP (${PARTICIPATION_TYPE}): the practitioner who receives the records`, `${where}.role`);
        }
        const target = localReference(a.reference?.reference, fhirBaseUrl);
        if (target?.type !== 'Practitioner') throw unprocessable(`${where}.reference must refer to a Practitioner on this server`, `${where}.reference`);
        return target.id;
      }),
    ),
  ];
}

/** Ids of the DocumentReferences the provision names (undefined: it names none). */
function dataRefs(p: ConsentProvision, at: string, fhirBaseUrl: string): string[] | undefined {
  if (!p.data || p.data.length === 0) return undefined;
  return [
    ...new Set(
      p.data.map((d, i) => {
        const where = `${at}.data[${i}]`;
        if (d.meaning !== 'instance') throw notSupported(`${where}.meaning ${d.meaning}: only instance is supported (name each DocumentReference)`, `${where}.meaning`);
        const target = localReference(d.reference?.reference, fhirBaseUrl);
        if (target?.type !== 'DocumentReference') throw unprocessable(`${where}.reference must refer to a DocumentReference on this server`, `${where}.reference`);
        return target.id;
      }),
    ),
  ];
}

/** The provision's codes as category keys (undefined: it states none); each coding needs a system and a code. */
function categoryCodes(p: ConsentProvision, at: string): string[] | undefined {
  if (!p.code || p.code.length === 0) return undefined;
  const keys: string[] = [];
  p.code.forEach((cc, i) => {
    const codings = cc.coding ?? [];
    if (codings.length === 0) throw unprocessable(`${at}.code[${i}] needs a coding (a DocumentReference category, system and code)`, `${at}.code[${i}]`);
    codings.forEach((c, j) => {
      if (!c.system || !c.code) throw unprocessable(`${at}.code[${i}].coding[${j}] needs both system and code`, `${at}.code[${i}].coding[${j}]`);
      keys.push(categoryKey(c.system, c.code));
    });
  });
  return [...new Set(keys)];
}
