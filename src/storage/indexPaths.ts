/**
 * SearchParameter expressions of the shapes most R4 parameters use, compiled to plain navigation of the
 * resource instead of going through the FHIRPath engine on every write (https://hl7.org/fhir/R4/fhirpath.html):
 * - a path of element names from the resource type (`Patient.name.family`), sharing the prefixes that several
 *   parameters have in common (memoized per resource);
 * - a path filtered on an element's value, `Patient.telecom.where(system='email')`;
 * - a choice narrowed to one type, `(Observation.value as Quantity)`;
 * - a union `a | b` of these.
 * Every other expression (functions, `resolve()`, `exists()`...) is left to the FHIRPath engine. Each step does
 * what @medplum/core's FHIRPath does (the same property lookup, `ofType` by type name); test/storage/indexPaths
 * checks the compiled forms against the engine on every parameter of the Synthea and conformance resources.
 */
import { getElementDefinition, getTypedPropertyValue, type FhirPathAtom, type TypedValue } from '@medplum/core';

/** Evaluates a compiled expression on the resource (`input`); `memo` holds path prefixes for that resource. */
export type Program = (input: TypedValue[], memo: Map<string, TypedValue[]>) => TypedValue[];

interface Node {
  name?: unknown;
  args?: Node[];
  operator?: unknown;
  left?: Node;
  right?: Node;
  value?: TypedValue;
}

/** The compiled form of a parsed expression, or undefined when only the FHIRPath engine can evaluate it. */
export function compileExpression(atom: FhirPathAtom, resourceType: string): Program | undefined {
  return compile((atom as unknown as { child?: Node }).child, resourceType);
}

function compile(node: Node | undefined, resourceType: string): Program | undefined {
  if (!node) return undefined;
  if (node.operator === '|') {
    const left = compile(node.left, resourceType);
    const right = compile(node.right, resourceType);
    // FHIRPath's union also drops duplicates; equal values give equal index rows, which the indexer drops
    return left && right ? (input, memo) => [...left(input, memo), ...right(input, memo)] : undefined;
  }
  if (node.operator === 'as') {
    const type = symbol(node.right);
    const left = compile(node.left, resourceType);
    return left && type ? (input, memo) => left(input, memo).filter((v) => v.type === type) : undefined;
  }
  const path = plainPath(node);
  if (path) {
    if (path.length < 2 || path[0] !== resourceType) return undefined;
    const keys = path.map((_, i) => path.slice(0, i + 1).join('.'));
    return (input, memo) => navigate(input, path, keys, path.length, memo);
  }
  const where = node.operator === '.' ? equalityFilter(node.right) : undefined;
  const base = where && compile(node.left, resourceType);
  if (!where || !base) return undefined;
  return (input, memo) =>
    base(input, memo).filter((tv) => {
      const found = typedProperty(tv, where.name);
      const one = Array.isArray(found) ? (found.length === 1 ? found[0] : undefined) : found;
      return one !== undefined && primitive(one.value) === where.literal;
    });
}

const symbol = (node: Node | undefined): string | undefined =>
  node && typeof node.name === 'string' && node.args === undefined && node.operator === undefined ? node.name : undefined;

/** The steps of a path made only of element names joined by `.`. */
function plainPath(node: Node | undefined): string[] | undefined {
  const name = symbol(node);
  if (name !== undefined) return name.startsWith('$') || name.startsWith('%') ? undefined : [name];
  if (node?.operator !== '.') return undefined;
  const left = plainPath(node.left);
  const right = symbol(node.right);
  return left && right !== undefined && !right.startsWith('$') && !right.startsWith('%') ? [...left, right] : undefined;
}

/** `where(<element> = '<string>')`: the element and the string. */
function equalityFilter(node: Node | undefined): { name: string; literal: string } | undefined {
  if (node?.name !== 'where' || node.args?.length !== 1) return undefined;
  const test = node.args[0];
  const name = test.operator === '=' ? symbol(test.left) : undefined;
  const literal = test.right?.value;
  return name !== undefined && literal?.type === 'string' && typeof literal.value === 'string' ? { name, literal: literal.value } : undefined;
}

