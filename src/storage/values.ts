/**
 * Value normalization shared by the indexer (write time) and search (query time), so both sides agree.
 */
import { createHash } from 'node:crypto';

/** Lower-cased, accent-free: string search is case- and accent-insensitive (https://hl7.org/fhir/R4/search.html#string). */
export function normalizeString(s: string): string {
  return s.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();
}

/**
 * The most UTF-8 bytes of a text an index row keeps. A btree entry must fit in a third of a page (2,704
 * bytes, https://www.postgresql.org/docs/current/btree-implementation.html), and a token's key holds both
 * its system and its value; a longer value would make the write fail. HAPI FHIR keeps 200 characters.
 */
export const INDEX_TEXT_BYTES = 1000;

/** The longest prefix of s (whole characters) within `maxBytes` UTF-8 bytes. */
function utf8Prefix(s: string, maxBytes: number): string {
  let bytes = 0;
  let end = 0;
  for (const ch of s) {
    bytes += Buffer.byteLength(ch);
    if (bytes > maxBytes) break;
    end += ch.length;
  }
  return s.slice(0, end);
}

/** Within the index's bound; a UTF-16 unit is at most 3 UTF-8 bytes, so most values need no counting. */
const fits = (s: string) => s.length * 3 <= INDEX_TEXT_BYTES || Buffer.byteLength(s) <= INDEX_TEXT_BYTES;

/**
 * A text matched by prefix (string parameters), as an index row keeps it: its first INDEX_TEXT_BYTES bytes.
 * A search text is cut the same way, so a search longer than that matches on its first bytes only.
 */
export function indexPrefix(s: string): string {
  return fits(s) ? s : utf8Prefix(s, INDEX_TEXT_BYTES);
}

/**
 * A text matched whole (token system and code, uri, reference url), as an index row keeps it: a long value
 * is cut and ends with a hash of the whole, so equality stays exact and a prefix (`:below`) still matches
 * on the first ~950 bytes.
 */
export function indexKey(s: string): string {
  if (fits(s)) return s;
  const hash = createHash('sha256').update(s).digest('base64url');
  return `${utf8Prefix(s, INDEX_TEXT_BYTES - hash.length - 1)}#${hash}`;
}

const DATE = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

/**
 * The instants a FHIR date, dateTime or instant covers at its precision, as [start, end) ISO strings:
 * "2020" covers the whole year, "2020-03-05T10:00" that minute. Without a zone, UTC is assumed.
 * Undefined when the value is not a date.
 */
export function dateRange(value: string): [string, string] | undefined {
  const m = DATE.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  const year = Number(y);
  if (mo === undefined) return [iso(Date.UTC(year, 0, 1)), iso(Date.UTC(year + 1, 0, 1))];
  const month = Number(mo) - 1;
  if (d === undefined) return [iso(Date.UTC(year, month, 1)), iso(Date.UTC(year, month + 1, 1))];
  const day = Number(d);
  if (h === undefined) return [iso(Date.UTC(year, month, day)), iso(Date.UTC(year, month, day + 1))];
  const start = Date.parse(`${y}-${mo}-${d}T${h}:${mi}:${s ?? '00'}${frac ?? ''}${zone ?? 'Z'}`);
  if (Number.isNaN(start)) return undefined;
  const precisionMs = frac ? 1 : s !== undefined ? 1000 : 60_000;
  return [iso(start), iso(start + precisionMs)];
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The range a decimal's implicit precision covers: 1.5 covers [1.45, 1.55] (https://hl7.org/fhir/R4/search.html#number). */
export function numberRange(n: number): { low: number; high: number } {
  const text = String(n);
  const decimals = text.includes('e') ? 0 : (text.split('.')[1] ?? '').length;
  const half = 0.5 * 10 ** -decimals;
  return { low: n - half, high: n + half };
}
