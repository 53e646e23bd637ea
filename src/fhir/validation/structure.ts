/**
 * Base validation against the R4 specification: one pass over the JSON that checks, for every object, its
 * properties against the compiled definition of its type — https://hl7.org/fhir/R4/json.html (property names,
 * arrays, primitives and their `_` siblings, null, empty values), https://hl7.org/fhir/R4/datatypes.html
 * (primitive formats), cardinality, error invariants, narrative XHTML — and the CPF/CRM identifier rule
 * (CONTRACT.md §3) on every Identifier, including those in contained resources and Bundle entries.
 * Only properties present are visited, so the cost follows the size of the resource, not of its definition.
 */
import type { TypedValue } from '@medplum/core';
import type { Definitions, ElementModel, PropertyModel, TypeModel } from './definitions';
import { CPF_SYSTEM, CRM_SYSTEM, isValidCpf, isValidCrm } from './identifiers';
import type { Invariant, InvariantScope } from './invariants';
import type { IssueCollector } from './issues';
import { abbreviate } from './primitives';
import type { Binding, Expansion } from './terminology';
import { describeCodes } from './terminology';
import { checkNarrativeDiv } from './xhtml';

type Json = Record<string, unknown>;

/** Resources nest (Bundle entries, contained, Parameters) and elements nest (Questionnaire.item): keep it bounded. */
const MAX_DEPTH = 200;

/** https://hl7.org/fhir/R4/resource.html#id — Resource.id is an `id`, unlike Element.id. */
const RESOURCE_ID = /^[A-Za-z0-9\-.]{1,64}$/;

/** Called during the walk so profiles apply to every resource and extension that declares one. */
export interface ProfileHooks {
  /** After a resource passed the base walk; `isRoot` is false for contained resources and Bundle entries. */
  resource(value: Json, path: string, scope: InvariantScope, isRoot: boolean): void;
  extension(value: Json, path: string, scope: InvariantScope): void;
}

export class StructureValidator {
  constructor(
    private readonly definitions: Definitions,
    private readonly out: IssueCollector,
    private readonly hooks?: ProfileHooks,
    /** $validate: codes outside an extensible or preferred binding's value set are reported as warnings. */
    private readonly bindingWarnings = false,
  ) {}

  /** Validates a resource. `container` is given for a contained resource (its %rootResource is the container's). */
  resource(value: unknown, path: string | undefined, container: InvariantScope | undefined, depth = 0): void {
    const where = path ?? 'Resource';
    if (!isObject(value)) {
      this.out.error('base', 'structure', `A resource must be a JSON object, found ${describe(value)}`, where);
      return;
    }
    const resourceType = value.resourceType;
    if (typeof resourceType !== 'string') {
      this.out.error('base', 'required', 'The resource has no resourceType', where);
      return;
    }
    const model = this.definitions.resourceTypes.has(resourceType) ? this.definitions.typeModel(resourceType) : undefined;
    if (!model) {
      this.out.error('base', 'structure', `Unknown resource type '${abbreviate(resourceType)}'`, where);
      return;
    }
    const here = path ?? resourceType;
    const self: TypedValue = { type: resourceType, value };
    const scope: InvariantScope = { resource: self, rootResource: container ? container.rootResource : self };
    if (value.id !== undefined && (typeof value.id !== 'string' || !RESOURCE_ID.test(value.id))) {
      const problem = typeof value.id !== 'string' ? `expected a JSON string, found ${describe(value.id)}` : describeBadId(value.id);
      this.out.error('base', 'value', `Invalid resource id: ${problem}`, `${here}.id`);
    }
    this.properties(value, model, here, scope, depth);
    if (Array.isArray(value.contained)) {
      this.containedIds(value.contained, here);
    }
    this.invariants(model.invariants, self, here, scope);
    this.hooks?.resource(value, here, scope, path === undefined);
  }

