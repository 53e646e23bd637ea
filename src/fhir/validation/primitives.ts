/**
 * Checks of FHIR primitive values in JSON: https://hl7.org/fhir/R4/datatypes.html#primitive
 * The regular expressions and length limits come from the R4 primitive StructureDefinitions (the `regex`
 * extension on `<type>.value`), translated from Java to JavaScript regex semantics. A few types get a check
 * the regex cannot express: calendar dates, integer ranges, base64, control characters.
 */
import type { StructureDefinition } from '@medplum/fhirtypes';

export type JsonKind = 'string' | 'number' | 'boolean';

export interface PrimitiveRule {
  readonly type: string;
  readonly json: JsonKind;
  /** Undefined when the value is fine, else what is wrong with it. */
  check(value: unknown): string | undefined;
}

const REGEX_EXTENSION = 'http://hl7.org/fhir/StructureDefinition/regex';

/** Java's \s is ASCII whitespace only; JavaScript's also matches NBSP and other Unicode spaces. */
const JAVA_SPACE = '[ \\t\\n\\x0B\\f\\r]';
const JAVA_NON_SPACE = '[^ \\t\\n\\x0B\\f\\r]';

/** FHIR strings SHALL NOT contain characters below U+0020 other than tab, CR and LF. */
const FORBIDDEN_CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F]/;

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

/** Builds one rule per R4 primitive type from the primitive-type StructureDefinitions. */
export function buildPrimitiveRules(definitions: StructureDefinition[]): Map<string, PrimitiveRule> {
  const rules = new Map<string, PrimitiveRule>();
  for (const sd of definitions) {
    if (sd.kind !== 'primitive-type' || !sd.type) {
      continue;
    }
    const valueElement = sd.snapshot?.element?.find((e) => e.path === `${sd.type}.value`);
    const regexSource = valueElement?.type?.[0]?.extension?.find((x) => x.url === REGEX_EXTENSION)?.valueString;
    rules.set(sd.type, makeRule(sd.type, regexSource, valueElement?.maxLength));
  }
  return rules;
}

function makeRule(type: string, regexSource: string | undefined, maxLength: number | undefined): PrimitiveRule {
  switch (type) {
    case 'boolean':
      return { type, json: 'boolean', check: (v) => (typeof v === 'boolean' ? undefined : expected('boolean', v)) };
    case 'decimal':
      return { type, json: 'number', check: (v) => checkNumber(v, -Infinity, Infinity, false) };
    case 'integer':
      return { type, json: 'number', check: (v) => checkNumber(v, INT32_MIN, INT32_MAX, true) };
    case 'positiveInt':
      return { type, json: 'number', check: (v) => checkNumber(v, 1, INT32_MAX, true) };
    case 'unsignedInt':
      return { type, json: 'number', check: (v) => checkNumber(v, 0, INT32_MAX, true) };
    case 'base64Binary':
      // The R4 regex is a per-4-characters approximation; check the actual alphabet and padding instead.
      return { type, json: 'string', check: (v) => checkString(v, type, undefined, undefined) ?? checkBase64(v as string) };
    case 'string':
    case 'markdown':
    case 'xhtml':
      // `[ \r\n\t\S]+` only says "not empty, no other whitespace characters": Java-style \S accepts all non-ASCII.
      return { type, json: 'string', check: (v) => checkString(v, type, undefined, maxLength) };
    default: {
      const regex = regexSource ? new RegExp(`^(?:${javaToJsRegex(regexSource)})$`) : undefined;
      const calendar = type === 'date' || type === 'dateTime' || type === 'instant';
      return {
        type,
        json: 'string',
        check: (v) => checkString(v, type, regex, maxLength) ?? (calendar ? checkCalendar(v as string, type) : undefined),
      };
    }
  }
}

/** Rewrites the Java regex classes \s, \S and [^\s] (ASCII whitespace in Java) for JavaScript. */
export function javaToJsRegex(source: string): string {
  return source.replaceAll('[^\\s]', JAVA_NON_SPACE).replaceAll('\\S', JAVA_NON_SPACE).replaceAll('\\s', JAVA_SPACE);
}

function expected(kind: string, value: unknown): string {
  const actual = value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
  return `expected a JSON ${kind}, found ${actual}`;
}

function checkNumber(v: unknown, min: number, max: number, integer: boolean): string | undefined {
  if (typeof v !== 'number') {
    return expected('number', v);
  }
  if (!Number.isFinite(v)) {
    return 'not a finite number';
  }
  if (integer && !Number.isInteger(v)) {
    return `${v} is not an integer`;
  }
  if (v < min || v > max) {
    return `${v} is out of range (${min} to ${max})`;
  }
  return undefined;
}

/** A UTF-16 surrogate without its pair: JSON can write it (`"\\ud800"`), but it is no character, and PostgreSQL's jsonb refuses it. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function checkString(v: unknown, type: string, regex: RegExp | undefined, maxLength: number | undefined): string | undefined {
  if (typeof v !== 'string') {
    return expected('string', v);
  }
  if (v.length === 0) {
    return 'a primitive value cannot be an empty string (omit it, or use an extension)';
  }
  // A UTF-16 code unit takes at most 3 UTF-8 bytes, so short strings need no byte count.
  if (maxLength !== undefined && v.length * 3 > maxLength && Buffer.byteLength(v, 'utf8') > maxLength) {
    return `value is longer than the permitted maximum length of ${maxLength} bytes`;
  }
  if (type !== 'xhtml' && FORBIDDEN_CONTROL.test(v)) {
    return 'contains a control character (only tab, CR and LF are allowed)';
  }
  if (LONE_SURROGATE.test(v)) {
    return 'contains an unpaired surrogate (\\ud800-\\udfff alone is not a Unicode character)';
  }
  if (regex && !regex.test(v)) {
    return `'${abbreviate(v)}' is not a valid ${type}`;
  }
  return undefined;
}

function checkBase64(v: string): string | undefined {
  const compact = v.replace(/[ \t\r\n]/g, '');
  if (compact.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(compact)) {
    return `'${abbreviate(v)}' is not valid base64`;
  }
  return undefined;
}

const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** The regexes allow day 31 of every month; dates SHALL be valid dates. */
function checkCalendar(v: string, type: string): string | undefined {
  if (v.length < 10) {
    return undefined;
  }
  const year = Number(v.slice(0, 4));
  const month = Number(v.slice(5, 7));
  const day = Number(v.slice(8, 10));
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const max = month === 2 && !leap ? 28 : DAYS_IN_MONTH[month - 1];
  return day > max ? `'${v}' is not a valid ${type}: there is no day ${day} in that month` : undefined;
}

export function abbreviate(v: string): string {
  return v.length > 60 ? `${v.slice(0, 57)}...` : v;
}
