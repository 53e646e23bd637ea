/**
 * The decision point for a practitioner reaching a patient's records (CONTRACT section 6, "Sharing"): a
 * practitioner sees a patient's DocumentReference and its Binary only while an active Consent whose
 * provision permits them (actor IRCP = Practitioner/<id>, period covering now, data naming the document or
 * provision.code naming its category, dataPeriod covering its date, no deeper deny) exists, or when they authored it.
 * https://hl7.org/fhir/R4/consent.html#provision
 *
 * What each active Consent opens is kept in consent_grant (migrations/0011_consent.sql) by the Consent workflow
 * (src/workflows/records/consent.ts), in the transaction of the Consent's write. The decision has two forms that
 * agree: for searches and every lookup by id, the SQL condition `{ kind: 'consent' }` (src/storage/searchSql.ts)
 * joins consent_grant to the document's index rows; for one resource already in hand, `allows` evaluates the same
 * rows, read once when the request's access is built. Both use the database's clock at that moment (`at`), so
 * every statement of a request (page, _total, _include) decides at the same instant, and nothing is kept beyond
 * the request: expiry is exact and a revocation holds for the next request on every server.
 */
import type { DocumentReference, Reference, Resource } from '@medplum/fhirtypes';
import type { Queryable } from '../storage/database';
import type { Condition } from '../storage/search';
import { dateRange, indexKey } from '../storage/values';
import { localReference } from './compartment';
import type { Interaction } from './context';

export interface ConsentDecision {
  /**
   * Whether the practitioner may perform the interaction on this record of a patient. Without a resource:
   * whether any record of the type could be reached (the type-level gate before a search or a read).
   */
  allows(interaction: Interaction, resourceType: string, resource?: Resource): boolean;
  /**
   * The SQL form of the same decision for searches: a condition every row reachable through consent meets
   * (e.g. `{ kind: 'id', ids: [...] }` of the consented documents); undefined = no row.
   */
  searchCondition(resourceType: string): Condition | undefined;
}

/** No consent is honoured: every patient record stays closed (callers that are not practitioners, or have no id). */
export const noConsent: ConsentDecision = {
  allows: () => false,
  searchCondition: () => undefined,
};

/** One row of consent_grant: a provision of an active Consent, for one practitioner it names. */
export interface ConsentGrant {
  consentId: string;
  node: number;
  depth: number;
  permit: boolean;
  patientId: string;
  practitionerId: string;
  /** [start, end) ISO instants; undefined = open. */
  periodStart?: string;
  periodEnd?: string;
  /** dataPeriod as [start, end); both undefined = none (an open side is undefined when the other is set). */
  dataStart?: string;
  dataEnd?: string;
  hasDataPeriod: boolean;
  /** Document ids (provision.data instances); undefined = any document of the patient. */
  documents?: string[];
  /** One list of `system|code` keys per provision stating codes; the document's category must match one of each. */
  categories?: string[][];
}

/** The interactions consent opens: reading, never writing (a patient's record is theirs to change). */
const READS: ReadonlySet<Interaction> = new Set(['read', 'vread', 'search', 'history', 'history-instance', 'history-type']);

/** A category coding as consent_grant and search_token keep it. */
export const categoryKey = (system: string, code: string) => `${indexKey(system)}|${indexKey(code)}`;

export interface ConsentFacts {
  practitionerId: string;
  practitionerRoles: readonly string[];
  /** The database's clock when the request's access was built (ISO, millisecond precision). */
  at: string;
  /** The grants naming the practitioner that are in force at `at`. */
  grants: readonly ConsentGrant[];
  fhirBaseUrl?: string;
}

