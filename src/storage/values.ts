/**
 * Value normalization shared by the indexer (write time) and search (query time), so both sides agree.
 */

/** Lower-cased, accent-free: string search is case- and accent-insensitive (https://hl7.org/fhir/R4/search.html#string). */
export function normalizeString(s: string): string {
  return s.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();
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
