/**
 * The baseline's search SQL: what an engineer would write by hand for each benchmark search over the same
 * index tables our server fills (migrations/0002_search_index.sql), one statement per request, driven by
 * the most selective condition and using the existing indexes: a page of ids from the index tables first,
 * then only that page's resources fetched. No FHIR generality: each function parses
 * only the parameters its scenario sends. Used by bench/baseline.ts to answer, and by --explain to show plans.
 * Each statement returns rows (mode, resource_type, id, content): mode 'match' or 'include'.
 */
import { normalizeString } from './names';

export interface Sql {
  text: string;
  values: unknown[];
}

/** The server's default page size (src/fhir/search/parse.ts DEFAULT_COUNT), for requests without _count. */
export const DEFAULT_COUNT = 20;
const EARTH_RADIUS_KM = 6371.0088;

export class BadQuery extends Error {}

function required(query: URLSearchParams, name: string): string {
  const value = query.get(name);
  if (!value) throw new BadQuery(`${name} is required`);
  return value;
}

function count(query: URLSearchParams): number {
  const n = Number(query.get('_count') ?? DEFAULT_COUNT);
  if (!Number.isInteger(n) || n < 0 || n > 1000) throw new BadQuery('bad _count');
  return n;
}

/** `Type/id` or `id` -> id. */
function referenceId(value: string, type: string): string {
  return value.startsWith(type + '/') ? value.slice(type.length + 1) : value;
}

/** The `ge`/`lt`/... bounds of a repeated date parameter, as instants. */
function dateBounds(values: string[]): { ge?: string; lt?: string } {
  const bounds: { ge?: string; lt?: string } = {};
  for (const v of values) {
    const m = /^(ge|lt)(.+)$/.exec(v);
    if (!m || Number.isNaN(Date.parse(m[2]))) throw new BadQuery(`unsupported date ${v}`);
    bounds[m[1] as 'ge' | 'lt'] = new Date(m[2]).toISOString();
  }
  return bounds;
}

/** `Slot?schedule=Schedule/X&status=free&start=ge..&start=lt..&_sort=start&_count=20`: one agenda page. */
export function slotAgenda(query: URLSearchParams): Sql {
  const { ge, lt } = dateBounds(query.getAll('start'));
  if (!ge || !lt) throw new BadQuery('start=ge..&start=lt.. are required');
  return {
    text: `WITH page AS (
        SELECT d.resource_id AS id, d.start_at
        FROM search_reference sch
        JOIN search_date d ON d.resource_type = 'Slot' AND d.resource_id = sch.resource_id AND d.code = 'start'
        WHERE sch.target_type = 'Schedule' AND sch.target_id = $1 AND sch.resource_type = 'Slot' AND sch.code = 'schedule'
          AND d.start_at >= $3 AND d.start_at < $4
          AND EXISTS (SELECT 1 FROM search_token st WHERE st.resource_type = 'Slot' AND st.resource_id = d.resource_id
                      AND st.code = 'status' AND st.value = $2)
        ORDER BY d.start_at, d.resource_id
        LIMIT $5
      )
      SELECT 'match' AS mode, r.resource_type, r.id, r.content
      FROM page JOIN resources r ON r.resource_type = 'Slot' AND r.id = page.id
      WHERE NOT r.deleted
      ORDER BY page.start_at, page.id`,
    values: [referenceId(required(query, 'schedule'), 'Schedule'), required(query, 'status'), ge, lt, count(query)],
  };
}

/** `Patient?identifier=<system>|<value>`. */
export function patientByIdentifier(query: URLSearchParams): Sql {
  const identifier = required(query, 'identifier');
  const bar = identifier.indexOf('|');
  if (bar < 0) throw new BadQuery('identifier=system|value expected');
  return {
    text: `SELECT 'match' AS mode, r.resource_type, r.id, r.content
      FROM search_token t
      JOIN resources r ON r.resource_type = 'Patient' AND r.id = t.resource_id
      WHERE t.resource_type = 'Patient' AND t.code = 'identifier' AND t.value = $2 AND t.system = $1 AND NOT r.deleted
      ORDER BY r.id
      LIMIT $3`,
    values: [identifier.slice(0, bar), identifier.slice(bar + 1), count(query)],
  };
}

/** `Patient?name=<prefix>`: starts-with, case- and accent-insensitive, on the normalized string index. */
export function patientByName(query: URLSearchParams): Sql {
  const prefix = normalizeString(required(query, 'name')).replace(/[\\%_]/g, (c) => '\\' + c);
  return {
    text: `WITH page AS (
        SELECT DISTINCT s.resource_id AS id FROM search_string s
        WHERE s.resource_type = 'Patient' AND s.code = 'name' AND s.value LIKE $1
        ORDER BY s.resource_id
        LIMIT $2
      )
      SELECT 'match' AS mode, r.resource_type, r.id, r.content
      FROM page JOIN resources r ON r.resource_type = 'Patient' AND r.id = page.id
      WHERE NOT r.deleted
      ORDER BY r.id`,
    values: [prefix + '%', count(query)],
  };
}

