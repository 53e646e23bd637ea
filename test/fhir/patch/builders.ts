/** Builders for FHIRPath Patch documents, so each test reads as the operations it sends. */
import type { Parameters, ParametersParameter } from '@medplum/fhirtypes';

/** A part's content: one of value[x], resource or part. */
export type PartValue = Omit<ParametersParameter, 'name'>;

export function operation(type: string, parts: Record<string, PartValue>): ParametersParameter {
  return {
    name: 'operation',
    part: [{ name: 'type', valueCode: type }, ...Object.entries(parts).map(([name, part]) => ({ name, ...part }))],
  };
}

export function fhirPatch(...operations: ParametersParameter[]): Parameters {
  return { resourceType: 'Parameters', parameter: operations };
}

export const add = (path: string, name: string, value: PartValue): ParametersParameter =>
  operation('add', { path: { valueString: path }, name: { valueString: name }, value });

export const insert = (path: string, index: number, value: PartValue): ParametersParameter =>
  operation('insert', { path: { valueString: path }, index: { valueInteger: index }, value });

export const del = (path: string): ParametersParameter => operation('delete', { path: { valueString: path } });

export const replace = (path: string, value: PartValue): ParametersParameter =>
  operation('replace', { path: { valueString: path }, value });

export const move = (path: string, source: number, destination: number): ParametersParameter =>
  operation('move', {
    path: { valueString: path },
    source: { valueInteger: source },
    destination: { valueInteger: destination },
  });

/** A complex value given as parts, one per element (https://hl7.org/fhir/R4/fhirpatch.html#anonymous). */
export const parts = (...elements: [string, PartValue][]): PartValue => ({
  part: elements.map(([name, value]) => ({ name, ...value })),
});
