/**
 * Search value syntax shared by the parameter types: comma = OR, escaping, `|` separated parts, prefixes.
 * https://hl7.org/fhir/R4/search.html#escaping — https://hl7.org/fhir/R4/search.html#prefix
 */
import type { Prefix } from '../../storage/search';
import { badRequest } from '../outcomes';

/** Comma = OR; `\,` is a literal comma (https://hl7.org/fhir/R4/search.html#escaping). */
export function splitOr(value: string): string[] {
  return value
    .split(/(?<!\\),/)
    .map((v) => v.replace(/\\,/g, ','))
    .filter((v) => v.length > 0);
}

/** Splits on an unescaped separator (`|` of tokens and quantities, `$` of composites). */
export function splitUnescaped(value: string, separator: '|' | '$'): string[] {
  const re = separator === '|' ? /(?<!\\)\|/ : /(?<!\\)\$/;
  return value.split(re);
}

export const unescape = (v: string) => v.replace(/\\([|,$\\])/g, '$1');

/** `code`, `system|code`, `|code` (no system), `system|` (any code in system). */
export function parseToken(value: string): { system?: string | null; value?: string } {
  const bar = value.search(/(?<!\\)\|/);
  if (bar < 0) return { value: unescape(value) };
  const system = unescape(value.slice(0, bar));
  const code = unescape(value.slice(bar + 1));
  return { system: system === '' ? null : system, value: code === '' ? undefined : code };
}

const PREFIX = /^(eq|ne|gt|lt|ge|le|sa|eb|ap)/;

/** Splits a leading prefix off a number, date or quantity value (default `eq`). */
export function splitPrefix(value: string): { prefix: Prefix; rest: string } {
  const m = PREFIX.exec(value);
  return m ? { prefix: m[1] as Prefix, rest: value.slice(2) } : { prefix: 'eq', rest: value };
}

const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

/** A decimal search value, kept as text so its implicit precision survives (https://hl7.org/fhir/R4/search.html#number). */
export function parseDecimal(value: string, name: string): string {
  if (!DECIMAL.test(value)) throw badRequest(`Invalid number for ${name}: ${value}`, name);
  return value;
}
