/**
 * The validator used on every write and by $validate (https://hl7.org/fhir/R4/resource-operation-validate.html).
 * One pass over the resource checks the R4 base definitions (structure, cardinality, data types and formats,
 * invariants, narrative), the CPF/CRM identifier rule (CONTRACT.md §3), and the project profiles the resource
 * declares in meta.profile (or the caller asks for). Status: base errors make the content malformed (400);
 * profile and identifier errors make it unprocessable (422).
 */
import type { OperationOutcomeIssue, Resource } from '@medplum/fhirtypes';
import { issuesOutcome, OperationOutcomeError } from '../outcomes';
import type { ConformanceSet } from './conformance';
import { loadConformanceResources } from './conformance';
import { Definitions } from './definitions';
import type { InvariantScope } from './invariants';
import { IssueCollector } from './issues';
import type { ProfileHooks } from './structure';
import { StructureValidator } from './structure';

export { parseFhirJson } from './json';
export { CPF_SYSTEM, CRM_SYSTEM, isValidCpf, isValidCrm, normalizeCpf } from './identifiers';

export interface ValidateOptions {
  /** Profiles to check the resource against in addition to its meta.profile (e.g. $validate's `profile`). */
  profiles?: string[];
}

export interface FhirValidator {
  /** All issues (errors, warnings) for a resource. */
  validate(resource: unknown, options?: ValidateOptions): OperationOutcomeIssue[];
  /** Throws OperationOutcomeError (400 base structure, 422 profile or CPF/CRM rule) when there is an error. */
  assertValid(resource: unknown, options?: ValidateOptions): void;
  /** Conformance resources loaded from fhir-profiles/ (StructureDefinitions with snapshots, SearchParameters, ...). */
  readonly conformanceResources: Resource[];
  /** URLs of the loaded resource profiles (for CapabilityStatement.rest.resource.supportedProfile). */
  readonly profileUrls: string[];
}

let definitions: Definitions | undefined;

/** The R4 base definitions are the same for every validator: compile them once per process. */
function baseDefinitions(): Definitions {
  definitions ??= new Definitions();
  return definitions;
}

/** Loads the base definitions and the conformance resources in `profilesDir`; call once at start. */
export function loadValidator(profilesDir: string): FhirValidator {
  const base = baseDefinitions();
  return new Validator(base, loadConformanceResources(profilesDir, base));
}

const HL7_BASE = 'http://hl7.org/fhir/StructureDefinition/';

class Validator implements FhirValidator {
  readonly conformanceResources: Resource[];
  readonly profileUrls: string[];

  constructor(
    private readonly definitions: Definitions,
    private readonly conformance: ConformanceSet,
  ) {
    this.conformanceResources = conformance.resources;
    this.profileUrls = [...conformance.profiles.keys()];
  }

  validate(resource: unknown, options?: ValidateOptions): OperationOutcomeIssue[] {
    return this.run(resource, options, true).issues;
  }

  assertValid(resource: unknown, options?: ValidateOptions): void {
    const out = this.run(resource, options, false);
    if (out.hasErrors) {
      throw new OperationOutcomeError(out.errorCounts.base > 0 ? 400 : 422, issuesOutcome(out.issues));
    }
  }

  /** `bindingWarnings`: also judge extensible and preferred bindings ($validate; a write keeps only errors). */
  private run(resource: unknown, options: ValidateOptions | undefined, bindingWarnings: boolean): IssueCollector {
    const out = new IssueCollector();
    const hooks = this.hooks(out, options?.profiles ?? []);
    try {
      new StructureValidator(this.definitions, out, hooks, bindingWarnings).resource(resource, undefined, undefined);
    } catch (err) {
      // Pathological input (e.g. a stack overflow on absurd nesting) is bad content, never a server error.
      if (err instanceof RangeError) {
        out.error('base', 'too-costly', `The resource could not be validated: ${err.message}`, 'Resource');
      } else {
        throw err;
      }
    }
    return out;
  }

  private hooks(out: IssueCollector, requested: string[]): ProfileHooks {
    const { extensions } = this.conformance;
    return {
      resource: (value, path, scope, isRoot) => {
        const meta = value.meta as { profile?: unknown } | undefined;
        const declared = Array.isArray(meta?.profile) ? meta.profile.filter((p): p is string => typeof p === 'string') : [];
        for (const url of new Set(declared)) {
          this.applyProfile(url, value, path, scope, out, false);
        }
        if (isRoot) {
          for (const url of new Set(requested)) {
            this.applyProfile(url, value, path, scope, out, true);
          }
        }
      },
      extension: (value, path, scope) => {
        const definition = typeof value.url === 'string' ? extensions.get(value.url) : undefined;
        definition?.check(value, path, scope, out);
      },
    };
  }

  private applyProfile(url: string, value: Record<string, unknown>, path: string, scope: InvariantScope, out: IssueCollector, requested: boolean): void {
    const canonical = url.split('|')[0];
    const resourceType = value.resourceType as string;
    if (canonical === HL7_BASE + resourceType) {
      return; // the base definition, already checked
    }
    const profile = this.conformance.profiles.get(canonical);
    if (!profile) {
      // As the reference validator: a declared profile that is not known is reported, not enforced.
      if (requested) {
        out.error('profile', 'not-found', `The profile '${url}' is not known to this server`, path);
      } else {
        out.warning('not-found', `Profile reference '${url}' has not been checked because it is not known to this server`, `${path}.meta.profile`);
      }
      return;
    }
    if (profile.type !== resourceType) {
      out.error('profile', 'invalid', `The profile '${url}' is for ${profile.type} resources, not ${resourceType}`, path);
      return;
    }
    profile.check(value, path, scope, out);
  }
}
