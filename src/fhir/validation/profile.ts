/**
 * Enforcement of a constraint profile (StructureDefinition with derivation = constraint):
 * https://hl7.org/fhir/R4/profiling.html
 * The base walk has already checked everything the base type says, so a profile is compiled into only what
 * it adds: narrower cardinality, fixed and pattern values, narrower choice types, new invariants, and slices
 * (discriminators of type value, pattern and exists: https://hl7.org/fhir/R4/profiling.html#discriminator).
 * The same code checks resource profiles and extension definitions.
 */
import { isDeepStrictEqual } from 'node:util';
import type { InternalSchemaElement, InternalTypeSchema, SliceDefinition, SlicingRules, TypedValue } from '@medplum/core';
import { parseStructureDefinition, tryGetDataType } from '@medplum/core';
import type { StructureDefinition } from '@medplum/fhirtypes';
import type { ConstraintSource, Invariant, InvariantScope } from './invariants';
import { compileInvariants } from './invariants';
import type { IssueCollector } from './issues';

type Json = Record<string, unknown>;

/** A value found in the instance, with its FHIRPath location and FHIR type. */
interface Located {
  value: unknown;
  path: string;
  type: string;
}

/** What a profile says about one element path, beyond the base definition. */
interface ElementRule {
  /** Dotted element names below the profiled type, e.g. `identifier.system`. */
  names: string[];
  /** ElementDefinition.path, for messages. */
  definitionPath: string;
  types: string[];
  cardinality?: { min: number; max: number };
  fixed?: unknown;
  pattern?: unknown;
  /** Choice types the profile still allows, when it narrows them. */
  allowedTypes?: Set<string>;
  invariants: Invariant[];
  slicing?: CompiledSlicing;
}

interface CompiledSlicing {
  discriminators: { type: string; path: string }[];
  closed: boolean;
  slices: CompiledSlice[];
}

interface CompiledSlice {
  name: string;
  min: number;
  max: number;
  /** The slice's own rules (on the sliced element) and those on its children, relative to one slice value. */
  self: ElementRule;
  children: ElementRule[];
  /** Child definitions by relative path, for discriminator lookups. */
  elements: Record<string, InternalSchemaElement>;
  /** For a slice of extensions typed with an extension definition: that definition's URL (the `url` to match). */
  extensionUrl?: string;
}

export interface ProfileContext {
  baseInvariantKeys: Set<string>;
  invariantCache: Map<string, Invariant>;
}

export class CompiledProfile {
  readonly url: string;
  readonly type: string;
  private readonly rootInvariants: Invariant[];
  private readonly rules: ElementRule[];

  constructor(
    sd: StructureDefinition,
    private readonly context: ProfileContext,
  ) {
    this.url = sd.url as string;
    this.type = sd.type as string;
    const profile = parseStructureDefinition(sd);
    const base = tryGetDataType(this.type);
    if (!base) {
      throw new Error(`${this.url}: unknown base type ${this.type}`);
    }
    this.rootInvariants = this.newInvariants(profile.constraints);
    const baseElements = flatten(base);
    this.rules = [];
    for (const [path, element] of flatten(profile)) {
      const rule = this.compileRule(path.split('.'), element, baseElements.get(path));
      if (rule) {
        this.rules.push(rule);
      }
    }
  }

  /** Checks a resource (or extension) already validated against its base type; errors are profile errors. */
  check(instance: Json, path: string, scope: InvariantScope, out: IssueCollector): void {
    const root: Located = { value: instance, path, type: this.type };
    const checker = new InstanceChecker(this.url, scope, out);
    checker.invariants(this.rootInvariants, root);
    for (const rule of this.rules) {
      checker.rule(rule, root);
    }
  }

  private compileRule(names: string[], element: InternalSchemaElement, base: InternalSchemaElement | undefined): ElementRule | undefined {
    const rule: ElementRule = {
      names,
      definitionPath: element.path,
      types: element.type.map((t) => t.code),
      invariants: this.newInvariants(element.constraints, base?.constraints),
    };
    let constrained = rule.invariants.length > 0;
    if (!base || element.min !== base.min || element.max !== base.max) {
      rule.cardinality = { min: element.min, max: element.max };
      constrained ||= element.min > 0 || element.max !== Infinity || !base;
    }
    if (element.fixed) {
      rule.fixed = element.fixed.value;
      constrained = true;
    }
    if (element.pattern) {
      rule.pattern = element.pattern.value;
      constrained = true;
    }
    if (base && base.type.length > element.type.length) {
      rule.allowedTypes = new Set(element.type.map((t) => t.code));
      constrained = true;
    }
    if (element.slicing && element.slicing.slices.length > 0) {
      rule.slicing = this.compileSlicing(names, element.slicing);
      constrained = true;
    }
    return constrained ? rule : undefined;
  }