  private properties(obj: Json, model: TypeModel, path: string, scope: InvariantScope, depth: number): void {
    for (const key in obj) {
      const value = obj[key];
      if (value === undefined) {
        continue;
      }
      let prop = model.properties.get(key);
      if (prop !== undefined) {
        if (prop.element.jsonKeys.length > 1) {
          this.singleChoice(obj, key, prop, model, path);
        }
        if (prop.primitive) {
          this.primitive(obj[`_${key}`], value, prop, path, scope, depth);
        } else {
          this.complex(value, prop, path, scope, depth);
        }
        continue;
      }
      if (key === 'resourceType' && model.isResource) {
        continue;
      }
      if (key.charCodeAt(0) === 95 /* _ */) {
        prop = model.properties.get(key.slice(1));
        if (prop?.primitive && prop.extensible) {
          // With its value present, `_key` was handled together with `key`.
          if (obj[prop.key] === undefined) {
            if (prop.element.jsonKeys.length > 1) {
              this.singleChoice(obj, prop.key, prop, model, path);
            }
            this.primitive(value, undefined, prop, path, scope, depth);
          }
          continue;
        }
        if (prop?.primitive) {
          this.out.error('base', 'structure', `Extensions are not allowed on ${prop.element.path} ('${key}')`, `${path}.${prop.segment}`);
          continue;
        }
      }
      this.out.error('base', 'structure', `Unrecognized property '${key}'`, `${path}.${key}`);
    }
    for (const element of model.required) {
      if (!isPresent(obj, element)) {
        this.out.error('base', 'required', `${element.path}: minimum required = ${element.min}, but only found 0`, path);
      }
    }
  }

  /** A choice element (`value[x]`) appears under one type only. Reported once, at the last of its keys. */
  private singleChoice(obj: Json, key: string, prop: PropertyModel, model: TypeModel, path: string): void {
    const present: string[] = [];
    for (const k in obj) {
      const name = k.charCodeAt(0) === 95 ? k.slice(1) : k;
      if (obj[k] !== undefined && model.properties.get(name)?.element === prop.element && !present.includes(name)) {
        present.push(name);
      }
    }
    if (present.length > 1 && present[present.length - 1] === key) {
      this.out.error('base', 'structure', `Only one of ${present.join(', ')} may be present (${prop.element.path})`, `${path}.${prop.segment}`);
    }
  }

  /** A primitive property: the value (JSON string/number/boolean) and/or `_name` (its id and extensions). */
  private primitive(extension: unknown, value: unknown, prop: PropertyModel, path: string, scope: InvariantScope, depth: number): void {
    const here = `${path}.${prop.segment}`;
    if (prop.element.isArray) {
      if (value !== undefined && !Array.isArray(value)) {
        this.out.error('base', 'structure', `The property '${prop.key}' must be a JSON array`, here);
        return;
      }
      if (extension !== undefined && !Array.isArray(extension)) {
        this.out.error('base', 'structure', `The property '_${prop.key}' must be a JSON array`, here);
        return;
      }
      const values = (value ?? []) as unknown[];
      const extensions = (extension ?? []) as unknown[];
      if ((value !== undefined && values.length === 0) || (extension !== undefined && extensions.length === 0)) {
        this.out.error('base', 'structure', 'Array cannot be empty - the property should not be present if it has no values', here);
        return;
      }
      if (value !== undefined && extension !== undefined && values.length !== extensions.length) {
        this.out.error('base', 'structure', `The arrays '${prop.key}' and '_${prop.key}' must have the same length`, here);
      }
      const count = Math.max(values.length, extensions.length);
      for (let i = 0; i < count; i++) {
        this.primitiveValue(values[i], extensions[i], prop, `${here}[${i}]`, scope, depth);
      }
    } else if (Array.isArray(value) || Array.isArray(extension)) {
      this.out.error('base', 'structure', `The property '${prop.key}' must not be an array (max cardinality 1)`, here);
    } else {
      this.primitiveValue(value, extension, prop, here, scope, depth);
    }
    if (prop.element.invariants.length > 0 && value !== undefined && !Array.isArray(value)) {
      this.invariants(prop.element.invariants, { type: prop.type, value }, here, scope);
    }
  }

