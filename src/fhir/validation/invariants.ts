/**
 * Invariants (ElementDefinition.constraint with severity error): https://hl7.org/fhir/R4/conformance-rules.html#constraints
 * Evaluated with Medplum's FHIRPath engine, parsed once at load. Three adjustments, each for correctness:
 * - known R4 errata are replaced by the corrected expression (the published text contradicts its own rule);
 * - `<`, `<=`, `>`, `>=` on dates and times follow FHIRPath partial-precision semantics (Medplum compares strings);
 * - a few invariants get a native implementation: those needing functions Medplum stubs out (`descendants()`,
 *   `children()`, `htmlChecks()`), and the ones evaluated on nearly every element (ext-1, ref-1, dom-2..5).
 *   A native implementation is used only when the expression is exactly the R4 text it implements.
 */
import type { Atom, AtomContext, TypedValue } from '@medplum/core';
import { evalFhirPathTyped, parseFhirPath, toTypedValue } from '@medplum/core';
import { compareTemporal, parseTemporal, TEMPORAL_TYPES } from './temporal';

export interface InvariantScope {
  /** The resource that holds the element (%resource). */
  resource: TypedValue;
  /** The container of a contained resource, else the resource itself (%rootResource). */
  rootResource: TypedValue;
}

export interface Invariant {
  readonly key: string;
  readonly human: string;
  readonly expression: string;
  /** True when the invariant holds. Throws when the expression cannot be evaluated. */
  holds(value: TypedValue, scope: InvariantScope): boolean;
}

export interface ConstraintSource {
  key: string;
  severity: string;
  expression: string;
  description: string;
}

/** Structural or narrative rules checked by the element walker and the XHTML checker instead. */
const CHECKED_ELSEWHERE = new Set(['ele-1', 'txt-1', 'txt-2']);

/**
 * R4 (4.0.1) invariants whose published expression contradicts their own human rule, with the expression
 * corrected in R4B (hl7.fhir.r4b.core#4.3.0); the reference Java validator reports these as corrected.
 */
const ERRATA: Record<string, { published: string; corrected: string }> = {
  // "If there are more than one enableWhen, enableBehavior must be specified"
  'que-12': {
    published: 'enableWhen.count() > 2 implies enableBehavior.exists()',
    corrected: 'enableWhen.count() > 1 implies enableBehavior.exists()',
  },
};

type NativeCheck = (value: TypedValue, scope: InvariantScope) => boolean;

type Json = Record<string, unknown>;

const NATIVE: Record<string, { expression: string; holds: NativeCheck }> = {
  'ext-1': {
    expression: 'extension.exists() != value.exists()',
    // A primitive value present only as `_valueX` (extensions, no value) still exists for FHIRPath.
    holds: (v) => hasKey(v.value, 'extension') !== Object.keys(v.value as Json).some((k) => k.startsWith('value') || k.startsWith('_value')),
  },
  'ref-1': {
    expression:
      "reference.startsWith('#').not() or (reference.substring(1).trace('url') in %rootResource.contained.id.trace('ids'))",
    holds: (v, scope) => {
      const reference = (v.value as Json).reference;
      if (typeof reference !== 'string' || !reference.startsWith('#')) {
        return true;
      }
      // "#" alone points at the container resource itself.
      return reference === '#' || containedIds(scope.rootResource.value).has(reference.slice(1));
    },
  },
  'dom-2': {
    expression: 'contained.contained.empty()',
    holds: (v) => contained(v.value).every((r) => !hasKey(r, 'contained')),
  },
  'dom-3': {
    expression:
      "contained.where((('#'+id in (%resource.descendants().reference | %resource.descendants().as(canonical) | %resource.descendants().as(uri) | %resource.descendants().as(url))) or descendants().where(reference = '#').exists() or descendants().where(as(canonical) = '#').exists() or descendants().where(as(canonical) = '#').exists()).not()).trace('unmatched', id).empty()",
    holds: (v) => containedAreReferenced(v.value as Json),
  },
  'dom-4': {
    expression: 'contained.meta.versionId.empty() and contained.meta.lastUpdated.empty()',
    holds: (v) =>
      contained(v.value).every((r) => {
        const meta = r.meta as Json | undefined;
        return !meta || (meta.versionId === undefined && meta.lastUpdated === undefined);
      }),
  },
  'dom-5': {
    expression: 'contained.meta.security.empty()',
    holds: (v) => contained(v.value).every((r) => (r.meta as Json | undefined)?.security === undefined),
  },
  'que-2': {
    expression: 'descendants().linkId.isDistinct()',
    holds: (v) => linkIdsDistinct(v.value as Json, new Set()),
  },
};

/** Compiles the error-severity constraints of an element; warnings are not evaluated (they never reject). */
export function compileInvariants(constraints: ConstraintSource[] | undefined, cache: Map<string, Invariant>): Invariant[] {
  const result: Invariant[] = [];
  for (const c of constraints ?? []) {
    if (c.severity !== 'error' || CHECKED_ELSEWHERE.has(c.key) || !c.expression) {
      continue;
    }
    const cacheKey = `${c.key}\u0000${c.expression}`;
    let invariant = cache.get(cacheKey);
    if (invariant === undefined) {
      invariant = compileInvariant(c);
      cache.set(cacheKey, invariant);
    }
    result.push(invariant);
  }
  return result;
}