export function consentDecision(facts: ConsentFacts): ConsentDecision {
  const me = [{ type: 'Practitioner', id: facts.practitionerId }, ...facts.practitionerRoles.map((id) => ({ type: 'PractitionerRole', id }))];
  const authoredByMe = (doc: DocumentReference) =>
    (doc.author ?? []).some((a: Reference) => {
      const t = localReference(a.reference, facts.fhirBaseUrl);
      return !!t && me.some((m) => m.type === t.type && m.id === t.id);
    });
  return {
    allows(interaction, resourceType, resource) {
      if (!READS.has(interaction)) return false;
      if (resourceType === 'DocumentReference') {
        if (!resource) return true;
        const doc = resource as DocumentReference;
        return authoredByMe(doc) || opens(facts.grants, doc, facts.fhirBaseUrl);
      }
      // A Binary is reached through the DocumentReference its securityContext names (visible.ts findBinary); one
      // with no such context (or a Patient) is the patient's alone.
      return resourceType === 'Binary' && !resource;
    },
    searchCondition(resourceType) {
      if (resourceType !== 'DocumentReference') return undefined;
      return {
        kind: 'or',
        any: [
          { kind: 'reference', codes: ['author'], targets: me },
          { kind: 'consent', practitioner: facts.practitionerId, at: facts.at },
        ],
      };
    },
  };
}

/** The in-process form of the SQL condition (searchSql.ts `consentOpens`), on grants already in force. */
function opens(grants: readonly ConsentGrant[], doc: DocumentReference, fhirBaseUrl?: string): boolean {
  const matching = grants.filter((g) => grantMatches(g, doc, fhirBaseUrl));
  return matching.some((p) => p.permit && !matching.some((d) => !d.permit && d.consentId === p.consentId && d.depth >= p.depth));
}

function grantMatches(g: ConsentGrant, doc: DocumentReference, fhirBaseUrl?: string): boolean {
  const subject = localReference(doc.subject?.reference, fhirBaseUrl);
  if (subject?.type !== 'Patient' || subject.id !== g.patientId) return false;
  if (g.documents && !(doc.id && g.documents.includes(doc.id))) return false;
  if (g.hasDataPeriod) {
    const range = doc.date ? dateRange(doc.date) : undefined;
    if (!range) return false;
    if (g.dataStart && Date.parse(range[0]) < Date.parse(g.dataStart)) return false;
    if (g.dataEnd && Date.parse(range[1]) > Date.parse(g.dataEnd)) return false;
  }
  if (g.categories) {
    const mine = new Set(
      (doc.category ?? []).flatMap((c) => c.coding ?? []).flatMap((c) => (c.system && c.code ? [categoryKey(c.system, c.code)] : [])),
    );
    if (!g.categories.every((level) => level.some((k) => mine.has(k)))) return false;
  }
  return true;
}

interface GrantRow {
  consent_id: string;
  node: number;
  depth: number;
  permit: boolean;
  patient_id: string;
  practitioner_id: string;
  data_start: string | null;
  data_end: string | null;
  documents: string[] | null;
  categories: string[][] | null;
}

/** A timestamptz as JSON gives it: an ISO string, or ±infinity (open). */
const instant = (v: string | null) => (v === null || v === 'infinity' || v === '-infinity' ? undefined : new Date(Date.parse(v)).toISOString());

/**
 * The practitioner's consent decision for one request: the database's clock and the grants in force then, in one
 * statement. Nothing of it outlives the request.
 */
export async function loadConsentDecision(
  q: Queryable,
  practitionerId: string,
  practitionerRoles: readonly string[],
  fhirBaseUrl?: string,
): Promise<ConsentDecision> {
  const r = await q.query<{ at: string | Date; grants: GrantRow[] | string }>(
    `SELECT t.at, coalesce((SELECT json_agg(g) FROM consent_grant g
        WHERE g.practitioner_id = $1 AND g.period_start <= t.at AND g.period_end > t.at), '[]'::json) AS grants
       FROM (SELECT date_trunc('milliseconds', now()) AS at) t`,
    [practitionerId],
  );
  const row = r.rows[0];
  const at = new Date(row.at).toISOString();
  const rows = (typeof row.grants === 'string' ? JSON.parse(row.grants) : row.grants) as GrantRow[];
  const grants = rows.map(
    (g): ConsentGrant => ({
      consentId: g.consent_id,
      node: g.node,
      depth: g.depth,
      permit: g.permit,
      patientId: g.patient_id,
      practitionerId: g.practitioner_id,
      hasDataPeriod: g.data_start !== null || g.data_end !== null,
      dataStart: instant(g.data_start),
      dataEnd: instant(g.data_end),
      documents: g.documents ?? undefined,
      categories: g.categories ?? undefined,
    }),
  );
  return consentDecision({ practitionerId, practitionerRoles, at, grants, fhirBaseUrl });
}
