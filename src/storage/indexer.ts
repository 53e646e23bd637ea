/**
 * Derives the search index rows of a resource at write time, in the same statement as the write: for every
 * SearchParameter of the type (R4 plus the custom ones of fhir-profiles/), its FHIRPath expression is
 * evaluated and each value converted to rows of the side table of its type (migrations/0002_search_index.sql).
 * Also collects every local reference anywhere in the resource, for referential integrity.
 * https://hl7.org/fhir/R4/search.html — https://hl7.org/fhir/R4/searchparameter.html
 */
import {
  evalFhirPathTyped,
  getParsedExpressionForResourceType,
  getSearchParameters,
  parseFhirPath,
  toTypedValue,
  type FhirPathAtom,
  type TypedValue,
} from '@medplum/core';
import type { Resource, SearchParameter } from '@medplum/fhirtypes';
import { compileExpression, type Program } from './indexPaths';
import { dateRange, indexKey, indexPrefix, normalizeString, numberRange } from './values';

export interface TokenRow {
  code: string;
  system: string | null;
  value: string | null;
  /** Lower-cased, accent-free display/text for :text. */
  text: string | null;
  typeSystem: string | null;
  typeCode: string | null;
}
export interface StringRow {
  code: string;
  value: string;
  exact: string;
}
export interface DateRow {
  code: string;
  start: string;
  end: string;
}
export interface NumberRow {
  code: string;
  value: number;
  low: number;
  high: number;
}
export interface QuantityRow extends NumberRow {
  system: string | null;
  unitCode: string | null;
  unit: string | null;
}
export interface SearchReferenceRow {
  code: string;
  targetType: string | null;
  targetId: string | null;
  url: string | null;
  identifierSystem: string | null;
  identifierValue: string | null;
}
export interface UriRow {
  code: string;
  value: string;
}
export interface PositionRow {
  latitude: number;
  longitude: number;
}

/** Rows of the value tables (every index table but position). */
export interface ValueRows {
  token: TokenRow[];
  string: StringRow[];
  date: DateRow[];
  number: NumberRow[];
  quantity: QuantityRow[];
  reference: SearchReferenceRow[];
  uri: UriRow[];
}

/** A component value of a composite parameter: `element` numbers the element it came from. */
export type CompositeRows = { [K in keyof ValueRows]: (ValueRows[K][number] & { element: number })[] };

export interface IndexRows extends ValueRows {
  position: PositionRow[];
  /**
   * Composite parameters (https://hl7.org/fhir/R4/search.html#composite): per element of the parameter's
   * expression (e.g. each Observation.component), the values of each component, under the code
   * `<code>$<component index>`, so a search can require all components to come from one element.
   */
  composite: CompositeRows;
}

export interface ReferenceRow {
  targetType: string;
  targetId: string;
}

interface CompiledParam {
  code: string;
  type: SearchParameter['type'];
  atom: FhirPathAtom;
  /** The expression compiled to plain navigation (src/storage/indexPaths.ts); without it, the FHIRPath engine. */
  program?: Program;
  /** A composite parameter's components, evaluated on each element its expression selects. */
  components?: CompiledComponent[];
}

interface CompiledComponent {
  /** `<composite code>$<index>` */
  code: string;
  type: SearchParameter['type'];
  atom: FhirPathAtom;
}

/** The components of a composite parameter, each with the type of the SearchParameter it is defined by. */
function compileComponents(sp: SearchParameter, all: Record<string, SearchParameter>): CompiledComponent[] | undefined {
  const components = (sp.component ?? []).map((c, i) => {
    const definition = Object.values(all).find((x) => x.url === c.definition);
    if (!definition || !c.expression || definition.type === 'composite' || definition.type === 'special') return undefined;
    return { code: `${sp.code}$${i}`, type: definition.type, atom: parseFhirPath(c.expression) };
  });
  return components.length > 0 && components.every((c) => c !== undefined) ? (components as CompiledComponent[]) : undefined;
}

/** Parameters stored as columns of `resources`. */
const NOT_INDEXED = new Set(['_id', '_lastUpdated']);

