/**
 * FHIRPath comparison of dates and times with partial precision: https://hl7.org/fhirpath/N1/#comparison
 * "If one value is specified to a different level of precision than the other, the result is empty ({ })
 * to indicate that the result of the comparison is unknown" — unless the values already differ at a
 * precision both have. Seconds and milliseconds are one precision. Values with time zones are compared in UTC.
 */

interface TemporalParts {
  /** year, month, day, hour, minute, second (with fraction): as many as the value specifies. */
  components: number[];
  /** Offset from UTC in minutes, when a time zone is given. */
  offset?: number;
}

const DATE_TIME = /^@?(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2})(?::(\d{2})(?::(\d{2}(?:\.\d+)?))?)?)?)?)?(Z|[+-]\d{2}:\d{2})?$/;
const TIME = /^@?T?(\d{2})(?::(\d{2})(?::(\d{2}(?:\.\d+)?))?)?$/;

export const TEMPORAL_TYPES = new Set(['date', 'dateTime', 'instant', 'time']);

export function parseTemporal(value: string, type: string): TemporalParts | undefined {
  if (type === 'time') {
    const m = TIME.exec(value);
    return m ? { components: m.slice(1).filter((c) => c !== undefined).map(Number) } : undefined;
  }
  const m = DATE_TIME.exec(value);
  if (!m) {
    return undefined;
  }
  const components = m.slice(1, 7).filter((c) => c !== undefined).map(Number);
  const zone = m[7];
  if (zone === undefined || components.length < 4) {
    return { components };
  }
  const offset = zone === 'Z' ? 0 : (zone[0] === '-' ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6)));
  return toUtc({ components, offset });
}

/** Shifts a value with a time of day to UTC, keeping its precision. */
function toUtc(parts: TemporalParts): TemporalParts {
  const [year, month, day, hour, minute = 0, second = 0] = parts.components;
  const whole = Math.floor(second);
  const utc = new Date(Date.UTC(year, month - 1, day, hour, minute - (parts.offset ?? 0), whole));
  const shifted = [
    utc.getUTCFullYear(),
    utc.getUTCMonth() + 1,
    utc.getUTCDate(),
    utc.getUTCHours(),
    utc.getUTCMinutes(),
    utc.getUTCSeconds() + (second - whole),
  ];
  return { components: shifted.slice(0, parts.components.length), offset: 0 };
}

/** Negative, zero or positive as a < b, a = b, a > b; undefined when precision makes the answer unknown. */
export function compareTemporal(a: TemporalParts, b: TemporalParts): number | undefined {
  const common = Math.min(a.components.length, b.components.length);
  for (let i = 0; i < common; i++) {
    const diff = a.components[i] - b.components[i];
    if (diff !== 0) {
      return diff;
    }
  }
  return a.components.length === b.components.length ? 0 : undefined;
}
