/**
 * Evaluates the `path` of a FHIRPath Patch operation to locations in the resource: not only the values
 * FHIRPath would return but where each one lives (object, property, list index), so that it can be
 * replaced, deleted or added to. https://hl7.org/fhir/R4/fhirpatch.html — https://hl7.org/fhirpath/N1/
 *
 * A patch path is a chain of navigation: the resource type, element names, indexers and the functions
 * that select some of their input (where, first, last, tail, skip, take, single, ofType, as,
 * extension, and resolve() to a contained resource). Anything inside a function's arguments is
 * ordinary FHIRPath, evaluated by @medplum/core on the candidate element.
 */
import {
  AsAtom,
  DotAtom,
  evalFhirPathTyped,
  FhirPathAtom,
  FunctionAtom,
  IndexerAtom,
  initFhirPathParserBuilder,
  SymbolAtom,
  toJsBoolean,
  Tokenizer,
  type Atom,
  type TypedValue,
} from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { badRequest, OperationOutcomeError, unprocessable } from '../outcomes';
import { jsonKeys, lookupElement, typeAtKey, type ElementInfo } from './definitions';

/** Where a value sits in the resource being patched. */
export interface Location {
  value: unknown;
  /** FHIR type of the value: Patient, HumanName, PatientContact, string, ... */
  type: string;
  /** The object holding the value; undefined for the resource itself. */
  parent?: Location;
  /** JSON property of `parent.value` that holds the value (typed for a choice: valueQuantity). */
  key: string;
  /** Position in `parent.value[key]` when that is a list. */
  index?: number;
  /** Definition of `parent.value[key]`. */
  element?: ElementInfo;
  /** The `_name` object beside a primitive, holding its id and extensions. */
  companion?: boolean;
}

/** Keywords and multi-character operators of @medplum/core's FHIRPath tokenizer (see parseFhirPath). */
const KEYWORDS = ['true', 'false'];
const OPERATORS = ['!=', '!~', '<=', '>=', '{}', '->'];

/**
 * Parses a FHIRPath expression; 400 if it does not parse. parseFhirPath stops quietly at the first
 * token it cannot use ("Patient name" parses as "Patient"), so this parse also insists on using them all.
 */
export function parsePath(expression: string): FhirPathAtom {
  let atom: FhirPathAtom;
  try {
    const parser = initFhirPathParserBuilder().construct(new Tokenizer(expression, KEYWORDS, OPERATORS).tokenize());
    const child = parser.consumeAndParse();
    if (parser.hasMore()) throw new Error('unexpected text after the expression');
    atom = new FhirPathAtom(expression, child);
  } catch (err) {
    throw badRequest(`Invalid FHIRPath expression '${expression}': ${(err as Error).message}`);
  }
  assertSelects(atom.child, expression);
  return atom;
}

/** Functions that select some of their input, with their argument counts. */
const SELECTING: Record<string, number> = {
  where: 1,
  first: 0,
  last: 0,
  tail: 0,
  skip: 1,
  take: 1,
  single: 0,
  ofType: 1,
  as: 1,
  extension: 1,
  resolve: 0,
};

/** A patch path must name elements; one that computes (count(), a union, an operator) is a 400 up front. */
function assertSelects(atom: Atom, expression: string): void {
  const fail = (part: Atom | string): never => {
    throw badRequest(
      `FHIRPath '${expression}' cannot be used as a patch path: '${part.toString()}' does not select elements`,
    );
  };
  if (atom instanceof DotAtom) {
    assertSelects(atom.left, expression);
    assertSelects(atom.right, expression);
  } else if (atom instanceof SymbolAtom) {
    if (atom.name.startsWith('$') || atom.name.startsWith('%')) fail(atom.name);
  } else if (atom instanceof IndexerAtom || atom instanceof AsAtom) {
    assertSelects(atom.left, expression);
  } else if (atom instanceof FunctionAtom) {
    if (!Object.hasOwn(SELECTING, atom.name)) fail(atom);
    if (atom.args.length !== SELECTING[atom.name]) {
      throw badRequest(`${atom.name}() in '${expression}' takes ${SELECTING[atom.name]} argument(s)`);
    }
  } else {
    fail(atom);
  }
}

export function rootLocation(resource: Resource): Location {
  return { value: resource, type: resource.resourceType, key: '' };
}