function compileInvariant(c: ConstraintSource): Invariant {
  const native = NATIVE[c.key];
  if (native && native.expression === c.expression) {
    return { key: c.key, human: c.description, expression: c.expression, holds: native.holds };
  }
  const erratum = ERRATA[c.key];
  const expression = erratum && erratum.published === c.expression ? erratum.corrected : c.expression;
  let atom: Atom;
  try {
    atom = withTemporalComparisons(parseFhirPath(expression));
  } catch (err) {
    // All R4 invariants parse; a profile's that does not must fail the load, not go unenforced.
    throw new Error(`Invariant ${c.key} cannot be parsed (${(err as Error).message}): ${c.expression}`);
  }
  return {
    key: c.key,
    human: c.description,
    expression,
    holds: (value, scope) => {
      const variables: Record<string, TypedValue> = {
        '%context': value,
        '%resource': scope.resource,
        '%rootResource': scope.rootResource,
        '%ucum': UCUM,
      };
      const result = evalFhirPathTyped(atom as Parameters<typeof evalFhirPathTyped>[0], [value], variables);
      // An empty or non-boolean result is a failure: the invariant must evaluate to true.
      return result.length === 1 && result[0].value === true;
    },
  };
}

const UCUM = toTypedValue('http://unitsofmeasure.org');

const COMPARISONS: Record<string, (x: number) => boolean> = {
  '<': (x) => x < 0,
  '<=': (x) => x <= 0,
  '>': (x) => x > 0,
  '>=': (x) => x >= 0,
};

interface ComparisonAtom extends Atom {
  operator: string;
  left: Atom;
  right: Atom;
}

/** Replaces, in place, every comparison atom of a parsed expression with a precision-aware one. */
function withTemporalComparisons(atom: Atom): Atom {
  const visit = (node: Atom): Atom => {
    for (const [field, child] of Object.entries(node)) {
      if (Array.isArray(child)) {
        child.forEach((item, i) => {
          if (isAtom(item)) {
            child[i] = visit(item);
          }
        });
      } else if (isAtom(child)) {
        (node as unknown as Record<string, unknown>)[field] = visit(child);
      }
    }
    const candidate = node as Partial<ComparisonAtom>;
    if (typeof candidate.operator === 'string' && COMPARISONS[candidate.operator] && candidate.left && candidate.right) {
      return new TemporalAwareComparison(node as ComparisonAtom);
    }
    return node;
  };
  return visit(atom);
}

function isAtom(x: unknown): x is Atom {
  return typeof x === 'object' && x !== null && typeof (x as Atom).eval === 'function';
}

class TemporalAwareComparison implements Atom {
  constructor(private readonly inner: ComparisonAtom) {}

  eval(context: AtomContext, input: TypedValue[]): TypedValue[] {
    const left = this.inner.left.eval(context, input);
    const right = this.inner.right.eval(context, input);
    if (left.length === 1 && right.length === 1 && isTemporal(left[0]) && isTemporal(right[0])) {
      const a = parseTemporal(String(left[0].value), left[0].type);
      const b = parseTemporal(String(right[0].value), right[0].type);
      if (a && b) {
        const order = compareTemporal(a, b);
        return order === undefined ? [] : [{ type: 'boolean', value: COMPARISONS[this.inner.operator](order) }];
      }
    }
    return this.inner.eval(context, input);
  }

  toString(): string {
    return this.inner.toString();
  }
}

function isTemporal(v: TypedValue): boolean {
  return TEMPORAL_TYPES.has(v.type) && typeof v.value === 'string';
}

function hasKey(value: unknown, key: string): boolean {
  return typeof value === 'object' && value !== null && (value as Json)[key] !== undefined;
}

function contained(resource: unknown): Json[] {
  const list = (resource as Json).contained;
  return Array.isArray(list) ? list.filter((r): r is Json => typeof r === 'object' && r !== null) : [];
}

function containedIds(resource: unknown): Set<string> {
  const ids = new Set<string>();
  for (const r of contained(resource)) {
    if (typeof r.id === 'string') {
      ids.add(r.id);
    }
  }
  return ids;
}

/**
 * dom-3: every contained resource is referenced ("#id") from elsewhere in the resource — including from other
 * contained resources — or the resource holds a reference to "#" (the container), which contained resources
 * use to point back to it.
 */
function containedAreReferenced(resource: Json): boolean {
  const list = contained(resource);
  if (list.length === 0) {
    return true;
  }
  const references = new Set<string>();
  collectLocalReferences(resource, references, 0);
  if (references.has('#')) {
    return true;
  }
  return list.every((r) => typeof r.id === 'string' && references.has(`#${r.id}`));
}

/** Strings beginning with '#' anywhere in the resource: Reference.reference, canonical, uri and url values. */
function collectLocalReferences(value: unknown, into: Set<string>, depth: number): void {
  if (depth > 200) {
    return;
  }
  if (typeof value === 'string') {
    if (value.charCodeAt(0) === 35) {
      into.add(value);
    }
  } else if (Array.isArray(value)) {
    for (const item of value) {
      collectLocalReferences(item, into, depth + 1);
    }
  } else if (typeof value === 'object' && value !== null) {
    for (const key in value) {
      collectLocalReferences((value as Json)[key], into, depth + 1);
    }
  }
}

function linkIdsDistinct(node: Json, seen: Set<string>): boolean {
  const items = Array.isArray(node.item) ? (node.item as Json[]) : [];
  for (const item of items) {
    if (typeof item !== 'object' || item === null) {
      continue;
    }
    if (typeof item.linkId === 'string') {
      if (seen.has(item.linkId)) {
        return false;
      }
      seen.add(item.linkId);
    }
    if (!linkIdsDistinct(item, seen)) {
      return false;
    }
  }
  return true;
}
