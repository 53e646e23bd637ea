/**
 * What one search may ask (README "Limits"), checked on the raw query before anything is parsed, so that a
 * hostile query costs a scan of its text and never reaches the database:
 * - no NUL or lone surrogate anywhere (PostgreSQL refuses NUL in text; the driver would turn a surrogate into U+FFFD);
 * - at most `searchMaxOrValues` comma-separated values in one parameter (and keys in `_sort`);
 * - at most `searchMaxRepeats` occurrences of one parameter, its modifiers counted together;
 * - at most `searchMaxConditions` values over all parameters, chained and `_has` ones included, and each further
 *   type a chain through a reference to several types looks into (ConditionBudget, counted while parsing);
 * - at most `searchMaxChainDepth` references followed by one parameter (chained links and nested `_has` together).
 * Past a limit: 400 `too-costly`, naming the parameter, the limit and its variable; lenient handling does not
 * ignore it (the client would silently get another search than the one it asked for).
 */
import type { Limits } from '../../config';
import { OperationOutcomeError, badRequest, outcome } from '../outcomes';
import { splitOr } from './values';

export type SearchLimits = Pick<Limits, 'searchMaxRepeats' | 'searchMaxOrValues' | 'searchMaxConditions' | 'searchMaxChainDepth'>;

/** The defaults of src/config/index.ts, for callers given no settings (conditional criteria, explain): keep them in step. */
export const DEFAULT_SEARCH_LIMITS: SearchLimits = { searchMaxRepeats: 10, searchMaxOrValues: 1000, searchMaxConditions: 1000, searchMaxChainDepth: 4 };

/** Parameters that shape the response or add resources to it: no conditions of their own. */
const NOT_CONDITIONS = /^(_count|_total|_summary|_elements|_format|_pretty|_cursor|_sort|_type|_include|_revinclude)(:|$)/;

/** A NUL, or a UTF-16 surrogate without its pair (only JSON escapes can make one: `"\ud800"`). */
const UNSAFE = /\u0000|\p{Surrogate}/u;

function isSafeText(text: string): boolean {
  return !UNSAFE.test(text);
}

/** Checks the query against the limits; returns how many conditions its values make (for a ConditionBudget). */
export function assertWithinLimits(query: URLSearchParams, limits: SearchLimits): number {
  const repeats = new Map<string, number>();
  let conditions = 0;
  for (const [name, value] of query) {
    if (!isSafeText(name) || !isSafeText(value)) {
      throw badRequest(`Search parameter ${printable(name)} holds a NUL character or an unpaired surrogate`, printable(name));
    }
    const key = parameterKey(name);
    repeats.set(key, (repeats.get(key) ?? 0) + 1);
    if (name === '_sort') {
      const keys = value.split(',').filter((v) => v.trim()).length;
      if (keys > limits.searchMaxOrValues) throw tooCostly(`_sort has ${keys} keys`, limits.searchMaxOrValues, 'SEARCH_MAX_OR_VALUES', name);
    }
    if (NOT_CONDITIONS.test(name)) continue;
    const depth = chainDepth(name);
    if (depth > limits.searchMaxChainDepth) {
      throw tooCostly(`${name} follows ${depth} references (chained links and nested _has)`, limits.searchMaxChainDepth, 'SEARCH_MAX_CHAIN_DEPTH', name);
    }
    const values = Math.max(1, splitOr(value).length);
    if (values > limits.searchMaxOrValues) {
      throw tooCostly(`${name} has ${values} comma-separated values`, limits.searchMaxOrValues, 'SEARCH_MAX_OR_VALUES', name);
    }
    conditions += values;
  }
  for (const [key, n] of repeats) {
    if (n > limits.searchMaxRepeats) throw tooCostly(`Search parameter ${key} is repeated ${n} times`, limits.searchMaxRepeats, 'SEARCH_MAX_REPEATS', key);
  }
  if (conditions > limits.searchMaxConditions) {
    throw tooCostly(`The search has ${conditions} conditions (values over all its parameters)`, limits.searchMaxConditions, 'SEARCH_MAX_CONDITIONS');
  }
  return conditions;
}

/**
 * The conditions a search expands to as it is parsed, against searchMaxConditions: its values, plus each
 * further type a chain looks into. A reference that may point at any type (Provenance.target) makes a chain
 * look into every type that has the next parameter, and each of those may chain again: without a bound, ten
 * such parameters under a patient's access rules took seconds to parse and made a statement of over 65,535
 * bind parameters, which PostgreSQL refuses.
 */
export class ConditionBudget {
  constructor(
    private readonly limit: number,
    private used: number,
  ) {}

  /** Counts `n` more conditions for parameter `name`; past the limit, the 400 naming it. */
  spend(n: number, name: string): void {
    this.used += n;
    if (this.used <= this.limit) return;
    throw tooCostly(
      `The search expands to more than ${this.limit} conditions: ${name} chains through a reference to many types and looks into each (name the type, as in target:Patient.name)`,
      this.limit,
      'SEARCH_MAX_CONDITIONS',
      name,
    );
  }
}

/**
 * The parameter a name repeats, modifiers dropped at every link: `name:exact` and `name` are one parameter,
 * `subject:Patient.name:exact` and `subject.name` are one, `_has:Observation:patient:code:text` is
 * `_has:Observation:patient:code`.
 */
export function parameterKey(name: string): string {
  if (name.startsWith('_has:')) {
    const [, type, code, ...rest] = name.split(':');
    return rest.length === 0 ? name : `_has:${type}:${code}:${parameterKey(rest.join(':'))}`;
  }
  const dot = name.indexOf('.');
  if (dot >= 0) return `${name.slice(0, dot).split(':')[0]}.${parameterKey(name.slice(dot + 1))}`;
  return name.split(':')[0];
}

/** References one parameter follows: each chained link (`.`) and each `_has`, nested or after a chain. */
export function chainDepth(name: string): number {
  return (name.match(/\./g)?.length ?? 0) + (name.match(/(^|[.:])_has:/g)?.length ?? 0);
}

function tooCostly(what: string, limit: number, variable: string, expression?: string): OperationOutcomeError {
  const diagnostics = `${what}; at most ${limit} ${limit === 1 ? 'is' : 'are'} allowed (${variable}=${limit})`;
  return new OperationOutcomeError(400, outcome('error', 'too-costly', diagnostics, expression));
}

/** A name fit for a message: NUL shown as \0, unpaired surrogates as U+FFFD, at most 100 characters. */
function printable(name: string): string {
  const shown = name.replace(/\u0000/g, '\\0').replace(/\p{Surrogate}/gu, '\ufffd');
  return shown.length > 100 ? `${shown.slice(0, 100)}...` : shown;
}
