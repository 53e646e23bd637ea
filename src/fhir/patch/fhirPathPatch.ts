/**
 * FHIRPath Patch: a Parameters resource whose `operation` parameters add, insert, delete, replace and
 * move elements named by FHIRPath. https://hl7.org/fhir/R4/fhirpatch.html (test cases:
 * fhir-test-cases r5/patch/fhir-path-tests.xml). Used by the patch interaction with a
 * Parameters body: https://hl7.org/fhir/R4/http.html#patch
 *
 * The whole patch is read before anything is applied, so a malformed operation anywhere is a 400 and
 * nothing else happens. Operations then apply in order to one copy of the resource; the first that
 * does not fit the resource is a 422. Validating the result against its profiles is the caller's job.
 */
import type { FhirPathAtom } from '@medplum/core';
import type { Parameters, Resource } from '@medplum/fhirtypes';
import { badRequest, OperationOutcomeError, outcome, unprocessable } from '../outcomes';
import { ensureDefinitions, jsonKeys, lookupElement, type ElementInfo } from './definitions';
import { isObject, locate, locateList, parsePath, primitiveElement, rootLocation, type Location } from './locate';
import { fitValue, parseValue, type PatchValue } from './values';

type OperationType = 'add' | 'insert' | 'delete' | 'replace' | 'move';

/** Parts each operation type needs. https://hl7.org/fhir/R4/fhirpatch.html#concept */
const REQUIRED: Record<OperationType, string[]> = {
  add: ['path', 'name', 'value'],
  insert: ['path', 'value', 'index'],
  delete: ['path'],
  replace: ['path', 'value'],
  move: ['path', 'source', 'destination'],
};
const PART_NAMES = new Set(['type', 'path', 'name', 'value', 'index', 'source', 'destination']);

interface Operation {
  /** `Parameters.parameter[n]`, for the OperationOutcome's expression. */
  where: string;
  type: OperationType;
  pathText: string;
  path: FhirPathAtom;
  name?: string;
  value?: PatchValue;
  index?: number;
  source?: number;
  destination?: number;
}

/**
 * Applies a FHIRPath Patch to a copy of `resource` and returns the copy.
 * 400 for a malformed Parameters (no operations, unknown type or part, missing part, bad FHIRPath);
 * 422 when an operation does not fit the resource (path matches nothing or too much, wrong value type,
 * a single element already present, index out of range).
 */
export function applyFhirPathPatch(resource: Resource, patch: Parameters): Resource {
  ensureDefinitions();
  const operations = readOperations(patch);
  const result = structuredClone(resource);
  const root = rootLocation(result);
  for (const operation of operations) {
    try {
      APPLY[operation.type](root, operation);
    } catch (err) {
      throw located(err, operation.where, `${operation.type} '${operation.pathText}'`);
    }
  }
  return result;
}

function readOperations(patch: unknown): Operation[] {
  if (!isObject(patch) || patch.resourceType !== 'Parameters') {
    throw badRequest('FHIRPath Patch must be a Parameters resource');
  }
  const parameters = patch.parameter;
  if (!Array.isArray(parameters) || parameters.length === 0) {
    throw badRequest('FHIRPath Patch Parameters has no operation parameter');
  }
  return parameters.map((parameter: unknown, n) => {
    const where = `Parameters.parameter[${n}]`;
    try {
      return readOperation(parameter, where);
    } catch (err) {
      throw located(err, where, 'operation');
    }
  });
}