  private compileSlicing(names: string[], slicing: SlicingRules): CompiledSlicing {
    for (const d of slicing.discriminator) {
      if (d.type !== 'value' && d.type !== 'pattern' && d.type !== 'exists') {
        throw new Error(`${this.url}: slicing of ${names.join('.')} by a '${d.type}' discriminator is not supported`);
      }
    }
    return {
      discriminators: slicing.discriminator,
      closed: slicing.rule === 'closed',
      slices: slicing.slices.map((slice) => this.compileSlice(slice)),
    };
  }

  private compileSlice(slice: SliceDefinition): CompiledSlice {
    const self: ElementRule = {
      names: [],
      definitionPath: `${slice.path}:${slice.name}`,
      types: slice.type.map((t) => t.code),
      invariants: this.newInvariants(slice.constraints),
      fixed: slice.fixed?.value,
      pattern: slice.pattern?.value,
    };
    const children = Object.entries(slice.elements).map(([path, element]) => ({
      names: path.split('.'),
      definitionPath: `${slice.path}:${slice.name}.${path}`,
      types: element.type.map((t) => t.code),
      cardinality: { min: element.min, max: element.max },
      fixed: element.fixed?.value,
      pattern: element.pattern?.value,
      invariants: this.newInvariants(element.constraints),
    }));
    const extensionUrl = slice.type.find((t) => t.code === 'Extension')?.profile?.[0];
    return { name: slice.name, min: slice.min, max: slice.max, self, children, elements: slice.elements, extensionUrl };
  }

  /** Invariants the base specification does not already define (those are checked by the base walk). */
  private newInvariants(constraints: ConstraintSource[] | undefined, base?: ConstraintSource[]): Invariant[] {
    const known = new Set((base ?? []).map((c) => c.key));
    const added = (constraints ?? []).filter((c) => !known.has(c.key) && !this.context.baseInvariantKeys.has(c.key));
    return compileInvariants(added, this.context.invariantCache);
  }
}

class InstanceChecker {
  constructor(
    private readonly url: string,
    private readonly scope: InvariantScope,
    private readonly out: IssueCollector,
  ) {}

  /** Applies a rule to every instance of its parent element under `root`. */
  rule(rule: ElementRule, root: Located): void {
    const parents = rule.names.length > 1 ? descend(root, rule.names.slice(0, -1)) : [root];
    const name = rule.names[rule.names.length - 1];
    for (const parent of parents) {
      this.values(rule, parent, childrenOf(parent, name));
    }
  }

  private values(rule: ElementRule, parent: Located, values: Located[]): void {
    const { cardinality } = rule;
    if (cardinality && (values.length < cardinality.min || values.length > cardinality.max)) {
      this.fail(
        'required',
        values.length < cardinality.min
          ? `${rule.definitionPath}: minimum required = ${cardinality.min}, but only found ${values.length}`
          : `${rule.definitionPath}: maximum allowed = ${cardinality.max}, but found ${values.length}`,
        parent.path,
      );
    }
    for (const v of values) {
      this.value(rule, v);
    }
    if (rule.slicing) {
      this.slices(rule, rule.slicing, parent, values);
    }
  }

  private value(rule: ElementRule, v: Located): void {
    if (rule.allowedTypes && !rule.allowedTypes.has(v.type)) {
      this.fail('structure', `${rule.definitionPath}: the type ${v.type} is not allowed here (allowed: ${[...rule.allowedTypes].join(', ')})`, v.path);
    }
    if (rule.fixed !== undefined && !isDeepStrictEqual(v.value, rule.fixed)) {
      this.fail('value', `${rule.definitionPath}: the value must be exactly ${JSON.stringify(rule.fixed)}`, v.path);
    }
    if (rule.pattern !== undefined && !matchesPattern(v.value, rule.pattern)) {
      this.fail('value', `${rule.definitionPath}: the value must match the pattern ${JSON.stringify(rule.pattern)}`, v.path);
    }
    this.invariants(rule.invariants, v);
  }

  private slices(rule: ElementRule, slicing: CompiledSlicing, parent: Located, values: Located[]): void {
    const members = new Map<CompiledSlice, Located[]>(slicing.slices.map((s) => [s, []]));
    for (const v of values) {
      const slice = slicing.slices.find((s) => matchesSlice(v, s, slicing.discriminators));
      if (slice) {
        (members.get(slice) as Located[]).push(v);
      } else if (slicing.closed) {
        this.fail('structure', `${rule.definitionPath}: the value matches none of the slices, and the slicing is closed`, v.path);
      }
    }
    for (const [slice, matched] of members) {
      if (matched.length < slice.min || matched.length > slice.max) {
        const max = Number.isFinite(slice.max) ? slice.max : '*';
        this.fail(
          'required',
          `${rule.definitionPath}: slice '${slice.name}' requires ${slice.min}..${max} values, but found ${matched.length}`,
          parent.path,
        );
      }
      for (const v of matched) {
        this.value(slice.self, v);
        for (const child of slice.children) {
          this.rule(child, v);
        }
      }
    }
  }

