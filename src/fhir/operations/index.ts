/**
 * The operations this server implements (https://hl7.org/fhir/R4/operations.html), one table that both the router
 * and the CapabilityStatement read: a new operation is an entry here and a file of its own, not a branch in the
 * router. An operation is invoked at `$name` (system level), `[type]/$name` (type) or `[type]/[id]/$name`
 * (instance), with the methods it allows (GET only for one that changes nothing).
 */
import type { FhirContext, FhirRequest, FhirResponse } from '../context';
import { methodNotAllowed, notFound } from '../outcomes';
import { assertId, assertResourceType } from '../resources';
import { everythingOperation } from './everything';
import { generateSlotsOperation } from './generateSlots';
import { joinOperation } from './join';
import { reindexOperation } from './reindex';
import { validateOperation } from './validate';

export type OperationLevel = 'system' | 'type' | 'instance';

/** An OperationDefinition.parameter, as much as a client needs to call the operation. */
export interface OperationParameter {
  name: string;
  use: 'in' | 'out';
  min: number;
  max: string;
  type: string;
  documentation: string;
}

export interface OperationTarget {
  type?: string;
  id?: string;
}

export interface FhirOperation {
  /** Without the `$`. */
  name: string;
  /** Canonical URL of its OperationDefinition. */
  definition: string;
  levels: readonly OperationLevel[];
  /** The types it applies to at type and instance level; undefined: every type. */
  resourceTypes?: readonly string[];
  methods: readonly ('GET' | 'POST')[];
  parameters: readonly OperationParameter[];
  documentation: string;
  run(ctx: FhirContext, req: FhirRequest, target: OperationTarget): Promise<FhirResponse>;
}

/** https://hl7.org/fhir/R4/resource-operation-validate.html */
const validate: FhirOperation = {
  name: 'validate',
  definition: 'http://hl7.org/fhir/OperationDefinition/Resource-validate',
  levels: ['type', 'instance'],
  methods: ['GET', 'POST'],
  parameters: [
    { name: 'resource', use: 'in', min: 0, max: '1', type: 'Resource', documentation: 'The resource to validate (or the request body itself)' },
    { name: 'mode', use: 'in', min: 0, max: '1', type: 'code', documentation: 'create | update | delete' },
    { name: 'profile', use: 'in', min: 0, max: '*', type: 'uri', documentation: 'A profile to validate against' },
    { name: 'return', use: 'out', min: 1, max: '1', type: 'OperationOutcome', documentation: 'Every issue found' },
  ],
  documentation: 'Validates a resource against the base specification and the profiles it claims or is asked for, storing nothing.',
  run: (ctx, req, { type, id }) => validateOperation(ctx, req, type as string, id),
};

/** Rebuilds search index rows after SearchParameters changed (as HAPI's $reindex). */
const reindex: FhirOperation = {
  name: 'reindex',
  definition: 'http://fhir.healthmed.com.br/OperationDefinition/reindex',
  levels: ['system', 'type'],
  methods: ['POST'],
  parameters: [
    { name: 'count', use: 'out', min: 1, max: '1', type: 'integer', documentation: 'How many resources were reindexed' },
    { name: 'type', use: 'out', min: 0, max: '*', type: 'BackboneElement', documentation: 'Per resource type: type (code) and count (integer)' },
  ],
  documentation: 'Rewrites the search index rows of the stored resources of every type, or of one type.',
  run: (ctx, _req, { type }) => reindexOperation(ctx, type),
};

export const OPERATIONS: readonly FhirOperation[] = [validate, reindex, generateSlotsOperation, joinOperation, everythingOperation];

const byName = new Map(OPERATIONS.map((op) => [`$${op.name}`, op]));

/** The operations invoked on one resource type (type or instance level), for the CapabilityStatement. */
export function operationsOf(resourceType: string): FhirOperation[] {
  return OPERATIONS.filter((op) => op.levels.some((l) => l !== 'system') && (!op.resourceTypes || op.resourceTypes.includes(resourceType)));
}

export const systemOperations = (): FhirOperation[] => OPERATIONS.filter((op) => op.levels.includes('system'));

/**
 * Runs the operation a path names: its last segment is `$name`, after nothing, a type, or a type and an id.
 * An operation this server does not have, or not at that level or on that type: 404; a method it does not allow: 405.
 */
export function invokeOperation(ctx: FhirContext, req: FhirRequest, segments: string[]): Promise<FhirResponse> {
  const at = segments.findIndex((s) => s.startsWith('$'));
  const op = byName.get(segments[at]);
  if (!op) throw notFound(`Unknown operation ${segments[at]}`);
  if (at !== segments.length - 1 || at > 2) throw notFound(`Unknown path /${req.path}`);
  const level: OperationLevel = at === 0 ? 'system' : at === 1 ? 'type' : 'instance';
  const type = segments[0];
  const id = level === 'instance' ? segments[1] : undefined;
  if (level !== 'system') assertResourceType(type);
  if (!op.levels.includes(level) || (level !== 'system' && op.resourceTypes && !op.resourceTypes.includes(type))) {
    throw notFound(`$${op.name} is not defined ${level === 'system' ? 'at the system level' : `on ${type} at the ${level} level`}`);
  }
  if (id !== undefined) assertId(id);
  const method = req.method === 'HEAD' ? 'GET' : req.method;
  if (!(op.methods as readonly string[]).includes(method)) throw methodNotAllowed(`${req.method} is not allowed on $${op.name} (use ${op.methods.join(' or ')})`);
  return op.run(ctx, req, level === 'system' ? {} : { type, id });
}