/**
 * `PractitionerRole?specialty=X&location.near=lat|long|d|km&rating=ge4&_include=PractitionerRole:practitioner`:
 * Locations in a bounding box (the lat/long index) refined by haversine distance, the roles at them with
 * the specialty and rating (a page of ids from the index tables), then the roles and their Practitioners.
 */
export function doctorSearch(query: URLSearchParams): Sql {
  const [lat, long, distance, units] = required(query, 'location.near').split('|');
  const latitude = Number(lat);
  const longitude = Number(long);
  const km = Number(distance ?? 50);
  if (![latitude, longitude, km].every(Number.isFinite) || (units && units !== 'km')) throw new BadQuery('bad location.near');
  const rating = /^ge(\d+(?:\.\d+)?)$/.exec(required(query, 'rating'));
  if (!rating) throw new BadQuery('rating=ge<n> expected');
  const dLat = (km / EARTH_RADIUS_KM) * (180 / Math.PI);
  const dLong = dLat / Math.max(0.01, Math.cos((latitude * Math.PI) / 180));
  return {
    text: `WITH near AS (
        SELECT p.resource_id FROM search_position p
        WHERE p.resource_type = 'Location'
          AND p.latitude BETWEEN $3 AND $4 AND p.longitude BETWEEN $5 AND $6
          AND 2 * ${EARTH_RADIUS_KM} * asin(sqrt(
                power(sin(radians(p.latitude - $1) / 2), 2)
                + cos(radians($1)) * cos(radians(p.latitude)) * power(sin(radians(p.longitude - $2) / 2), 2))) <= $7
      ), page AS (
        SELECT DISTINCT loc.resource_id AS id
        FROM near JOIN search_reference loc ON loc.target_type = 'Location' AND loc.target_id = near.resource_id
          AND loc.resource_type = 'PractitionerRole' AND loc.code = 'location'
        WHERE EXISTS (SELECT 1 FROM search_token t WHERE t.resource_type = 'PractitionerRole' AND t.resource_id = loc.resource_id
                      AND t.code = 'specialty' AND t.value = $8)
          AND EXISTS (SELECT 1 FROM search_number n WHERE n.resource_type = 'PractitionerRole' AND n.resource_id = loc.resource_id
                      AND n.code = 'rating' AND n.value >= $9)
        ORDER BY loc.resource_id
        LIMIT $10
      )
      (SELECT 'match' AS mode, r.resource_type, r.id, r.content
       FROM page JOIN resources r ON r.resource_type = 'PractitionerRole' AND r.id = page.id
       WHERE NOT r.deleted ORDER BY r.id)
      UNION ALL
      SELECT 'include', r.resource_type, r.id, r.content FROM resources r
      WHERE r.resource_type = 'Practitioner' AND NOT r.deleted AND r.id IN (
        SELECT pr.target_id FROM search_reference pr JOIN page ON pr.resource_id = page.id
        WHERE pr.resource_type = 'PractitionerRole' AND pr.code = 'practitioner' AND pr.target_type = 'Practitioner')`,
    values: [latitude, longitude, latitude - dLat, latitude + dLat, longitude - dLong, longitude + dLong, km, required(query, 'specialty'), rating[1], count(query)],
  };
}

/**
 * `Appointment?patient=Patient/X&date=ge<t>&_revinclude=Encounter:appointment`: a patient's appointments
 * from a date on, with the video consultations (Encounters) that took place for them.
 */
export function patientAppointments(query: URLSearchParams): Sql {
  const { ge } = dateBounds(query.getAll('date'));
  if (!ge) throw new BadQuery('date=ge.. is required');
  return {
    text: `WITH page AS (
        SELECT DISTINCT pat.resource_id AS id FROM search_reference pat
        WHERE pat.target_type = 'Patient' AND pat.target_id = $1 AND pat.resource_type = 'Appointment' AND pat.code = 'patient'
          AND EXISTS (SELECT 1 FROM search_date d WHERE d.resource_type = 'Appointment' AND d.resource_id = pat.resource_id
                      AND d.code = 'date' AND d.start_at >= $2)
        ORDER BY pat.resource_id
        LIMIT $3
      )
      (SELECT 'match' AS mode, r.resource_type, r.id, r.content
       FROM page JOIN resources r ON r.resource_type = 'Appointment' AND r.id = page.id
       WHERE NOT r.deleted ORDER BY r.id)
      UNION ALL
      SELECT 'include', r.resource_type, r.id, r.content FROM search_reference enc
      JOIN page ON enc.target_id = page.id
      JOIN resources r ON r.resource_type = 'Encounter' AND r.id = enc.resource_id
      WHERE enc.target_type = 'Appointment' AND enc.resource_type = 'Encounter' AND enc.code = 'appointment' AND NOT r.deleted`,
    values: [referenceId(required(query, 'patient'), 'Patient'), ge, count(query)],
  };
}

/** The hand-written query for `GET /<type>?<query>`, by resource type (each scenario searches its own type). */
export const BASELINE_QUERIES: Record<string, (query: URLSearchParams) => Sql> = {
  Slot: slotAgenda,
  Patient: (q) => (q.has('identifier') ? patientByIdentifier(q) : patientByName(q)),
  PractitionerRole: doctorSearch,
  Appointment: patientAppointments,
};