/** Every location the path selects, in FHIRPath order. */
export function locate(root: Location, path: FhirPathAtom): Location[] {
  return new Locator(root, path.original).eval(path.child, [root]);
}

/**
 * For insert and move, whose path names a list: the locations of the list's owner (usually one) and the
 * list's element name. undefined when the path does not end with an element name.
 */
export function locateList(root: Location, path: FhirPathAtom): { owners: Location[]; name: string } | undefined {
  const locator = new Locator(root, path.original);
  const atom = path.child;
  if (atom instanceof SymbolAtom && !isTypeName(atom.name)) return { owners: [root], name: atom.name };
  if (atom instanceof DotAtom && atom.right instanceof SymbolAtom && !isTypeName(atom.right.name)) {
    return { owners: locator.eval(atom.left, [root]), name: atom.right.name };
  }
  return undefined;
}

/** The locations of element `name` of a complex value, one per list item; 422 if the type has no such element. */
export function childLocations(owner: Location, name: string): Location[] {
  if (!isObject(owner.value)) {
    const element = primitiveElement(owner, false);
    return element ? childLocations(element, name) : [];
  }
  const element = lookupElement(owner.type, name);
  if (!element) throw unprocessable(`${owner.type} has no element '${name}'`);
  const result: Location[] = [];
  for (const key of jsonKeys(element)) {
    const value = owner.value[key];
    const type = typeAtKey(element, key);
    if (Array.isArray(value)) {
      value.forEach((item, index) => {
        if (item !== null && item !== undefined) {
          result.push({ value: item, type: actualType(type, item), parent: owner, key, index, element });
        }
      });
    } else if (value !== null && value !== undefined) {
      result.push({ value, type: actualType(type, value), parent: owner, key, element });
    }
  }
  return result;
}

/**
 * A primitive's id and extensions live beside it in JSON, under `_name` (in a list, at the same index
 * of the `_name` list). This is that object as a location of type Element; with `create`, made if
 * absent, for an add. https://hl7.org/fhir/R4/json.html#primitive
 */
export function primitiveElement(primitive: Location, create: boolean): Location | undefined {
  if (!primitive.parent || isObject(primitive.value)) return undefined;
  const owner = primitive.parent.value as Record<string, unknown>;
  const key = `_${primitive.key}`;
  const { index } = primitive;
  let value: unknown;
  if (index === undefined) {
    if (create && !isObject(owner[key])) owner[key] = {};
    value = owner[key];
  } else {
    if (create && !Array.isArray(owner[key])) owner[key] = (owner[primitive.key] as unknown[]).map(() => null);
    const list = owner[key];
    if (Array.isArray(list)) {
      if (create && !isObject(list[index])) list[index] = {};
      value = list[index];
    }
  }
  if (!isObject(value)) return undefined;
  return { value, type: 'Element', parent: primitive.parent, key, index, companion: true };
}

class Locator {
  constructor(
    private readonly root: Location,
    private readonly expression: string,
  ) {}

  eval(atom: Atom, input: Location[]): Location[] {
    if (atom instanceof FhirPathAtom) return this.eval(atom.child, input);
    if (atom instanceof DotAtom) return this.eval(atom.right, this.eval(atom.left, input));
    if (atom instanceof SymbolAtom) return this.symbol(atom.name, input);
    if (atom instanceof IndexerAtom) {
      const items = this.eval(atom.left, input);
      const index = this.integer(atom.expr);
      return index >= 0 && index < items.length ? [items[index]] : [];
    }
    if (atom instanceof AsAtom) return this.ofType(this.eval(atom.left, input), atom.right);
    if (atom instanceof FunctionAtom) return this.fn(atom, input);
    throw this.notAPath(atom);
  }

  private symbol(name: string, input: Location[]): Location[] {
    if (name.startsWith('$') || name.startsWith('%')) throw this.notAPath(name);
    if (!isTypeName(name)) return input.flatMap((location) => childLocations(location, name));
    // A type name selects the input of that type: the resource at the start of the path.
    if (input.length === 1 && input[0] === this.root && name !== this.root.type) {
      throw unprocessable(`FHIRPath '${this.expression}' does not apply to a ${this.root.type}`);
    }
    return input.filter((location) => location.type === name);
  }