const paramCache = new Map<string, CompiledParam[]>();

/** The indexed search parameters of a type with their parsed expressions (compiled once per type). */
export function indexedParams(resourceType: string): CompiledParam[] {
  let compiled = paramCache.get(resourceType);
  if (!compiled) {
    compiled = [];
    const all = getSearchParameters(resourceType) ?? {};
    for (const [code, sp] of Object.entries(all)) {
      if (NOT_INDEXED.has(code) || !sp.expression) continue;
      if (sp.type === 'special' && !(resourceType === 'Location' && code === 'near')) continue;
      try {
        if (sp.type === 'composite') {
          // parsed whole: the per-type form drops a bare `Observation` from `Observation | Observation.component`
          const components = compileComponents({ ...sp, code }, all);
          if (components) compiled.push({ code, type: sp.type, atom: parseFhirPath(sp.expression), components });
          continue;
        }
        const atom = getParsedExpressionForResourceType(resourceType, sp.expression);
        compiled.push({ code, type: sp.type, atom, program: compileExpression(atom, resourceType) });
      } catch {
        // An expression medplum cannot parse indexes nothing; searching it then matches nothing.
      }
    }
    paramCache.set(resourceType, compiled);
  }
  return compiled;
}

/** Forgets compiled parameters, after custom SearchParameters were (re)loaded. */
export function clearIndexedParams(): void {
  paramCache.clear();
}

export function emptyIndexRows(): IndexRows {
  return { ...emptyValueRows(), position: [], composite: emptyValueRows() };
}

function emptyValueRows<T extends ValueRows | CompositeRows>(): T {
  return { token: [], string: [], date: [], number: [], quantity: [], reference: [], uri: [] } as unknown as T;
}

/** `fhirPathOnly`: every expression through the FHIRPath engine (what the compiled forms are tested against). */
export function indexRows(resource: Resource, fhirBaseUrl: string, options: { fhirPathOnly?: boolean } = {}): IndexRows {
  const rows = emptyIndexRows();
  const input = [toTypedValue(resource)];
  const navigated = new Map<string, TypedValue[]>();
  for (const param of indexedParams(resource.resourceType)) {
    let values: TypedValue[];
    try {
      values = param.program && !options.fhirPathOnly ? param.program(input, navigated) : evalFhirPathTyped(param.atom, input);
    } catch {
      continue; // an expression that does not apply to this instance indexes nothing
    }
    if (param.components) {
      values.forEach((element, n) => addComponents(rows.composite, param.components!, element, n, fhirBaseUrl));
      continue;
    }
    if (values.length === 0) continue;
    const table = TABLE_OF[param.type];
    const from = table ? rows[table].length : 0;
    for (const tv of values) addValue(rows, param, tv, fhirBaseUrl);
    if (table) dedupeFrom(rows[table] as object[], from);
  }
  dedupeFrom(rows.position, 0);
  for (const table of Object.keys(rows.composite) as (keyof CompositeRows)[]) dedupeFrom(rows.composite[table] as object[], 0);
  return rows;
}

/** The table a parameter type's rows go to (a parameter's rows are deduplicated among themselves). */
const TABLE_OF: Partial<Record<SearchParameter['type'], keyof ValueRows>> = {
  token: 'token',
  string: 'string',
  date: 'date',
  number: 'number',
  quantity: 'quantity',
  reference: 'reference',
  uri: 'uri',
};

/** Removes rows equal (field by field) to an earlier row at or after `from`; lists here are short. */
function dedupeFrom<T extends object>(list: T[], from: number): void {
  for (let i = list.length - 1; i > from; i--) {
    const row = list[i] as Record<string, unknown>;
    for (let j = from; j < i; j++) {
      const other = list[j] as Record<string, unknown>;
      let same = true;
      for (const key in row) {
        if (row[key] !== other[key]) {
          same = false;
          break;
        }
      }
      if (same) {
        list.splice(i, 1);
        break;
      }
    }
  }
}

