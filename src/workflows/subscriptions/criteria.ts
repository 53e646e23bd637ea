/**
 * `Subscription.criteria`: a search, `Type?params`, "with the same interpretation as if appended to the base URL
 * and submitted using the REST API" (https://hl7.org/fhir/R4/subscription-definitions.html#Subscription.criteria).
 * A written version matches when that search, narrowed to its id (`_id`), finds it among what the owner may
 * search: the same parser and storage query as GET [type]?params under the owner's access.
 */
import type { Limits } from '../../config';
import type { AccessContext } from '../../access/context';
import { isKnownResourceType } from '../../fhir/definitions';
import { OperationOutcomeError, unprocessable } from '../../fhir/outcomes';
import { parseCriteria, parseSearch } from '../../fhir/search/parse';
import type { Queryable } from '../../storage/database';
import { searchResources } from '../../storage/search';

export interface Criteria {
  resourceType: string;
  query: URLSearchParams;
}

/** Result parameters shape a page of results; a criteria selects resources one by one, so they mean nothing there. */
const RESULT_PARAMS = new Set(['_count', '_sort', '_include', '_revinclude', '_summary', '_elements', '_total', '_cursor', '_type', '_contained', '_containedType']);

const SHAPE = /^([A-Z][A-Za-z]+)(?:\?(.*))?$/s;

/** The resource type a criteria names, if it has the shape of one (no validation: what subscription_topic keeps). */
export function criteriaType(criteria: string | undefined): string | undefined {
  return SHAPE.exec(criteria ?? '')?.[1];
}

export interface CriteriaOptions {
  fhirBaseUrl: string;
  limits: Limits;
}

/** Parses and checks a criteria as a search (422 naming what is wrong). */
export function parseSubscriptionCriteria(criteria: unknown, opts: CriteriaOptions): Criteria {
  const m = typeof criteria === 'string' ? SHAPE.exec(criteria) : null;
  if (!m) throw unprocessable('Subscription.criteria must be a search on one resource type: Type?params (e.g. Appointment?status=booked)', 'Subscription.criteria');
  const resourceType = m[1];
  if (!isKnownResourceType(resourceType)) throw unprocessable(`Subscription.criteria names ${resourceType}, which is not an R4 resource type`, 'Subscription.criteria');
  const query = parseCriteria(m[2] ?? '');
  for (const name of query.keys()) {
    if (RESULT_PARAMS.has(name.split(':')[0])) {
      throw unprocessable(`Subscription.criteria cannot use ${name}: it shapes a page of results, and a criteria selects resources`, 'Subscription.criteria');
    }
  }
  try {
    parseSearch(resourceType, query, { fhirBaseUrl: opts.fhirBaseUrl, limits: opts.limits });
  } catch (err) {
    if (err instanceof OperationOutcomeError && err.status === 400) throw unprocessable(`Subscription.criteria is not a valid search: ${err.message}`, 'Subscription.criteria');
    throw err;
  }
  return { resourceType, query };
}

/** Whether the current version of `resourceType/id` matches the criteria, among what `access` may search. */
export async function matchesCriteria(q: Queryable, criteria: Criteria, id: string, access: AccessContext, opts: CriteriaOptions): Promise<boolean> {
  const { resourceType } = criteria;
  if (!access.can('search', resourceType)) return false;
  const query = new URLSearchParams(criteria.query);
  query.append('_id', id);
  const parsed = parseSearch(resourceType, query, { fhirBaseUrl: opts.fhirBaseUrl, limits: opts.limits, access: (t) => access.searchConditions(t) });
  const { versions } = await searchResources(q, { resourceType, conditions: parsed.conditions, count: 1 });
  return versions.length > 0;
}
