/**
 * What FHIRPath Patch needs to know about element definitions: whether an element repeats, which types
 * it takes, and how a choice element (value[x]) is spelled in JSON. All of it comes from the base R4
 * StructureDefinitions as indexed by @medplum/core. https://hl7.org/fhir/R4/elementdefinition.html —
 * choice elements: https://hl7.org/fhir/R4/formats.html#choice
 */
import { capitalize, getElementDefinition, isPrimitiveType, tryGetDataType } from '@medplum/core';
import { loadDefinitions } from '../definitions';

/** One element of a type, as a patch sees it. */
export interface ElementInfo {
  /** Element name without [x]: `birthDate`, `deceased`, `value`. */
  name: string;
  /** FHIR path of the definition, e.g. `Patient.deceased[x]`. */
  path: string;
  isArray: boolean;
  /** A choice element (name[x]); its JSON key carries the type: deceasedBoolean. */
  choice: boolean;
  /** Allowed type codes; one for a choice element that was named with its type (valueQuantity). */
  types: string[];
}

let loaded = false;

/** Indexes the base R4 types and resources once per process, unless another module already did. */
export function ensureDefinitions(): void {
  if (loaded) return;
  loadDefinitions();
  loaded = true;
}

/**
 * The element `name` of type `typeName` (a resource, a datatype, or a backbone element's type such as
 * PatientContact), or undefined when the type has no such element. `name` may be the choice's base
 * name (`deceased`, `deceased[x]`) or its typed JSON key (`deceasedBoolean`).
 */
export function lookupElement(typeName: string, name: string): ElementInfo | undefined {
  const wanted = name.endsWith('[x]') ? name.slice(0, -3) : name;
  if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(wanted)) return undefined;
  const def = getElementDefinition(typeName, wanted);
  // The index is a plain object: 'constructor' or 'toString' find Object.prototype's members.
  if (!def || typeof def.path !== 'string' || !Array.isArray(def.type)) return undefined;
  const last = def.path.slice(def.path.lastIndexOf('.') + 1);
  const types = def.type.map((t) => t.code);
  const isArray = def.isArray ?? def.max !== 1;
  if (!last.endsWith('[x]')) {
    return last === wanted ? { name: last, path: def.path, isArray, choice: false, types } : undefined;
  }
  const base = last.slice(0, -3);
  if (wanted === base) return { name: base, path: def.path, isArray, choice: true, types };
  // getElementDefinition matches any key that starts with the base name; only a listed type is real.
  const typed = types.find((code) => base + capitalize(code) === wanted);
  return typed ? { name: base, path: def.path, isArray, choice: true, types: [typed] } : undefined;
}

/** The JSON property that holds `element` when its value has type `type`. */
export function jsonKey(element: ElementInfo, type: string): string {
  return element.choice ? element.name + capitalize(type) : element.name;
}

/** Every JSON property that may hold `element`: one, or one per type of a choice. */
export function jsonKeys(element: ElementInfo): string[] {
  return element.choice ? element.types.map((t) => jsonKey(element, t)) : [element.name];
}

/** The type of a value found under `key` for `element`: the typed suffix for a choice. */
export function typeAtKey(element: ElementInfo, key: string): string {
  if (!element.choice) return element.types[0];
  return element.types.find((t) => jsonKey(element, t) === key) ?? element.types[0];
}

export function isResourceElement(element: ElementInfo): boolean {
  return element.types.length === 1 && (element.types[0] === 'Resource' || element.types[0] === 'DomainResource');
}

/** The FHIR type named by the suffix of a Parameters `value[x]` key: valueDate -> date, valueHumanName -> HumanName. */
export function typeFromSuffix(suffix: string): string | undefined {
  const primitive = suffix.charAt(0).toLowerCase() + suffix.slice(1);
  if (isPrimitiveType(primitive)) return primitive;
  return tryGetDataType(suffix) ? suffix : undefined;
}

export { isPrimitiveType };

/** How a primitive is written in JSON. https://hl7.org/fhir/R4/json.html#primitive */
export function jsonKind(type: string): 'boolean' | 'number' | 'string' {
  if (type === 'boolean') return 'boolean';
  if (type === 'integer' || type === 'decimal' || type === 'positiveInt' || type === 'unsignedInt') return 'number';
  return 'string';
}

/** Quantity and its R4 profiles, which share one JSON shape. https://hl7.org/fhir/R4/datatypes.html#quantity */
const QUANTITIES = new Set(['Quantity', 'Age', 'Count', 'Distance', 'Duration', 'SimpleQuantity', 'MoneyQuantity']);

/**
 * Which of `allowed` a value of type `valueType` may stand for, or undefined if none: the same type,
 * a Quantity profile for a Quantity, and, where the element has a single primitive type, any primitive
 * written the same way in JSON (a valueString for a code or xhtml element, as the spec's own
 * test cases send).
 */
export function matchType(allowed: string[], valueType: string): string | undefined {
  if (allowed.includes(valueType)) return valueType;
  if (QUANTITIES.has(valueType)) {
    const quantity = allowed.find((t) => QUANTITIES.has(t));
    if (quantity) return quantity;
  }
  if (allowed.length === 1 && isPrimitiveType(allowed[0]) && isPrimitiveType(valueType)) {
    if (jsonKind(allowed[0]) === jsonKind(valueType)) return allowed[0];
  }
  return undefined;
}