/** The rows of each component of one element of a composite parameter, tagged with the element's number. */
function addComponents(rows: CompositeRows, components: CompiledComponent[], element: TypedValue, n: number, fhirBaseUrl: string): void {
  for (const component of components) {
    const own = emptyIndexRows();
    let values: TypedValue[];
    try {
      values = evalFhirPathTyped(component.atom, [element]);
    } catch {
      continue;
    }
    for (const tv of values) addValue(own, component, tv, fhirBaseUrl);
    for (const table of Object.keys(rows) as (keyof CompositeRows)[]) {
      for (const row of own[table]) (rows[table] as object[]).push({ ...row, element: n });
    }
  }
}

function addValue(rows: IndexRows, param: Pick<CompiledParam, 'code' | 'type'>, tv: TypedValue, fhirBaseUrl: string): void {
  const { code } = param;
  const v = tv.value;
  if (v === undefined || v === null) return;
  switch (param.type) {
    case 'token':
      rows.token.push(...tokens(code, tv));
      return;
    case 'string':
      for (const s of strings(tv)) rows.string.push({ code, value: indexPrefix(normalizeString(s)), exact: s });
      return;
    case 'date': {
      const range = dates(tv);
      if (range) rows.date.push({ code, start: range[0], end: range[1] });
      return;
    }
    case 'number': {
      const n = typeof v === 'number' ? v : typeof v === 'object' && typeof v.value === 'number' ? v.value : Number(v);
      if (Number.isFinite(n)) rows.number.push({ code, value: n, ...numberRange(n) });
      return;
    }
    case 'quantity':
      if (typeof v === 'object' && typeof v.value === 'number') {
        rows.quantity.push({
          code,
          value: v.value,
          ...numberRange(v.value),
          system: v.system ?? (v.currency ? 'urn:iso:std:iso:4217' : null),
          unitCode: v.code ?? v.currency ?? null,
          unit: v.unit ?? null,
        });
      }
      return;
    case 'reference':
      rows.reference.push(...references(code, tv, fhirBaseUrl));
      return;
    case 'uri':
      if (typeof v === 'string') rows.uri.push({ code, value: indexKey(v) });
      return;
    case 'special':
      if (typeof v === 'object' && typeof v.latitude === 'number' && typeof v.longitude === 'number') {
        rows.position.push({ latitude: v.latitude, longitude: v.longitude });
      }
      return;
  }
}

const token = (code: string, system: unknown, value: unknown, text?: unknown, type?: { system?: string; code?: string }): TokenRow => ({
  code,
  system: typeof system === 'string' ? indexKey(system) : null,
  value: value === undefined || value === null ? null : indexKey(String(value)),
  text: typeof text === 'string' && text ? normalizeString(text) : null,
  typeSystem: type?.system ?? null,
  typeCode: type?.code ?? null,
});

/** Token values by datatype (https://hl7.org/fhir/R4/search.html#token). */
function tokens(code: string, tv: TypedValue): TokenRow[] {
  const v = tv.value;
  switch (tv.type) {
    case 'Coding':
      return [token(code, v.system, v.code, v.display)];
    case 'CodeableConcept': {
      const out: TokenRow[] = (v.coding ?? []).map((c: { system?: string; code?: string; display?: string }) =>
        token(code, c.system, c.code, c.display ?? v.text),
      );
      if (out.length === 0 && v.text) out.push(token(code, null, null, v.text));
      return out;
    }
    case 'Identifier': {
      const typeCoding = v.type?.coding?.[0];
      return [token(code, v.system, v.value, v.type?.text ?? typeCoding?.display, typeCoding)];
    }
    case 'ContactPoint':
      return [token(code, v.system, v.value)];
    case 'Reference':
      return v.identifier ? [token(code, v.identifier.system, v.identifier.value)] : [];
    default:
      return typeof v === 'object' ? [] : [token(code, null, v)];
  }
}

/** String values: the parts of HumanName and Address match too (https://hl7.org/fhir/R4/search.html#string). */
function strings(tv: TypedValue): string[] {
  const v = tv.value;
  if (typeof v === 'string') return [v];
  if (typeof v !== 'object') return [String(v)];
  if (tv.type === 'HumanName') {
    return [v.text, v.family, ...(v.given ?? []), ...(v.prefix ?? []), ...(v.suffix ?? [])].filter(isText);
  }
  if (tv.type === 'Address') {
    return [v.text, ...(v.line ?? []), v.city, v.district, v.state, v.postalCode, v.country].filter(isText);
  }
  return Object.values(v).filter(isText);
}