  private primitiveValue(value: unknown, extension: unknown, prop: PropertyModel, here: string, scope: InvariantScope, depth: number): void {
    const hasValue = value !== undefined && value !== null;
    const hasExtension = extension !== undefined && extension !== null;
    if (!hasValue && !hasExtension) {
      this.out.error('base', 'structure', `A null value needs an extension in '_${prop.key}' (ele-1)`, here);
      return;
    }
    if (hasValue) {
      const problem = (prop.primitive as NonNullable<PropertyModel['primitive']>).check(value);
      if (problem) {
        this.out.error('base', 'value', `Invalid ${prop.type}: ${problem}`, here);
      } else if (prop.type === 'code' && prop.element.binding) {
        this.code(value as string, prop.element.binding, here);
      } else if (prop.type === 'xhtml') {
        const narrative = checkNarrativeDiv(value as string);
        if (narrative) {
          this.out.error('base', 'value', `Invalid narrative XHTML: ${narrative}`, here);
        }
      }
    }
    if (hasExtension) {
      if (!isObject(extension)) {
        this.out.error('base', 'structure', `'_${prop.key}' must hold JSON objects, found ${describe(extension)}`, here);
        return;
      }
      if (!hasValue && extension.extension === undefined) {
        this.out.error('base', 'structure', 'A primitive element must have a value or extensions (ele-1)', here);
      }
      const model = this.definitions.typeModel('Element') as TypeModel;
      this.properties(extension, model, here, scope, depth + 1);
    }
  }

  private complex(value: unknown, prop: PropertyModel, path: string, scope: InvariantScope, depth: number): void {
    const here = `${path}.${prop.segment}`;
    if (prop.element.isArray) {
      if (!Array.isArray(value)) {
        this.out.error('base', 'structure', `The property '${prop.key}' must be a JSON array, found ${describe(value)}`, here);
        return;
      }
      if (value.length === 0) {
        this.out.error('base', 'structure', 'Array cannot be empty - the property should not be present if it has no values', here);
        return;
      }
      for (let i = 0; i < value.length; i++) {
        this.complexValue(value[i], prop, `${here}[${i}]`, scope, depth);
      }
    } else if (Array.isArray(value)) {
      this.out.error('base', 'structure', `The property '${prop.key}' must not be an array (max cardinality 1)`, here);
    } else {
      this.complexValue(value, prop, here, scope, depth);
    }
  }

  private complexValue(value: unknown, prop: PropertyModel, here: string, scope: InvariantScope, depth: number): void {
    if (!isObject(value)) {
      this.out.error('base', 'structure', `The property '${prop.key}' must be a JSON object, found ${describe(value)}`, here);
      return;
    }
    if (depth >= MAX_DEPTH) {
      this.out.error('base', 'too-costly', `Content nested deeper than ${MAX_DEPTH} levels`, here);
      return;
    }
    if (prop.type === 'Resource') {
      this.resource(value, here, prop.contained ? scope : undefined, depth + 1);
      return;
    }
    const model = this.definitions.typeModel(prop.type);
    if (!model) {
      this.out.warning('not-supported', `No definition for the type '${prop.type}'; its content was not checked`, here);
      return;
    }
    if (!hasContent(value)) {
      this.out.error('base', 'structure', 'An element must have a value or children (ele-1): this object is empty', here);
      return;
    }
    this.properties(value, model, here, scope, depth + 1);
    const typed: TypedValue = { type: prop.type, value };
    this.invariants(model.invariants, typed, here, scope);
    this.invariants(prop.element.invariants, typed, here, scope);
    const binding = prop.element.binding;
    if (binding && (prop.type === 'Coding' || prop.type === 'CodeableConcept')) {
      this.coded(value, prop.type, binding, here);
    }
    if (prop.type === 'Reference') {
      this.reference(value, prop, here);
    } else if (prop.type === 'Identifier') {
      this.identifier(value, here);
    } else if (prop.type === 'Extension') {
      this.hooks?.extension(value, here, scope);
    }
  }

  /** The expansion to check a binding against; undefined when it is not checked (not expandable, or a warning not wanted). */
  private expansion(binding: Binding): Expansion | undefined {
    if (binding.strength !== 'required' && !this.bindingWarnings) {
      return undefined;
    }
    return this.definitions.terminology.bound(binding);
  }

  private bindingIssue(binding: Binding, expansion: Expansion, what: string, here: string): void {
    const message = `${what} is not in the value set '${binding.valueSet}'${describeCodes(expansion)}, which is ${binding.strength} here`;
    if (binding.strength === 'required') {
      this.out.error('base', 'code-invalid', message, here);
    } else {
      this.out.warning('code-invalid', message, here);
    }
  }

