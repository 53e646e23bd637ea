/**
 * Snapshot generation for the project's differential StructureDefinitions:
 * https://hl7.org/fhir/R4/profiling.html#snapshot
 * Covers what constraint profiles and extension definitions normally say: narrowing cardinality, fixed and
 * pattern values, added invariants, bindings, type narrowing, slicing of repeating elements, and constraints
 * on children of data-type elements (including inside slices). Anything else is refused at load time rather
 * than silently not enforced. Children added under a data-type element are inserted on their own (not the
 * whole expanded data type), which is all the validator needs.
 */
import type { ElementDefinition, StructureDefinition } from '@medplum/fhirtypes';

export type DefinitionResolver = (url: string) => StructureDefinition | undefined;

const HL7_TYPE_BASE = 'http://hl7.org/fhir/StructureDefinition/';

/** Properties of a differential element that replace the base's; `constraint` is added to, not replaced. */
const NOT_MERGED = new Set(['id', 'path', 'constraint', 'extension', 'mapping', 'base']);

export function generateSnapshot(sd: StructureDefinition, resolve: DefinitionResolver): ElementDefinition[] {
  if (!sd.baseDefinition) {
    throw new Error(`${sd.url}: a differential StructureDefinition needs a baseDefinition`);
  }
  const base = resolve(sd.baseDefinition);
  if (!base?.snapshot?.element?.length) {
    throw new Error(`${sd.url}: base definition ${sd.baseDefinition} is not available with a snapshot`);
  }
  const elements: ElementDefinition[] = structuredClone(base.snapshot.element).map((e) => ({ ...e, id: e.id ?? e.path }));
  const builder = new SnapshotBuilder(sd, elements, resolve);
  for (const diff of sd.differential?.element ?? []) {
    builder.apply(diff);
  }
  return elements;
}

class SnapshotBuilder {
  constructor(
    private readonly sd: StructureDefinition,
    private readonly elements: ElementDefinition[],
    private readonly resolve: DefinitionResolver,
  ) {}

  apply(diff: ElementDefinition): void {
    const id = diff.id ?? diff.path;
    if (!id || !diff.path) {
      throw this.error(`every differential element needs a path`);
    }
    const target = this.ensure(id);
    this.merge(target, diff);
  }

  /** Returns the snapshot element with this id, creating it (and missing ancestors) from the base definitions. */
  private ensure(id: string): ElementDefinition {
    const existing = this.find(id);
    if (existing) {
      return existing;
    }
    const segments = splitId(id);
    const last = segments[segments.length - 1];
    if (segments.length < 2) {
      throw this.error(`the element '${id}' is not in the base definition`);
    }
    if (last.slice !== undefined) {
      return this.addSlice(id, joinId([...segments.slice(0, -1), { name: last.name }]), last.slice);
    }
    return this.addChild(id, joinId(segments.slice(0, -1)), last.name);
  }

  private addSlice(id: string, slicedId: string, sliceName: string): ElementDefinition {
    const sliced = this.ensure(slicedId);
    if (!sliced.slicing) {
      throw this.error(`the slice '${id}' comes before slicing is defined on '${slicedId}'`);
    }
    const slice: ElementDefinition = { ...structuredClone(sliced), id, sliceName };
    delete slice.slicing;
    this.elements.splice(this.endOfGroup(slicedId), 0, slice);
    return slice;
  }

  private addChild(id: string, parentId: string, childName: string): ElementDefinition {
    const parent = this.ensure(parentId);
    const types = parent.type ?? [];
    if (types.length !== 1 || !types[0].code) {
      throw this.error(`cannot constrain '${id}': its parent has ${types.length} types`);
    }
    const code = types[0].code;
    // Inside a slice of a backbone element the children are those of the sliced element; otherwise the data type's.
    const template =
      this.find(`${parent.path}.${childName}`) ??
      this.resolve(HL7_TYPE_BASE + code)?.snapshot?.element?.find((e) => e.path === `${code}.${childName}`);
    if (!template) {
      // Also the case for type-specific choice names ("Observation.valueQuantity"), which are not supported.
      throw this.error(`'${childName}' is not an element of ${code} (in '${id}')`);
    }
    const child: ElementDefinition = { ...structuredClone(template), id, path: `${parent.path}.${childName}` };
    this.elements.splice(this.endOfGroup(parentId), 0, child);
    return child;
  }

  private merge(target: ElementDefinition, diff: ElementDefinition): void {
    const base = { min: target.min, max: target.max };
    const record = target as unknown as Record<string, unknown>;
    for (const [key, value] of Object.entries(diff)) {
      if (NOT_MERGED.has(key)) {
        continue;
      }
      if (key.startsWith('fixed') || key.startsWith('pattern')) {
        for (const k of Object.keys(record)) {
          if (k.startsWith('fixed') || k.startsWith('pattern')) {
            delete record[k];
          }
        }
      }
      record[key] = structuredClone(value);
    }
    if (diff.constraint) {
      const keys = new Set((target.constraint ?? []).map((c) => c.key));
      target.constraint = [
        ...(target.constraint ?? []),
        ...diff.constraint.filter((c) => !keys.has(c.key)).map((c) => ({ ...c, source: c.source ?? this.sd.url })),
      ];
    }
    if (diff.mustSupport !== undefined) {
      target.mustSupport = diff.mustSupport;
    }
    if ((target.min ?? 0) < (base.min ?? 0) || maxOf(target.max) > maxOf(base.max)) {
      throw this.error(`'${target.id}' widens the base cardinality ${base.min}..${base.max} to ${target.min}..${target.max}`);
    }
  }

  private find(id: string): ElementDefinition | undefined {
    return this.elements.find((e) => e.id === id);
  }

  /** Index after the element with this id, its descendants and its slices. */
  private endOfGroup(id: string): number {
    let end = this.elements.findIndex((e) => e.id === id) + 1;
    while (end < this.elements.length) {
      const next = this.elements[end].id as string;
      if (!(next.startsWith(`${id}.`) || next.startsWith(`${id}:`))) {
        break;
      }
      end++;
    }
    return end;
  }

  private error(message: string): Error {
    return new Error(`${this.sd.url}: ${message}`);
  }
}

interface IdSegment {
  name: string;
  slice?: string;
}

function splitId(id: string): IdSegment[] {
  return id.split('.').map((part) => {
    const colon = part.indexOf(':');
    return colon < 0 ? { name: part } : { name: part.slice(0, colon), slice: part.slice(colon + 1) };
  });
}

function joinId(segments: IdSegment[]): string {
  return segments.map((s) => (s.slice === undefined ? s.name : `${s.name}:${s.slice}`)).join('.');
}

function maxOf(max: string | undefined): number {
  return max === undefined || max === '*' ? Infinity : Number(max);
}
