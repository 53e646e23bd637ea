/**
 * The OperationDefinitions (https://hl7.org/fhir/R4/operationdefinition.html) of this server's own operations, made
 * from the operation table, so that the canonical each CapabilityStatement entry names resolves on the server
 * itself: `GET [base]/OperationDefinition/[id]`, the id being the canonical's last segment (as HAPI serves its
 * own). Operations defined by the specification ($validate) keep their canonical at hl7.org.
 */
import type { OperationDefinition } from '@medplum/fhirtypes';
import type { StoredVersion } from '../../storage/repository';
import { OPERATIONS, type FhirOperation } from '.';

const PROJECT_CANONICAL = 'http://fhir.healthmed.com.br/OperationDefinition/';
/** The definitions change only with a release: one version, dated with it. */
const RELEASED = '2026-12-03T00:00:00.000Z';

function definitionOf(op: FhirOperation, id: string): OperationDefinition {
  return {
    resourceType: 'OperationDefinition',
    id,
    meta: { versionId: '1', lastUpdated: RELEASED },
    url: op.definition,
    name: op.name.replace(/(^|-)([a-z])/g, (_, __, c: string) => c.toUpperCase()),
    title: `$${op.name}`,
    status: 'active',
    kind: 'operation',
    publisher: 'Health&Med',
    description: op.documentation,
    affectsState: op.methods.every((m) => m === 'GET') ? false : undefined,
    code: op.name,
    resource: op.resourceTypes ? [...op.resourceTypes] : undefined,
    system: op.levels.includes('system'),
    type: op.levels.includes('type'),
    instance: op.levels.includes('instance'),
    parameter: op.parameters.map((p) => ({ name: p.name, use: p.use, min: p.min, max: p.max, type: p.type as NonNullable<OperationDefinition['parameter']>[number]['type'], documentation: p.documentation })),
  } as OperationDefinition;
}

const byId = new Map<string, OperationDefinition>(
  OPERATIONS.filter((op) => op.definition.startsWith(PROJECT_CANONICAL)).map((op) => {
    const id = op.definition.slice(PROJECT_CANONICAL.length);
    return [id, definitionOf(op, id)];
  }),
);

/** The built-in OperationDefinition with this id, as a stored version, if there is one. */
export function builtinOperationDefinition(id: string): StoredVersion | undefined {
  const resource = byId.get(id);
  return resource && { resourceType: 'OperationDefinition', id, versionId: 1, lastUpdated: RELEASED, deleted: false, resource };
}