const isText = (x: unknown): x is string => typeof x === 'string' && x.length > 0;

/** The range a date-typed value covers (https://hl7.org/fhir/R4/search.html#date). */
function dates(tv: TypedValue): [string, string] | undefined {
  const v = tv.value;
  if (typeof v === 'string') return dateRange(v);
  if (typeof v !== 'object') return undefined;
  if (tv.type === 'Period') {
    const start = v.start ? dateRange(v.start)?.[0] : undefined;
    const end = v.end ? dateRange(v.end)?.[1] : undefined;
    if (!start && !end) return undefined;
    return [start ?? '-infinity', end ?? 'infinity'];
  }
  if (tv.type === 'Timing') {
    const events = ((v.event ?? []) as string[]).map((e) => dateRange(e)).filter((r): r is [string, string] => !!r);
    if (events.length === 0) return undefined;
    return [events.map((e) => e[0]).sort()[0], events.map((e) => e[1]).sort().reverse()[0]];
  }
  return undefined;
}

const LOCAL_REF = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[A-Za-z0-9\-.]{1,64})?$/;

export function parseLocalReference(ref: string, fhirBaseUrl: string): ReferenceRow | undefined {
  const relative = ref.startsWith(fhirBaseUrl + '/') ? ref.slice(fhirBaseUrl.length + 1) : ref;
  const m = LOCAL_REF.exec(relative);
  return m ? { targetType: m[1], targetId: m[2] } : undefined;
}

function references(code: string, tv: TypedValue, fhirBaseUrl: string): SearchReferenceRow[] {
  const v = tv.value;
  const row = (targetType: string | null, targetId: string | null, url: string | null, idSystem?: string, idValue?: string) => ({
    code,
    targetType,
    targetId,
    url: url === null ? null : indexKey(url),
    identifierSystem: idSystem ?? null,
    identifierValue: idValue ?? null,
  });
  if (typeof v === 'string') {
    // canonical / uri references
    const local = parseLocalReference(v, fhirBaseUrl);
    return [local ? row(local.targetType, local.targetId, null) : row(null, null, v)];
  }
  if (typeof v !== 'object') return [];
  const out: SearchReferenceRow[] = [];
  if (typeof v.reference === 'string' && !v.reference.startsWith('#')) {
    const local = parseLocalReference(v.reference, fhirBaseUrl);
    out.push(local ? row(local.targetType, local.targetId, null) : row(null, null, v.reference));
  }
  if (v.identifier && (v.identifier.system || v.identifier.value)) {
    out.push(row(null, null, null, v.identifier.system, v.identifier.value));
  }
  return out;
}

/**
 * Local literal references (`Type/id`, `Type/id/_history/n`, or absolute under our own FHIR base),
 * anywhere in the resource, contained resources included. Contained (`#x`), `urn:` and external URLs are skipped.
 */
export function referenceRows(resource: Resource, fhirBaseUrl: string): ReferenceRow[] {
  const rows = new Map<string, ReferenceRow>();
  walkReferences(resource, (ref) => {
    const target = parseLocalReference(ref, fhirBaseUrl);
    if (target) rows.set(`${target.targetType}/${target.targetId}`, target);
  });
  return [...rows.values()];
}

/** Calls fn for every Reference.reference string in a JSON tree. */
export function walkReferences(node: unknown, fn: (reference: string, holder: Record<string, unknown>) => void): void {
  if (Array.isArray(node)) {
    for (const item of node) walkReferences(item, fn);
  } else if (node && typeof node === 'object') {
    const obj = node as Record<string, unknown>;
    for (const [key, value] of Object.entries(obj)) {
      if (key === 'reference' && typeof value === 'string') fn(value, obj);
      else if (value && typeof value === 'object') walkReferences(value, fn);
    }
  }
}
