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
   * The SQL form of the same decision for searches and lookups by id: a condition every row reachable through
   * consent meets (authored by them, or `{ kind: 'consent' }`); undefined = no row.
   */
  searchCondition(resourceType: string): Condition | undefined;
}

/** No consent is honoured: every patient record stays closed (callers that are not practitioners, or have no id). */
export const noConsent: ConsentDecision = {
  allows: () => false,
  searchCondition: () => undefined,
};

/** One row of consent_grant in force: a provision of an active Consent, for one practitioner it names. */
export interface ConsentGrant {
  consentId: string;
  depth: number;
  permit: boolean;
  patientId: string;
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
  const byPatient = new Map<string, ConsentGrant[]>();
  for (const g of facts.grants) byPatient.set(g.patientId, [...(byPatient.get(g.patientId) ?? []), g]);
  const opens = (doc: DocumentReference): boolean => {
    const subject = localReference(doc.subject?.reference, facts.fhirBaseUrl);
    const grants = subject?.type === 'Patient' ? byPatient.get(subject.id) : undefined;
    return !!grants && decides(grants, doc);
  };
  return {
    allows(interaction, resourceType, resource) {
      if (!READS.has(interaction)) return false;
      if (resourceType === 'DocumentReference') {
        if (!resource) return true;
        const doc = resource as DocumentReference;
        return authoredByMe(doc) || opens(doc);
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

/**
 * The in-process form of the SQL condition (searchSql.ts `consentOpens`), on the grants in force of the document's
 * patient: a permit covers it and no deny of the same Consent, as deep or deeper, does.
 */
function decides(grants: readonly ConsentGrant[], doc: DocumentReference): boolean {
  const categories = new Set(
    (doc.category ?? []).flatMap((c) => c.coding ?? []).flatMap((c) => (c.system && c.code ? [categoryKey(c.system, c.code)] : [])),
  );
  const range = doc.date ? dateRange(doc.date) : undefined;
  const covers = (g: ConsentGrant): boolean => {
    if (g.documents && !(doc.id && g.documents.includes(doc.id))) return false;
    if (g.hasDataPeriod) {
      if (!range) return false;
      if (g.dataStart && Date.parse(range[0]) < Date.parse(g.dataStart)) return false;
      if (g.dataEnd && Date.parse(range[1]) > Date.parse(g.dataEnd)) return false;
    }
    return !g.categories || g.categories.every((level) => level.some((k) => categories.has(k)));
  };
  const covering = grants.filter(covers);
  return covering.some((p) => p.permit && !covering.some((d) => !d.permit && d.consentId === p.consentId && d.depth >= p.depth));
}

/**
 * A consent_grant row in force as `grantsInForceSql` gives it: [consent_id, depth, permit, patient_id, data_start,
 * data_end, documents, categories], timestamps as JSON writes them (ISO, or ±infinity).
 */
export type GrantRow = [string, number, boolean, string, string | null, string | null, string[] | null, string[][] | null];

/** A timestamptz as JSON gives it: an ISO string, or ±infinity (open). */
const instant = (v: string | null) => (v === null || v === 'infinity' || v === '-infinity' ? undefined : new Date(Date.parse(v)).toISOString());

/**
 * The SQL (a scalar subquery) of the practitioner's grants in force at `at`, as a JSON array of GrantRow: $1 is the
 * practitioner's id. The request's lookups (fromToken.ts) read it in the statement that reads the database's clock.
 * Its size is the number of provisions in force naming the practitioner (expired shares are not read).
 */
export const grantsInForceSql = (at: string) =>
  `coalesce((SELECT json_agg(json_build_array(g.consent_id, g.depth, g.permit, g.patient_id, g.data_start, g.data_end, g.documents, g.categories))
     FROM consent_grant g WHERE g.practitioner_id = $1 AND g.period_start <= ${at} AND g.period_end > ${at}), '[]'::json)`;

/** The database's clock for a request's decisions: to the millisecond, as JavaScript compares instants. */
export const REQUEST_CLOCK_SQL = "date_trunc('milliseconds', now())";

/** The practitioner's consent decision for one request, from the clock and the grant rows read together. */
export function consentDecisionOf(
  at: string | Date,
  grantRows: GrantRow[] | string,
  practitionerId: string,
  practitionerRoles: readonly string[],
  fhirBaseUrl?: string,
): ConsentDecision {
  const rows = (typeof grantRows === 'string' ? JSON.parse(grantRows) : grantRows) as GrantRow[];
  const grants = rows.map(
    ([consentId, depth, permit, patientId, dataStart, dataEnd, documents, categories]): ConsentGrant => ({
      consentId,
      depth,
      permit,
      patientId,
      hasDataPeriod: dataStart !== null,
      dataStart: instant(dataStart),
      dataEnd: instant(dataEnd),
      documents: documents ?? undefined,
      categories: categories ?? undefined,
    }),
  );
  return consentDecision({ practitionerId, practitionerRoles, at: new Date(at).toISOString(), grants, fhirBaseUrl });
}