  /** A `code` element: https://hl7.org/fhir/R4/terminologies.html#strength */
  private code(value: string, binding: Binding, here: string): void {
    const expansion = this.expansion(binding);
    if (expansion && !expansion.codes.has(value)) {
      this.bindingIssue(binding, expansion, `The code '${abbreviate(value)}'`, here);
    }
  }

  /**
   * A Coding, or a CodeableConcept (one of its codings must be in the value set). Only codings with a code are
   * judged; a concept given as text alone is not refused, and a coding without a system is judged by its code.
   */
  private coded(value: Json, type: 'Coding' | 'CodeableConcept', binding: Binding, here: string): void {
    const expansion = this.expansion(binding);
    if (!expansion) {
      return;
    }
    const codings = type === 'Coding' ? [value] : Array.isArray(value.coding) ? (value.coding as unknown[]) : [];
    let judged: string | undefined;
    for (const coding of codings) {
      if (!isObject(coding) || typeof coding.code !== 'string') {
        continue;
      }
      const inSet = typeof coding.system === 'string' ? expansion.codings.has(`${coding.system}|${coding.code}`) : expansion.codes.has(coding.code);
      if (inSet) {
        return;
      }
      judged ??= typeof coding.system === 'string' ? `${abbreviate(coding.system)}|${abbreviate(coding.code)}` : abbreviate(coding.code);
    }
    if (judged !== undefined) {
      const what = type === 'Coding' ? `The coding '${judged}'` : codings.length > 1 ? 'None of the codings' : `The coding '${judged}'`;
      this.bindingIssue(binding, expansion, what, type === 'Coding' ? here : `${here}.coding`);
    }
  }

  /** https://hl7.org/fhir/R4/references.html#contained: a contained resource is found by its id, so ids are unique. */
  private containedIds(contained: unknown[], here: string): void {
    const seen = new Set<string>();
    contained.forEach((c, i) => {
      const id = isObject(c) ? c.id : undefined;
      if (typeof id !== 'string') {
        return;
      }
      if (seen.has(id)) {
        this.out.error('base', 'duplicate', `Two contained resources have the id '${abbreviate(id)}'`, `${here}.contained[${i}].id`);
      }
      seen.add(id);
    });
  }

  /**
   * Reference.reference (https://hl7.org/fhir/R4/references.html#Reference): `Type/id` (optionally with
   * `/_history/vid`), an absolute http(s) URL, `#id` of a contained resource, `urn:uuid:`/`urn:oid:` (resolved in a
   * transaction), or a conditional `Type?criteria` (resolved at write). Anything else (`javascript:`, `file:`,
   * `../x`, an id of 100 KB) is refused, as is a target type the element does not allow.
   */
  private reference(value: Json, prop: PropertyModel, here: string): void {
    const ref = value.reference;
    const targets = prop.element.targetTypes;
    let targetType: string | undefined;
    if (typeof ref === 'string') {
      const parsed = parseReference(ref);
      if (parsed === undefined) {
        this.out.error('base', 'value', `Invalid reference '${abbreviate(ref)}': expected Type/id, an absolute http(s) URL, #id, urn:uuid: or Type?criteria`, `${here}.reference`);
        return;
      }
      if (parsed.type !== undefined && !this.definitions.resourceTypes.has(parsed.type)) {
        if (parsed.relative) {
          this.out.error('base', 'value', `Invalid reference '${abbreviate(ref)}': unknown resource type '${abbreviate(parsed.type)}'`, `${here}.reference`);
          return;
        }
      } else {
        targetType = parsed.type;
      }
    }
    if (typeof value.type === 'string' && this.definitions.resourceTypes.has(value.type)) {
      if (targetType !== undefined && targetType !== value.type) {
        this.out.error('base', 'value', `The reference is to a ${targetType}, but Reference.type says ${value.type}`, `${here}.type`);
        return;
      }
      targetType ??= value.type;
    }
    if (targets && targetType !== undefined && !targets.has(targetType)) {
      this.out.error('base', 'structure', `${prop.element.path} may refer to ${[...targets].join(', ')}, not ${targetType}`, `${here}.reference`);
    }
  }

