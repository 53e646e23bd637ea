/**
 * Loads the project's conformance resources (fhir-profiles/*.json, canonical base http://fhir.healthmed.com.br):
 * StructureDefinitions, SearchParameters, NamingSystems, CodeSystems, ... One resource per file. Each is checked
 * against the base specification, canonical URLs must be unique, differential StructureDefinitions get a
 * generated snapshot, and constraint profiles are compiled for enforcement. Any problem stops the server from
 * starting: a profile that silently does nothing is worse than a failed deploy.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { Resource, StructureDefinition } from '@medplum/fhirtypes';
import type { Definitions } from './definitions';
import { IssueCollector } from './issues';
import { parseFhirJson } from './json';
import { CompiledProfile } from './profile';
import { generateSnapshot } from './snapshot';
import { StructureValidator } from './structure';

export interface ConformanceSet {
  /** The resources as loaded; StructureDefinitions carry their generated snapshot. */
  resources: Resource[];
  /** Constraint profiles on resource types, by canonical URL. */
  profiles: Map<string, CompiledProfile>;
  /** Extension definitions, by canonical URL (the extension's `url`). */
  extensions: Map<string, CompiledProfile>;
}

export function loadConformanceResources(dir: string, definitions: Definitions): ConformanceSet {
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort();
  const resources = files.map((file) => readResource(path.join(dir, file), definitions));
  checkUniqueUrls(resources);

  const local = new Map<string, StructureDefinition>();
  for (const r of resources) {
    if (r.resourceType === 'StructureDefinition') {
      local.set(r.url as string, r);
    }
  }
  const withSnapshots = new Map<string, StructureDefinition>();
  const resolving = new Set<string>();
  const resolve = (url: string): StructureDefinition | undefined => {
    const canonical = url.split('|')[0];
    const sd = local.get(canonical);
    if (!sd) {
      return definitions.structureDefinition(canonical);
    }
    let done = withSnapshots.get(canonical);
    if (!done) {
      if (resolving.has(canonical)) {
        throw new Error(`${canonical}: circular baseDefinition`);
      }
      resolving.add(canonical);
      done = sd.snapshot?.element?.length ? sd : { ...sd, snapshot: { element: generateSnapshot(sd, resolve) } };
      resolving.delete(canonical);
      withSnapshots.set(canonical, done);
    }
    return done;
  };

  const profiles = new Map<string, CompiledProfile>();
  const extensions = new Map<string, CompiledProfile>();
  const context = { baseInvariantKeys: definitions.baseInvariantKeys, invariantCache: definitions.invariantCache };
  const loaded = resources.map((r) => {
    if (r.resourceType !== 'StructureDefinition') {
      return r;
    }
    const sd = resolve(r.url as string) as StructureDefinition;
    if (sd.derivation === 'constraint') {
      const compiled = new CompiledProfile(sd, context);
      if (sd.type === 'Extension') {
        extensions.set(compiled.url, compiled);
      } else if (definitions.resourceTypes.has(sd.type as string)) {
        profiles.set(compiled.url, compiled);
      }
    }
    return sd;
  });
  return { resources: loaded, profiles, extensions };
}

function readResource(file: string, definitions: Definitions): Resource {
  const name = path.basename(file);
  const resource = parseFhirJson(fs.readFileSync(file, 'utf8')) as Resource;
  const out = new IssueCollector();
  new StructureValidator(definitions, out).resource(resource, undefined, undefined);
  const errors = out.issues.filter((i) => i.severity === 'error' || i.severity === 'fatal');
  if (errors.length > 0) {
    throw new Error(`fhir-profiles/${name} is not valid FHIR R4: ${errors.map((i) => `${i.expression?.[0]}: ${i.diagnostics}`).join('; ')}`);
  }
  const url = (resource as { url?: unknown }).url;
  if (resource.resourceType === 'StructureDefinition' && typeof url !== 'string') {
    throw new Error(`fhir-profiles/${name}: a StructureDefinition needs a url`);
  }
  return resource;
}

function checkUniqueUrls(resources: Resource[]): void {
  const seen = new Set<string>();
  for (const r of resources) {
    const url = (r as { url?: unknown }).url;
    if (typeof url === 'string') {
      const key = `${r.resourceType} ${url}`;
      if (seen.has(key)) {
        throw new Error(`fhir-profiles: two ${r.resourceType} resources have the url ${url}`);
      }
      seen.add(key);
    }
  }
}
