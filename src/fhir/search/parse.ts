/**
 * Parses search parameters into storage conditions. This first cut covers what conditional interactions
 * need — `_id`, `_lastUpdated` and every token parameter of the type (https://hl7.org/fhir/R4/search.html#token) —
 * on the index design the full search builds on.
 */
import { getSearchParameters } from '@medplum/core';
import type { Condition } from '../../storage/search';
import { badRequest } from '../outcomes';

/** Result parameters: they shape the response, not the match (https://hl7.org/fhir/R4/search.html#return). */
const RESULT_PARAMS = new Set(['_count', '_total', '_summary', '_elements', '_format', '_pretty', '_cursor', '_sort']);

export interface ParsedSearch {
  conditions: Condition[];
  count: number;
  cursor?: string;
  total: 'none' | 'estimate' | 'accurate';
  /** Parameters ignored under Prefer: handling=lenient. */
  ignored: string[];
}

export const DEFAULT_COUNT = 20;
export const MAX_COUNT = 1000;

export function parseSearch(resourceType: string, query: URLSearchParams, lenient = false): ParsedSearch {
  const parsed: ParsedSearch = { conditions: [], count: DEFAULT_COUNT, total: 'none', ignored: [] };
  const params = getSearchParameters(resourceType) ?? {};
  for (const [rawName, rawValue] of query) {
    const [name, modifier] = rawName.split(':', 2);
    if (RESULT_PARAMS.has(name)) {
      applyResultParam(parsed, name, rawValue);
      continue;
    }
    if (name === '_id') {
      parsed.conditions.push({ kind: 'id', ids: splitOr(rawValue), not: modifier === 'not' || undefined });
      continue;
    }
    if (name === '_lastUpdated') {
      parsed.conditions.push(...dateConditions(rawValue));
      continue;
    }
    const sp = params[name];
    if (sp?.type === 'token' && (modifier === undefined || modifier === 'not')) {
      parsed.conditions.push({ kind: 'token', code: name, any: splitOr(rawValue).map(parseToken), not: modifier === 'not' || undefined });
      continue;
    }
    if (lenient) {
      parsed.ignored.push(rawName);
      continue;
    }
    throw badRequest(
      sp ? `Search parameter ${rawName} is not supported yet` : `Unknown search parameter ${rawName} for ${resourceType}`,
      rawName,
    );
  }
  return parsed;
}

function applyResultParam(parsed: ParsedSearch, name: string, value: string): void {
  if (name === '_count') {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0) throw badRequest(`Invalid _count: ${value}`, '_count');
    parsed.count = Math.min(n, MAX_COUNT);
  } else if (name === '_cursor') {
    parsed.cursor = value;
  } else if (name === '_total') {
    if (!['none', 'estimate', 'accurate'].includes(value)) throw badRequest(`Invalid _total: ${value}`, '_total');
    parsed.total = value as ParsedSearch['total'];
  } else if (name === '_sort' && value !== '_id') {
    throw badRequest(`Sorting by ${value} is not supported yet`, '_sort');
  }
}

/** Comma = OR; `\,` is a literal comma (https://hl7.org/fhir/R4/search.html#escaping). */
export function splitOr(value: string): string[] {
  return value
    .split(/(?<!\\),/)
    .map((v) => v.replace(/\\,/g, ','))
    .filter((v) => v.length > 0);
}

/** `code`, `system|code`, `|code` (no system), `system|` (any code in system). */
export function parseToken(value: string): { system?: string | null; value?: string } {
  const bar = value.search(/(?<!\\)\|/);
  if (bar < 0) return { value: unescape(value) };
  const system = unescape(value.slice(0, bar));
  const code = unescape(value.slice(bar + 1));
  return { system: system === '' ? null : system, value: code === '' ? undefined : code };
}

const unescape = (v: string) => v.replace(/\\([|,$\\])/g, '$1');

const DATE_PREFIX = /^(eq|ne|gt|lt|ge|le|sa|eb|ap)?(\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?)$/;

/** `_lastUpdated` with a prefix; a partial date covers its whole range (https://hl7.org/fhir/R4/search.html#date). */
function dateConditions(value: string): Condition[] {
  const m = DATE_PREFIX.exec(value);
  if (!m) throw badRequest(`Invalid date: ${value}`, '_lastUpdated');
  const prefix = m[1] ?? 'eq';
  const [start, end] = dateRange(m[2]);
  switch (prefix) {
    case 'eq':
    case 'ap':
      return [
        { kind: 'lastUpdated', op: '>=', value: start },
        { kind: 'lastUpdated', op: '<', value: end },
      ];
    case 'gt':
    case 'sa':
      return [{ kind: 'lastUpdated', op: '>=', value: end }];
    case 'ge':
      return [{ kind: 'lastUpdated', op: '>=', value: start }];
    case 'lt':
    case 'eb':
      return [{ kind: 'lastUpdated', op: '<', value: start }];
    case 'le':
      return [{ kind: 'lastUpdated', op: '<', value: end }];
    default:
      throw badRequest(`Prefix ${prefix} is not supported for _lastUpdated`, '_lastUpdated');
  }
}

/** [start, end) of a FHIR date/dateTime at its precision, as ISO instants. */
export function dateRange(value: string): [string, string] {
  const hasZone = /(Z|[+-]\d{2}:\d{2})$/.test(value);
  if (value.length === 4) return [`${value}-01-01T00:00:00Z`, `${Number(value) + 1}-01-01T00:00:00Z`];
  if (value.length === 7) {
    const d = new Date(`${value}-01T00:00:00Z`);
    const e = new Date(d);
    e.setUTCMonth(e.getUTCMonth() + 1);
    return [d.toISOString(), e.toISOString()];
  }
  if (value.length === 10) {
    const d = new Date(`${value}T00:00:00Z`);
    return [d.toISOString(), new Date(d.getTime() + 86_400_000).toISOString()];
  }
  const d = new Date(hasZone ? value : `${value}Z`);
  if (Number.isNaN(d.getTime())) throw badRequest(`Invalid date: ${value}`);
  const precisionMs = /\.\d+/.test(value) ? 1 : /T\d{2}:\d{2}:\d{2}/.test(value) ? 1000 : 60_000;
  return [d.toISOString(), new Date(d.getTime() + precisionMs).toISOString()];
}

/** Parses a conditional URL's query part ("identifier=a|b&_id=x", or "Type?identifier=...") */
export function parseCriteria(criteria: string): URLSearchParams {
  const q = criteria.includes('?') ? criteria.slice(criteria.indexOf('?') + 1) : criteria;
  // Synthea and others write conditional references unencoded ("system|value" with raw "://").
  return new URLSearchParams(q.replace(/\+/g, '%2B'));
}