/** A primitive's value (a primitive with an extension comes back from FHIRPath as a String object). */
const primitive = (v: unknown): unknown => (v instanceof String || v instanceof Number || v instanceof Boolean ? v.valueOf() : v);

/**
 * The values at the first `length` steps of a plain path, as FHIRPath's symbol navigation gives them (a step
 * naming the resource's own type selects it; otherwise the typed property value, arrays flattened, empty
 * values dropped). Prefixes are memoized in `memo` for the resource at hand.
 */
function navigate(input: TypedValue[], path: string[], keys: string[], length: number, memo: Map<string, TypedValue[]>): TypedValue[] {
  if (length === 1) return input;
  const key = keys[length - 1];
  const known = memo.get(key);
  if (known) return known;
  const name = path[length - 1];
  const out: TypedValue[] = [];
  for (const tv of navigate(input, path, keys, length - 1, memo)) {
    const v = tv.value;
    if (!v || typeof v !== 'object') continue;
    if ((v as { resourceType?: unknown }).resourceType === name) {
      out.push(tv);
      continue;
    }
    const found = typedProperty(tv, name);
    for (const item of Array.isArray(found) ? found : found ? [found] : []) {
      if (item?.value !== undefined) out.push(item);
    }
  }
  memo.set(key, out);
  return out;
}

/** The JSON keys a property of a type may take (one per type of a choice element `value[x]`), computed once. */
const propertyKeyCache = new Map<string, Map<string, { key: string; type: string }[] | null>>();

function propertyKeys(type: string, name: string): { key: string; type: string }[] | null {
  let ofType = propertyKeyCache.get(type);
  if (!ofType) propertyKeyCache.set(type, (ofType = new Map()));
  let keys = ofType.get(name);
  if (keys === undefined) {
    const element = getElementDefinition(type, name);
    const last = element ? element.path.slice(element.path.lastIndexOf('.') + 1) : '';
    keys = element?.type?.length
      ? element.type.map((t) => ({ key: last.replace('[x]', t.code.charAt(0).toUpperCase() + t.code.slice(1)), type: t.code }))
      : null;
    ofType.set(name, keys);
  }
  return keys;
}

const isEmpty = (v: unknown): boolean =>
  v === undefined || v === null || v === '' || (typeof v === 'object' && (Array.isArray(v) ? v.length === 0 : Object.keys(v).length === 0));

/**
 * `getTypedPropertyValue` of @medplum/core (FHIRPath's property navigation), with the element's JSON keys looked
 * up once per (type, property) instead of on every call. A primitive with an extension (`_given`), or a type
 * medplum has no element for, goes to medplum itself.
 */
export function typedProperty(tv: TypedValue, name: string): TypedValue[] | TypedValue | undefined {
  const keys = propertyKeys(tv.type, name);
  const obj = tv.value as Record<string, unknown> | undefined;
  if (!keys || !obj || typeof obj !== 'object') return unwrapped(getTypedPropertyValue(tv, name));
  for (const { key, type } of keys) {
    if (obj['_' + key] !== undefined) return unwrapped(getTypedPropertyValue(tv, name));
    const v = obj[key];
    if (v === undefined) continue;
    if (isEmpty(v)) return undefined;
    return Array.isArray(v) ? v.map((item) => typed(item, type)) : typed(v, type);
  }
  return undefined;
}

/**
 * medplum merges a primitive's extensions into a String (Number, Boolean) object; the FHIRPath engine hands on
 * the primitive value, and so does this.
 */
function unwrapped(found: TypedValue[] | TypedValue | undefined): TypedValue[] | TypedValue | undefined {
  const one = (tv: TypedValue): TypedValue => (primitive(tv.value) === tv.value ? tv : { ...tv, value: primitive(tv.value) });
  return Array.isArray(found) ? found.map(one) : found && one(found);
}

const typed = (value: unknown, type: string): TypedValue => ({
  type: type === 'Resource' && value && typeof value === 'object' && 'resourceType' in value ? String(value.resourceType) : type,
  value,
});