  /** CONTRACT.md §3: a CPF or CRM identifier is checked wherever it appears, with or without a profile. */
  private identifier(identifier: Json, here: string): void {
    const { system, value } = identifier;
    if (system === CPF_SYSTEM && !(typeof value === 'string' && isValidCpf(value))) {
      this.out.error(
        'rule',
        'value',
        `A CPF identifier needs a value of 11 digits without punctuation and with valid check digits, found ${typeof value === 'string' ? `'${abbreviate(value)}'` : 'none'}`,
        `${here}.value`,
      );
    } else if (system === CRM_SYSTEM && !(typeof value === 'string' && isValidCrm(value))) {
      this.out.error(
        'rule',
        'value',
        `A CRM identifier needs a value 'UF-NUMBER' (a Brazilian state code, e.g. SP-123456), found ${typeof value === 'string' ? `'${abbreviate(value)}'` : 'none'}`,
        `${here}.value`,
      );
    }
  }

  private invariants(invariants: Invariant[], value: TypedValue, here: string, scope: InvariantScope): void {
    for (const invariant of invariants) {
      let holds: boolean;
      try {
        holds = invariant.holds(value, scope);
      } catch (err) {
        this.out.warning('processing', `Invariant ${invariant.key} could not be evaluated: ${(err as Error).message}`, here);
        continue;
      }
      if (!holds) {
        this.out.error('base', 'invariant', `Constraint failed: ${invariant.key}: '${invariant.human}'`, here);
      }
    }
  }
}

const ID = '[A-Za-z0-9\\-.]{1,64}';
const RELATIVE_REFERENCE = new RegExp(`^([A-Z][A-Za-z]{0,63})/${ID}(/_history/${ID})?$`);
const CONDITIONAL_REFERENCE = /^([A-Z][A-Za-z]{0,63})\?./;
const CONTAINED_REFERENCE = new RegExp(`^#(${ID})?$`);
/** As the reference validator: a `urn:uuid:`/`urn:oid:` names a Bundle entry by its fullUrl, checked when resolved. */
const UUID_REFERENCE = /^urn:uuid:[0-9A-Za-z][0-9A-Za-z.:-]{0,127}$/;
const OID_REFERENCE = /^urn:oid:[0-9][0-9.]{0,127}$/;
const ABSOLUTE_REFERENCE = new RegExp(`/([A-Z][A-Za-z]{0,63})/${ID}(/_history/${ID})?$`);
const MAX_URL_LENGTH = 4096;

/** The forms of Reference.reference this server accepts; undefined for anything else. */
function parseReference(ref: string): { type?: string; relative: boolean } | undefined {
  let m = RELATIVE_REFERENCE.exec(ref) ?? CONDITIONAL_REFERENCE.exec(ref);
  if (m) {
    return { type: m[1], relative: true };
  }
  if (CONTAINED_REFERENCE.test(ref) || UUID_REFERENCE.test(ref) || OID_REFERENCE.test(ref)) {
    return { relative: false };
  }
  if ((ref.startsWith('http://') || ref.startsWith('https://')) && ref.length <= MAX_URL_LENGTH && URL.canParse(ref)) {
    m = ABSOLUTE_REFERENCE.exec(new URL(ref).pathname);
    return { type: m?.[1], relative: false };
  }
  return undefined;
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isPresent(obj: Json, element: ElementModel): boolean {
  for (const key of element.jsonKeys) {
    if (obj[key] !== undefined || obj[`_${key}`] !== undefined) {
      return true;
    }
  }
  return false;
}

/** ele-1: "All FHIR elements must have a @value or children" — an id alone is not content. */
function hasContent(obj: Json): boolean {
  for (const key in obj) {
    if (key !== 'id' && obj[key] !== undefined) {
      return true;
    }
  }
  return false;
}

function describe(value: unknown): string {
  if (value === null) {
    return 'null';
  }
  if (Array.isArray(value)) {
    return 'an array';
  }
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

function describeBadId(id: string): string {
  if (id.length > 64) {
    return `too long (${id.length} characters, at most 64)`;
  }
  return `invalid characters in '${abbreviate(id)}' (only A-Z, a-z, 0-9, '-' and '.')`;
}
