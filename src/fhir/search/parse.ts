/**
 * Parses a search's query parameters (https://hl7.org/fhir/R4/search.html) into storage conditions and the
 * result parameters that shape the response. Repeating a parameter = AND, commas in a value = OR.
 * Unknown or malformed parameters are a 400, or ignored with a warning under `Prefer: handling=lenient`
 * (https://hl7.org/fhir/R4/search.html#errors).
 */
import type { Condition, Cursor, IndexTable, SortKey } from '../../storage/search';
import { OperationOutcomeError, badRequest } from '../outcomes';
import { decodeCursor, sortSignature } from './cursor';
import { parseInclude, type IncludeSpec } from './include';
import { assertWithinLimits, ConditionBudget, DEFAULT_SEARCH_LIMITS, type SearchLimits } from './limits';
import { parameterCondition } from './parameter';
import { cardinality, searchParameter } from './params';
import { parseSort } from './sort';

export { splitOr, parseToken } from './values';

/** Result parameters: they shape the response, not the match (https://hl7.org/fhir/R4/search.html#return). */
const RESULT_PARAMS = new Set(['_count', '_total', '_summary', '_elements', '_format', '_pretty', '_cursor', '_sort', '_type']);

export interface ParsedSearch {
  conditions: Condition[];
  count: number;
  cursor?: Cursor;
  /** undefined: the client did not ask (a total is given when it costs nothing). */
  total?: 'none' | 'estimate' | 'accurate';
  sort: SortKey[];
  /** Identifies the sort in cursors. */
  sortSignature: string;
  include: IncludeSpec[];
  /** Warnings about parameters ignored under Prefer: handling=lenient. */
  ignored: string[];
}

export interface SearchOptions {
  lenient?: boolean;
  /** Our FHIR base: absolute references under it are local. */
  fhirBaseUrl?: string;
  /** Access conditions per type: applied to the matches, and inside chains and `_has`. */
  access?: (resourceType: string) => Condition[];
  /** Extra conditions on the matches only (compartment membership). */
  scope?: Condition[];
  /** What the query may ask (README "Limits"); default: the configuration's defaults. */
  limits?: SearchLimits;
}

export const DEFAULT_COUNT = 20;
export const MAX_COUNT = 1000;

/**
 * Parses a search on one type (also the criteria of conditional interactions). `options` may be the
 * `lenient` flag alone.
 */
export function parseSearch(resourceType: string, query: URLSearchParams, options: boolean | SearchOptions = {}): ParsedSearch {
  return parseSearchTypes([resourceType], query, typeof options === 'boolean' ? { lenient: options } : options);
}

/**
 * Parses a search over several types (system search with `_type`): each parameter must exist on every type;
 * conditions that differ per type are combined as "(type A and its conditions) or (type B and ...)".
 */
export function parseSearchTypes(types: string[], query: URLSearchParams, options: SearchOptions = {}): ParsedSearch {
  const limits = options.limits ?? DEFAULT_SEARCH_LIMITS;
  const budget = new ConditionBudget(limits.searchMaxConditions, assertWithinLimits(query, limits));
  const parsed: ParsedSearch = { conditions: [], count: DEFAULT_COUNT, sort: [], sortSignature: sortSignature(''), include: [], ignored: [] };
  const perType = new Map<string, Condition[]>(types.map((t) => [t, []]));
  const lenientOr = (name: string, fn: () => void) => {
    try {
      fn();
    } catch (err) {
      // a limit is never ignored: the client would get another search than the one it asked for
      if (!options.lenient || !(err instanceof OperationOutcomeError) || err.status !== 400 || err.outcome.issue?.[0]?.code === 'too-costly') throw err;
      parsed.ignored.push(`${name}: ${err.message}`);
    }
  };
  let cursorText: string | undefined;
  for (const [name, value] of query) {
    lenientOr(name, () => {
      const [base, modifier] = name.split(':', 2);
      if (base === '_include' || base === '_revinclude') {
        parsed.include.push(parseInclude(base, modifier, value));
      } else if (RESULT_PARAMS.has(name)) {
        if (name === '_cursor') cursorText = value;
        else applyResultParam(parsed, types, name, value);
      } else {
        for (const type of types) {
          const p = { resourceType: type, name, fhirBaseUrl: options.fhirBaseUrl ?? '', access: options.access ?? (() => []), budget };
          perType.get(type)!.push(parameterCondition(p, name, value));
        }
      }
    });
  }
  if (cursorText !== undefined) parsed.cursor = decodeCursor(cursorText, parsed.sortSignature, parsed.sort);
  // access and scope first: past a few subqueries the later ones are fenced off from the planner's join search
  // (src/storage/searchSql.ts), and these are the ones that most often pick out few rows (one patient's)
  for (const [type, list] of perType) perType.set(type, [...(options.access?.(type) ?? []), ...mergeSingleValued(type, distinct(list))]);
  parsed.conditions = [...(options.scope ?? []), ...combine(perType)];
  return parsed;
}