  private fn(atom: FunctionAtom, input: Location[]): Location[] {
    const { name, args } = atom; // names and argument counts were checked by parsePath
    switch (name) {
      case 'where':
        return input.filter((location) => this.test(args[0], location));
      case 'first':
        return input.slice(0, 1);
      case 'last':
        return input.slice(-1);
      case 'tail':
        return input.slice(1);
      case 'skip':
        return input.slice(Math.max(0, this.integer(args[0])));
      case 'take':
        return input.slice(0, Math.max(0, this.integer(args[0])));
      case 'single':
        if (input.length > 1) throw unprocessable(`single() in '${this.expression}' found ${input.length} elements`);
        return input;
      case 'ofType':
      case 'as':
        return this.ofType(input, args[0]);
      case 'extension': {
        const url = this.string(args[0]);
        return input
          .flatMap((location) => childLocations(location, 'extension'))
          .filter((ext) => isObject(ext.value) && ext.value.url === url);
      }
      case 'resolve':
        return input.map((location) => this.resolve(location));
      default:
        throw this.notAPath(atom);
    }
  }

  private ofType(input: Location[], typeAtom: Atom): Location[] {
    const typeName = typeAtom instanceof DotAtom ? typeAtom.right : typeAtom;
    if (!(typeName instanceof SymbolAtom)) throw badRequest(`'${typeAtom.toString()}' is not a type name`);
    return input.filter((location) => location.type === typeName.name);
  }

  /** resolve() may only reach a contained resource ("#id"): a patch never alters another resource. */
  private resolve(location: Location): Location {
    const reference = isObject(location.value) ? location.value.reference : undefined;
    if (typeof reference !== 'string' || !reference.startsWith('#')) {
      throw unprocessable(`resolve() in '${this.expression}' may only refer to a contained resource`);
    }
    const id = reference.slice(1);
    const target = childLocations(this.root, 'contained').find((c) => isObject(c.value) && c.value.id === id);
    if (!target) throw unprocessable(`resolve() in '${this.expression}': no contained resource with id '${id}'`);
    return target;
  }

  private test(criteria: Atom, location: Location): boolean {
    const input = typed(location);
    const result = this.evaluate(criteria, [input], { $this: input });
    return toJsBoolean(result);
  }

  private integer(atom: Atom): number {
    const result = this.evaluate(atom, [typed(this.root)], {});
    if (result.length !== 1 || typeof result[0].value !== 'number' || !Number.isInteger(result[0].value)) {
      throw badRequest(`'${atom.toString()}' in '${this.expression}' is not an integer`);
    }
    return result[0].value;
  }

  private string(atom: Atom): string {
    const result = this.evaluate(atom, [typed(this.root)], {});
    if (result.length !== 1 || typeof result[0].value !== 'string') {
      throw badRequest(`'${atom.toString()}' in '${this.expression}' is not a string`);
    }
    return result[0].value;
  }

  /** Ordinary FHIRPath inside an argument; %resource is the resource being patched. */
  private evaluate(atom: Atom, input: TypedValue[], variables: Record<string, TypedValue>): TypedValue[] {
    const resource = typed(this.root);
    try {
      return evalFhirPathTyped(new FhirPathAtom(atom.toString(), atom), input, {
        ...variables,
        '%resource': resource,
        '%rootResource': resource,
      });
    } catch (err) {
      if (err instanceof OperationOutcomeError) throw err;
      throw unprocessable(`Cannot evaluate '${atom.toString()}' in '${this.expression}': ${(err as Error).message}`);
    }
  }

  private notAPath(atom: Atom | string): OperationOutcomeError {
    return badRequest(
      `FHIRPath '${this.expression}' cannot be used as a patch path: '${atom.toString()}' does not select elements`,
    );
  }
}

/** Resource-typed elements (contained, Bundle.entry.resource) take their type from the value. */
function actualType(type: string, value: unknown): string {
  if ((type === 'Resource' || type === 'DomainResource') && isObject(value) && typeof value.resourceType === 'string') {
    return value.resourceType;
  }
  return type;
}

function typed(location: Location): TypedValue {
  return { type: location.type, value: location.value };
}

/** FHIR element names start lower case; type names (Patient, Quantity) upper case. */
function isTypeName(name: string): boolean {
  return /^[A-Z]/.test(name);
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