function readOperation(parameter: unknown, where: string): Operation {
  if (!isObject(parameter) || parameter.name !== 'operation') {
    throw badRequest(`every parameter of a FHIRPath Patch must be named 'operation'`);
  }
  if (!Array.isArray(parameter.part) || parameter.part.length === 0) throw badRequest('the operation has no parts');
  const parts = new Map<string, Part>();
  for (const part of parameter.part as unknown[]) {
    if (!isObject(part) || typeof part.name !== 'string') throw badRequest('every part needs a name');
    if (!PART_NAMES.has(part.name)) throw badRequest(`unknown part '${part.name}'`);
    if (parts.has(part.name)) throw badRequest(`part '${part.name}' is given more than once`);
    parts.set(part.name, part);
  }

  const typePart = parts.get('type');
  if (!typePart) throw badRequest(`the operation has no 'type' part`);
  const type = typePart.valueCode ?? typePart.valueString;
  if (typeof type !== 'string' || !Object.hasOwn(REQUIRED, type)) {
    throw badRequest(`unknown FHIRPath Patch operation type '${String(type)}'`);
  }
  for (const name of REQUIRED[type as OperationType]) {
    if (!parts.has(name)) throw badRequest(`the ${type} operation needs a '${name}' part`);
  }

  const pathText = text(parts.get('path'), 'path');
  const operation: Operation = { where, type: type as OperationType, pathText, path: parsePath(pathText) };
  if (type === 'add') operation.name = text(parts.get('name'), 'name');
  if (type === 'add' || type === 'insert' || type === 'replace') {
    operation.value = parseValue(parts.get('value'), 'value');
  }
  if (type === 'insert') operation.index = integer(parts.get('index'), 'index');
  if (type === 'move') {
    operation.source = integer(parts.get('source'), 'source');
    operation.destination = integer(parts.get('destination'), 'destination');
  }
  return operation;
}

/** One part of an operation, not yet checked against ParametersParameter's shape. */
type Part = Record<string, unknown>;

function text(part: Part | undefined, name: string): string {
  const value = part?.valueString ?? part?.valueCode;
  if (typeof value !== 'string' || value.trim() === '') throw badRequest(`part '${name}' needs a valueString`);
  return value;
}

function integer(part: Part | undefined, name: string): number {
  const value = part?.valueInteger ?? part?.valueUnsignedInt ?? part?.valuePositiveInt;
  if (typeof value !== 'number' || !Number.isInteger(value)) throw badRequest(`part '${name}' needs a valueInteger`);
  return value;
}

const APPLY: Record<OperationType, (root: Location, op: Operation) => void> = {
  /** Appends to a repeating element, or sets a single one that has no value yet. */
  add(root, op) {
    const found = single(locate(root, op.path), 'add');
    // Adding an extension (or id) to a primitive adds it to the `_name` object beside it.
    const owner = isObject(found.value) ? found : (primitiveElement(found, true) ?? found);
    const name = op.name as string;
    const element = elementOf(owner, name);
    forbidIdChange(root, owner, element.name);
    const { key, value } = fitValue(op.value as PatchValue, element, 'value');
    const target = owner.value as Record<string, unknown>;
    if (element.isArray) {
      const list = (target[key] as unknown[] | undefined) ?? [];
      list.push(value);
      target[key] = list;
      const extensions = target[`_${key}`];
      if (Array.isArray(extensions)) extensions.push(null);
    } else if (jsonKeys(lookupElement(owner.type, element.name) ?? element).some((k) => target[k] != null)) {
      throw unprocessable(`${element.path} is not repeating and already has a value`);
    } else {
      target[key] = value;
    }
  },

  /** Inserts into the list the path names, at 0..length. */
  insert(root, op) {
    const { owner, element, key, list } = listAt(root, op);
    const index = op.index as number;
    if (index < 0 || index > list.length) {
      throw unprocessable(`index ${index} is out of range: the list has ${list.length} element(s)`);
    }
    const fitted = fitValue(op.value as PatchValue, element, 'value');
    const target = owner.value as Record<string, unknown>;
    list.splice(index, 0, fitted.value);
    target[key] = list;
    const extensions = target[`_${key}`];
    if (Array.isArray(extensions)) extensions.splice(index, 0, null);
  },

  /** Removes the one element the path selects; nothing to do when it selects none. */
  delete(root, op) {
    const found = locate(root, op.path);
    if (found.length === 0) return;
    const target = single(found, 'delete');
    if (!target.parent) throw badRequest('a patch cannot delete the resource itself');
    forbidIdChange(root, target.parent, target.key);
    remove(target);
    removeIfEmpty(target.parent);
  },

  /** Puts the value in place of the one element the path selects (a choice may change type). */
  replace(root, op) {
    const target = single(locate(root, op.path), 'replace');
    if (!target.parent || !target.element) throw badRequest('a patch cannot replace the resource itself');
    forbidIdChange(root, target.parent, target.key);
    const { key, value } = fitValue(op.value as PatchValue, target.element, 'value');
    const owner = target.parent.value as Record<string, unknown>;
    if (target.index !== undefined) {
      (owner[target.key] as unknown[])[target.index] = value;
    } else {
      if (key !== target.key) {
        delete owner[target.key];
        delete owner[`_${target.key}`];
      }
      owner[key] = value;
    }
  },

  /** Moves one item of the list the path names from `source` to `destination` (both 0..length-1). */
  move(root, op) {
    const { owner, key, list } = listAt(root, op);
    const source = op.source as number;
    const destination = op.destination as number;
    for (const [name, index] of [
      ['source', source],
      ['destination', destination],
    ] as const) {
      if (index < 0 || index >= list.length) {
        throw unprocessable(`${name} ${index} is out of range: the list has ${list.length} element(s)`);
      }
    }
    list.splice(destination, 0, ...list.splice(source, 1));
    const extensions = (owner.value as Record<string, unknown>)[`_${key}`];
    if (Array.isArray(extensions)) extensions.splice(destination, 0, ...extensions.splice(source, 1));
  },
};

