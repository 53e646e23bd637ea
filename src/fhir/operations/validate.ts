/**
 * $validate: https://hl7.org/fhir/R4/resource-operation-validate.html
 * POST [type]/$validate with the resource (or a Parameters with `resource`, `mode`, `profile`), or
 * [type]/[id]/$validate for a stored resource. Answers 200 with an OperationOutcome listing every issue.
 */
import type { Parameters, Resource } from '@medplum/fhirtypes';
import { findVisible, gate } from '../../access/visible';
import { reader, type FhirContext, type FhirRequest, type FhirResponse } from '../context';
import { allOk, badRequest, issuesOutcome, notFound } from '../outcomes';
import { assertResourceType } from '../resources';

const MODES = new Set(['create', 'update', 'delete']);

export async function validateOperation(ctx: FhirContext, req: FhirRequest, type: string, id?: string): Promise<FhirResponse> {
  assertResourceType(type);
  gate(ctx.access, 'operation', type);
  let resource: unknown = req.body;
  let mode = req.query.get('mode') ?? undefined;
  const profiles = req.query.getAll('profile');
  const body = req.body as { resourceType?: string } | undefined;
  if (body?.resourceType === 'Parameters' && type !== 'Parameters') {
    const params = body as Parameters;
    resource = params.parameter?.find((p) => p.name === 'resource')?.resource;
    mode = params.parameter?.find((p) => p.name === 'mode')?.valueCode ?? mode;
    for (const p of params.parameter ?? []) if (p.name === 'profile' && p.valueUri) profiles.push(p.valueUri);
  }
  if (mode !== undefined && !MODES.has(mode)) throw badRequest(`Invalid mode: ${mode}`, 'mode');
  if (resource === undefined && id) {
    // Another patient's resource is not validated: it does not exist for the caller.
    const stored = await findVisible(ctx.access, reader(ctx), 'operation', type, id, { fhirBaseUrl: ctx.settings.fhirBaseUrl });
    if (!stored || stored.deleted) throw notFound(`${type}/${id} not found`);
    resource = stored.resource;
  }
  if (mode === 'delete') return { status: 200, body: allOk('The resource may be deleted') };
  if (resource === undefined) throw badRequest('$validate needs a resource to validate');
  const issues = [];
  const actualType = (resource as Resource)?.resourceType;
  if (actualType !== undefined && actualType !== type) {
    issues.push({
      severity: 'error' as const,
      code: 'invalid' as const,
      diagnostics: `Resource type ${String(actualType)} does not match ${type}`,
      expression: ['resourceType'],
    });
  }
  issues.push(...ctx.validator.validate(resource, { profiles }));
  return { status: 200, body: issues.length > 0 ? issuesOutcome(issues) : allOk('Validation passed: no issues') };
}