  invariants(invariants: Invariant[], v: Located): void {
    for (const invariant of invariants) {
      const typed: TypedValue = { type: v.type, value: v.value };
      let holds: boolean;
      try {
        holds = invariant.holds(typed, this.scope);
      } catch (err) {
        this.out.warning('processing', `Invariant ${invariant.key} could not be evaluated: ${(err as Error).message}`, v.path);
        continue;
      }
      if (!holds) {
        this.fail('invariant', `Constraint failed: ${invariant.key}: '${invariant.human}'`, v.path);
      }
    }
  }

  private fail(code: 'required' | 'structure' | 'value' | 'invariant', message: string, path: string): void {
    this.out.error('profile', code, `${message} (from ${this.url})`, path);
  }
}

/** All element definitions of a type, by dotted path below it, descending into its backbone elements. */
function flatten(schema: InternalTypeSchema): Map<string, InternalSchemaElement> {
  const inner = new Map(schema.innerTypes.map((t) => [t.name, t]));
  const result = new Map<string, InternalSchemaElement>();
  const visit = (elements: Record<string, InternalSchemaElement>, prefix: string): void => {
    for (const [key, element] of Object.entries(elements)) {
      const path = prefix + key;
      result.set(path, element);
      const innerType = element.type.length === 1 ? inner.get(element.type[0].code) : undefined;
      // A content reference (Questionnaire.item.item) reuses the type of another path: do not loop.
      if (innerType && innerType.path === element.path) {
        visit(innerType.elements, `${path}.`);
      }
    }
  };
  visit(schema.elements, '');
  return result;
}

function descend(from: Located, names: string[]): Located[] {
  let current = [from];
  for (const name of names) {
    current = current.flatMap((v) => childrenOf(v, name));
  }
  return current;
}

/** The values of one element (`name`, or `name[x]` for a choice) of an object, arrays flattened. */
function childrenOf(parent: Located, name: string): Located[] {
  const obj = parent.value;
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
    return [];
  }
  const result: Located[] = [];
  const add = (key: string, segment: string, type: string): void => {
    const value = (obj as Json)[key];
    if (Array.isArray(value)) {
      value.forEach((item, i) => {
        if (item !== null && item !== undefined) {
          result.push({ value: item, path: `${parent.path}.${segment}[${i}]`, type });
        }
      });
    } else if (value !== undefined && value !== null) {
      result.push({ value, path: `${parent.path}.${segment}`, type });
    }
  };
  if (name.endsWith('[x]')) {
    const base = name.slice(0, -3);
    for (const key of Object.keys(obj)) {
      if (key.startsWith(base) && key.length > base.length && /[A-Z]/.test(key.charAt(base.length))) {
        const suffix = key.slice(base.length);
        const type = isPrimitiveName(suffix) ? suffix.charAt(0).toLowerCase() + suffix.slice(1) : suffix;
        add(key, `${base}.ofType(${type})`, type);
      }
    }
  } else {
    add(name, name, elementType(parent.type, name));
  }
  return result;
}

/** The declared type of an element, from the base schema of the parent type (first type for a choice). */
function elementType(parentType: string, name: string): string {
  return tryGetDataType(parentType)?.elements[name]?.type[0]?.code ?? 'Element';
}

function isPrimitiveName(suffix: string): boolean {
  const lower = suffix.charAt(0).toLowerCase() + suffix.slice(1);
  return tryGetDataType(lower)?.kind === 'primitive-type';
}

function matchesSlice(v: Located, slice: CompiledSlice, discriminators: { type: string; path: string }[]): boolean {
  return discriminators.every((d) => {
    if (d.path === '$this') {
      const expected = slice.self.fixed ?? slice.self.pattern;
      return expected !== undefined && matchesPattern(v.value, expected);
    }
    const definition = slice.elements[d.path];
    const found = descend(v, d.path.split('.'));
    if (d.type === 'exists') {
      return definition ? (definition.min > 0 ? found.length > 0 : definition.max === 0 ? found.length === 0 : true) : false;
    }
    // Extension slices name their definition in type.profile; the discriminating url is that definition's URL.
    const expected = definition?.fixed?.value ?? definition?.pattern?.value ?? (d.path === 'url' ? slice.extensionUrl : undefined);
    return expected !== undefined && found.some((f) => matchesPattern(f.value, expected));
  });
}

/** https://hl7.org/fhir/R4/elementdefinition-definitions.html#ElementDefinition.pattern_x_ */
function matchesPattern(value: unknown, pattern: unknown): boolean {
  if (Array.isArray(pattern)) {
    return Array.isArray(value) && pattern.every((p) => value.some((v) => matchesPattern(v, p)));
  }
  if (typeof pattern === 'object' && pattern !== null) {
    return (
      typeof value === 'object' &&
      value !== null &&
      !Array.isArray(value) &&
      Object.entries(pattern).every(([k, p]) => matchesPattern((value as Json)[k], p))
    );
  }
  return value === pattern;
}