/**
 * `start=ge..&start=lt..` on a parameter with one index row per resource: one row must meet both, so the
 * two conditions become one (one index probe instead of two, and a range the index answers at once).
 */
function mergeSingleValued(type: string, conditions: Condition[]): Condition[] {
  const groups = new Map<string, Condition[]>();
  for (const c of conditions) {
    if (c.kind !== 'date' && c.kind !== 'number' && c.kind !== 'uri') continue;
    const table = c.kind === 'number' ? c.table : c.kind;
    const sp = searchParameter(type, c.code);
    if (!sp || !cardinality(type, sp).single) continue;
    const key = `${table}|${c.code}`;
    groups.set(key, [...(groups.get(key) ?? []), c]);
  }
  const out: Condition[] = [];
  for (const c of conditions) {
    const key = c.kind === 'date' || c.kind === 'uri' ? `${c.kind}|${c.code}` : c.kind === 'number' ? `${c.table}|${c.code}` : undefined;
    const group = key ? groups.get(key) : undefined;
    if (!group || group.length < 2) out.push(c);
    else if (group[0] === c) {
      const [table, code] = key!.split('|') as [IndexTable, string];
      out.push({ kind: 'values', table, code, all: group });
    }
  }
  return out;
}

/** A condition repeated (`name=a&name=a`) adds nothing but planning work: kept once. */
function distinct(conditions: Condition[]): Condition[] {
  const seen = new Set<string>();
  return conditions.filter((c) => {
    const key = JSON.stringify(c);
    return !seen.has(key) && !!seen.add(key);
  });
}

/** The same conditions on every type stay as they are; otherwise one alternative per type. */
function combine(perType: Map<string, Condition[]>): Condition[] {
  const lists = [...perType.values()];
  if (lists.length === 1) return lists[0];
  const first = JSON.stringify(lists[0]);
  if (lists.every((l) => JSON.stringify(l) === first)) return lists[0];
  return [{ kind: 'or', any: [...perType].map(([type, all]) => ({ kind: 'and', all: [{ kind: 'type', types: [type] }, ...all] })) }];
}

function applyResultParam(parsed: ParsedSearch, types: string[], name: string, value: string): void {
  switch (name) {
    case '_count': {
      const n = Number(value);
      if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) throw badRequest(`Invalid _count: ${value}`, '_count');
      parsed.count = Math.min(n, MAX_COUNT);
      return;
    }
    case '_total':
      if (!['none', 'estimate', 'accurate'].includes(value)) throw badRequest(`Invalid _total: ${value}`, '_total');
      parsed.total = value as ParsedSearch['total'];
      return;
    case '_sort':
      parsed.sort = parseSort(types, value);
      parsed.sortSignature = sortSignature(value);
      return;
    default:
      // _summary and _elements are read by ../summary.ts, _type by system search; _format and _pretty by HTTP
      return;
  }
}

/** Parses a conditional URL's query part ("identifier=a|b&_id=x", or "Type?identifier=...") */
export function parseCriteria(criteria: string): URLSearchParams {
  const q = criteria.includes('?') ? criteria.slice(criteria.indexOf('?') + 1) : criteria;
  // Synthea and others write conditional references unencoded ("system|value" with raw "://").
  return new URLSearchParams(q.replace(/\+/g, '%2B'));
}
