/**
 * The `value` part of a FHIRPath Patch operation: a value[x] of any type, a `resource`, or, for types
 * a Parameters value[x] cannot carry (backbone elements such as Patient.contact or Timing.repeat),
 * nested parts named after the elements of the type, "as deep as necessary".
 * https://hl7.org/fhir/R4/fhirpatch.html#anonymous — value types: https://hl7.org/fhir/R4/datatypes.html#open
 *
 * Reading the part (parseValue) needs no resource, so a malformed one is a 400. Fitting it to the
 * element it will fill (fitValue) is where a wrong type or an unknown element is found: a 422.
 */
import { badRequest, unprocessable } from '../outcomes';
import {
  isPrimitiveType,
  isResourceElement,
  jsonKey,
  jsonKeys,
  jsonKind,
  lookupElement,
  matchType,
  typeFromSuffix,
  type ElementInfo,
} from './definitions';
import { isObject } from './locate';

export type PatchValue =
  | { kind: 'typed'; type: string; value: unknown; resource: boolean }
  | { kind: 'parts'; parts: { name: string; value: PatchValue }[] };

/** Reads a value part; `label` names it in errors (e.g. "value", "value.name"). */
export function parseValue(part: unknown, label: string): PatchValue {
  if (!isObject(part)) throw badRequest(`Part '${label}' is not a Parameters part`);
  const record = part;
  const valueKeys = Object.keys(record).filter((key) => /^value[A-Z]/.test(key));
  const forms = valueKeys.length + (record.resource !== undefined ? 1 : 0) + (record.part !== undefined ? 1 : 0);
  if (forms === 0) throw badRequest(`Part '${label}' has no value[x], resource or part`);
  if (forms > 1) throw badRequest(`Part '${label}' must have exactly one of value[x], resource or part`);

  if (valueKeys.length === 1) {
    const key = valueKeys[0];
    const type = typeFromSuffix(key.slice('value'.length));
    if (!type) throw badRequest(`Part '${label}' has an unknown value type '${key}'`);
    const value = record[key];
    const shapeOk = isPrimitiveType(type) ? typeof value === jsonKind(type) : isObject(value);
    if (!shapeOk) throw badRequest(`Part '${label}': ${key} is not a valid ${type}`);
    return { kind: 'typed', type, value, resource: false };
  }
  if (record.resource !== undefined) {
    const resource = record.resource;
    if (!isObject(resource) || typeof resource.resourceType !== 'string') {
      throw badRequest(`Part '${label}': resource is not a FHIR resource`);
    }
    return { kind: 'typed', type: resource.resourceType, value: resource, resource: true };
  }
  if (!Array.isArray(record.part) || record.part.length === 0) {
    throw badRequest(`Part '${label}': part must be a non-empty list`);
  }
  const parts = (record.part as unknown[]).map((sub) => {
    if (!isObject(sub) || typeof sub.name !== 'string' || sub.name === '') {
      throw badRequest(`Part '${label}' has a part without a name`);
    }
    return { name: sub.name, value: parseValue(sub, `${label}.${sub.name}`) };
  });
  return { kind: 'parts', parts };
}

/**
 * The JSON property and value to store for `element`: the property is typed for a choice element
 * (deceased + valueBoolean -> deceasedBoolean). The value is a copy, sharing nothing with the patch.
 */
export function fitValue(value: PatchValue, element: ElementInfo, label: string): { key: string; value: unknown } {
  if (value.kind === 'typed') {
    if (isResourceElement(element) !== value.resource) {
      throw unprocessable(`A ${value.type} cannot be used for ${element.path} (${element.types.join(' | ')})`);
    }
    if (value.resource) return { key: element.name, value: structuredClone(value.value) };
    const type = matchType(element.types, value.type);
    if (!type) throw unprocessable(`A ${value.type} cannot be used for ${element.path} (${element.types.join(' | ')})`);
    return { key: jsonKey(element, type), value: structuredClone(value.value) };
  }

  if (element.choice && element.types.length > 1) {
    throw badRequest(`Part '${label}': the choice element ${element.path} needs a typed value[x], not parts`);
  }
  const type = element.types[0];
  if (isPrimitiveType(type) || isResourceElement(element)) {
    throw unprocessable(`${element.path} (${type}) cannot be given as parts`);
  }
  const result: Record<string, unknown> = {};
  for (const part of value.parts) {
    const child = lookupElement(type, part.name);
    if (!child) throw unprocessable(`${type} has no element '${part.name}'`);
    const fitted = fitValue(part.value, child, `${label}.${part.name}`);
    if (child.isArray) {
      const list = (result[fitted.key] as unknown[] | undefined) ?? [];
      list.push(fitted.value);
      result[fitted.key] = list;
    } else if (jsonKeys(child).some((key) => key in result)) {
      throw badRequest(`Part '${label}' gives the single element '${part.name}' more than once`);
    } else {
      result[fitted.key] = fitted.value;
    }
  }
  return { key: jsonKey(element, type), value: result };
}