/** The one location an operation works on; 422 for none or several ("must return a single element"). */
function single(found: Location[], type: OperationType): Location {
  if (found.length === 0) throw unprocessable(`no element matches the path`);
  if (found.length > 1) throw unprocessable(`the path matches ${found.length} elements; ${type} needs exactly one`);
  return found[0];
}

function elementOf(owner: Location, name: string): ElementInfo {
  if (!isObject(owner.value))
    throw unprocessable(`the path selects a ${owner.type} value, which has no element '${name}'`);
  const element = lookupElement(owner.type, name);
  if (!element) throw unprocessable(`${owner.type} has no element '${name}'`);
  return element;
}

/** For insert and move: the list the path names, with its owner; an absent list is empty. */
function listAt(
  root: Location,
  op: Operation,
): { owner: Location; element: ElementInfo; key: string; list: unknown[] } {
  const named = locateList(root, op.path);
  if (!named) throw badRequest(`the path of ${op.type} must end with the name of a repeating element`);
  const owner = single(named.owners, op.type);
  const element = elementOf(owner, named.name);
  if (!element.isArray) throw unprocessable(`${element.path} is not a repeating element`);
  const key = element.name;
  const current = (owner.value as Record<string, unknown>)[key];
  return { owner, element, key, list: Array.isArray(current) ? current : [] };
}

/** Like JSON Patch here, a FHIRPath Patch may not change the resource's own id (a contained one's is fine). */
function forbidIdChange(root: Location, owner: Location | undefined, name: string): void {
  if (owner === root && name === 'id') throw badRequest('a patch must not change the id of the resource');
}

/** Takes the value out of its object or list, with the `_name` that holds a primitive's id and extensions. */
function remove(location: Location): void {
  const owner = (location.parent as Location).value as Record<string, unknown>;
  const { key, index } = location;
  if (location.companion && index !== undefined) {
    // A primitive's `_name` entry keeps its place in the list: it becomes null, the list goes when all are.
    const list = owner[key] as unknown[];
    list[index] = null;
    if (list.every((e) => e === null)) delete owner[key];
    return;
  }
  if (index === undefined) {
    delete owner[key];
    delete owner[`_${key}`];
    return;
  }
  const list = owner[key] as unknown[];
  list.splice(index, 1);
  if (list.length === 0) delete owner[key];
  const extensions = owner[`_${key}`];
  if (Array.isArray(extensions)) {
    extensions.splice(index, 1);
    if (extensions.every((e) => e === null)) delete owner[`_${key}`];
  }
}

/**
 * FHIR has no empty elements (ele-1), so an element left without content by a delete goes too, and so
 * on up: the spec's "Delete Nested Primitive #2" case drops contact.name when its only text goes.
 */
function removeIfEmpty(location: Location | undefined): void {
  let current = location;
  while (current?.parent && isObject(current.value) && Object.keys(current.value).length === 0) {
    remove(current);
    current = current.parent;
  }
}

/** Puts the operation in an error from deeper down: its expression and a diagnostics prefix. */
function located(err: unknown, where: string, what: string): unknown {
  if (!(err instanceof OperationOutcomeError)) return err;
  const issue = err.outcome.issue?.[0];
  if (!issue || issue.expression) return err;
  return new OperationOutcomeError(
    err.status,
    outcome('error', issue.code, `${where} (${what}): ${issue.diagnostics ?? ''}`, where),
  );
}
