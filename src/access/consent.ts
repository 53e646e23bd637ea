/**
 * The decision point for a practitioner reaching a patient's records (CONTRACT section 6, "Sharing"): a
 * practitioner sees a patient's DocumentReference and its Binary only while an active Consent whose
 * provision permits them (actor IRCP = Practitioner/<id>, period covering now, data naming the document or
 * provision.code naming its category) exists, or when they authored it.
 * https://hl7.org/fhir/R4/consent.html#provision
 *
 * Until the records-sharing work supplies one, `noConsent` is used: practitioners reach no patient record.
 */
import type { Resource } from '@medplum/fhirtypes';
import type { Condition } from '../storage/search';
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

/** No consent is honoured yet: every patient record stays closed to practitioners. */
export const noConsent: ConsentDecision = {
  allows: () => false,
  searchCondition: () => undefined,
};
