/**
 * GET /metadata: a CapabilityStatement generated from what is implemented, per resource type from the
 * loaded definitions. https://hl7.org/fhir/R4/capabilitystatement.html — https://hl7.org/fhir/R4/http.html#capabilities
 */
import type {
  CapabilityStatement,
  CapabilityStatementRestResource,
  CapabilityStatementRestResourceOperation,
  CapabilityStatementRestSecurity,
  ResourceType,
  StructureDefinition,
} from '@medplum/fhirtypes';
import type { FhirContext, FhirResponse } from '../context';
import { resourceTypes } from '../definitions';
import { searchCapabilities, SYSTEM_SEARCH_PARAMS } from '../search/capability';
import { operationsOf, systemOperations, type FhirOperation } from '.';

const cache = new Map<string, CapabilityStatement>();

const TYPE_INTERACTIONS = ['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'history-type', 'create', 'search-type'] as const;

export function capabilities(ctx: FhirContext): FhirResponse {
  const base = ctx.settings.fhirBaseUrl;
  let cs = cache.get(base);
  if (!cs) {
    cs = build(ctx);
    cache.set(base, cs);
  }
  return { status: 200, body: cs };
}

function build(ctx: FhirContext): CapabilityStatement {
  const profiles = ctx.validator.profileUrls;
  const profileType = new Map<string, string>();
  // The project's extensions, by the resource type they are used on (StructureDefinition.context)
  const extensionsOn = new Map<string, StructureDefinition[]>();
  for (const r of ctx.validator.conformanceResources) {
    if (r.resourceType === 'StructureDefinition' && r.url && r.kind === 'resource') profileType.set(r.url, r.type);
    if (r.resourceType === 'StructureDefinition' && r.type === 'Extension') {
      for (const c of r.context ?? []) if (c.type === 'element' && c.expression) extensionsOn.set(c.expression, [...(extensionsOn.get(c.expression) ?? []), r]);
    }
  }
  const resource: CapabilityStatementRestResource[] = [...resourceTypes()].sort().map((type) => ({
    type: type as ResourceType,
    supportedProfile: profiles.filter((p: string) => profileType.get(p) === type),
    interaction: TYPE_INTERACTIONS.map((code) => ({ code })),
    versioning: 'versioned-update',
    readHistory: true,
    updateCreate: true,
    conditionalCreate: true,
    conditionalRead: 'modified-since',
    conditionalUpdate: true,
    conditionalDelete: 'single',
    referencePolicy: ['literal', 'local', 'enforced'],
    ...searchCapabilities(type),
    ...extensionDocumentation(extensionsOn.get(type)),
    operation: operationsOf(type).map(operationEntry),
  }));
  // R4 JSON has no empty arrays (https://hl7.org/fhir/R4/json.html)
  for (const r of resource) {
    const fields = r as unknown as Record<string, unknown>;
    for (const [key, value] of Object.entries(fields)) if (Array.isArray(value) && value.length === 0) delete fields[key];
  }
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: new Date().toISOString(),
    kind: 'instance',
    name: 'HealthMedFhirServer',
    title: 'Health&Med FHIR R4 server',
    publisher: 'Health&Med',
    software: { name: 'healthmed-fhir-server', version: '0.1.0' },
    implementation: { description: 'Health&Med FHIR R4 server', url: ctx.settings.fhirBaseUrl },
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'application/json'],
    patchFormat: ['application/json-patch+json', 'application/fhir+json'],
    rest: [
      {
        mode: 'server',
        security: smartSecurity(ctx.settings.fhirBaseUrl.replace(/\/fhir$/, '')),
        resource,
        interaction: [{ code: 'transaction' }, { code: 'batch' }, { code: 'history-system' }, { code: 'search-system' }],
        searchParam: SYSTEM_SEARCH_PARAMS,
        operation: systemOperations().map(operationEntry),
        compartment: ['http://hl7.org/fhir/CompartmentDefinition/patient'],
      },
    ],
  };
}

/** An operation as the CapabilityStatement lists it, from the operation table (./index.ts). */
function operationEntry(op: FhirOperation): CapabilityStatementRestResourceOperation {
  const params = (use: 'in' | 'out') =>
    op.parameters
      .filter((p) => p.use === use)
      .map((p) => `${p.name} (${p.type}, ${p.min}..${p.max})`)
      .join(', ') || 'none';
  return {
    name: op.name,
    definition: op.definition,
    documentation: `${op.documentation} ${op.methods.join(' or ')} at the ${op.levels.join(' and ')} level. In: ${params('in')}. Out: ${params('out')}.`,
  };
}

/** The project extensions a type carries, named in its documentation (a CapabilityStatement has no element for them). */
function extensionDocumentation(extensions: StructureDefinition[] | undefined): { documentation?: string } {
  if (!extensions?.length) return {};
  return { documentation: `Extensions: ${extensions.map((e) => `${e.url} (${e.title ?? e.name})`).join('; ')}.` };
}

/**
 * The SMART on FHIR security block (https://hl7.org/fhir/smart-app-launch/conformance.html#using-cs):
 * the OAuth endpoints; the full list is in /.well-known/smart-configuration.
 */
function smartSecurity(baseUrl: string): CapabilityStatementRestSecurity {
  return {
    cors: true,
    service: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR' }], text: 'OAuth2 using SMART-on-FHIR profile' }],
    extension: [
      {
        url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
        extension: [
          { url: 'authorize', valueUri: `${baseUrl}/oauth2/authorize` },
          { url: 'token', valueUri: `${baseUrl}/oauth2/token` },
          { url: 'revoke', valueUri: `${baseUrl}/oauth2/revoke` },
          { url: 'introspect', valueUri: `${baseUrl}/oauth2/introspect` },
        ],
      },
    ],
  };
}
