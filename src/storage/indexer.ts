/**
 * Derives the index rows of a resource at write time, in the same transaction as the write:
 * token values of every R4 token SearchParameter of the type (from their FHIRPath expressions), and the
 * local references the resource makes (for referential integrity).
 * https://hl7.org/fhir/R4/search.html#token
 */
import {
  convertToSearchableTokens,
  evalFhirPathTyped,
  getParsedExpressionForResourceType,
  getSearchParameters,
  toTypedValue,
  type FhirPathAtom,
} from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';

export interface TokenRow {
  code: string;
  system: string | null;
  value: string | null;
}

export interface ReferenceRow {
  targetType: string;
  targetId: string;
}

interface CompiledParam {
  code: string;
  atom: FhirPathAtom;
}

const tokenParamCache = new Map<string, CompiledParam[]>();

/** Token search parameters of a resource type with their parsed expressions (compiled once per type). */
export function tokenParams(resourceType: string): CompiledParam[] {
  let compiled = tokenParamCache.get(resourceType);
  if (!compiled) {
    compiled = Object.entries(getSearchParameters(resourceType) ?? {})
      .filter(([code, sp]) => sp.type === 'token' && sp.expression && code !== '_id')
      .map(([code, sp]) => ({ code, atom: getParsedExpressionForResourceType(resourceType, sp.expression as string) }));
    tokenParamCache.set(resourceType, compiled);
  }
  return compiled;
}

export function tokenRows(resource: Resource): TokenRow[] {
  const input = [toTypedValue(resource)];
  const rows: TokenRow[] = [];
  const seen = new Set<string>();
  for (const { code, atom } of tokenParams(resource.resourceType)) {
    let values;
    try {
      values = evalFhirPathTyped(atom, input);
    } catch {
      continue; // an expression that does not apply to this instance indexes nothing
    }
    if (values.length === 0) continue;
    for (const t of convertToSearchableTokens(values)) {
      if (t.system === undefined && t.value === undefined) continue;
      const key = `${code}\u0000${t.system ?? ''}\u0000${t.value ?? ''}`;
      if (seen.has(key)) continue;
      seen.add(key);
      rows.push({ code, system: t.system ?? null, value: t.value ?? null });
    }
  }
  return rows;
}

/**
 * Local literal references (`Type/id`, `Type/id/_history/n`, or absolute under our own FHIR base),
 * anywhere in the resource, contained resources included. Contained (`#x`), `urn:` and external URLs are skipped.
 */
export function referenceRows(resource: Resource, fhirBaseUrl: string): ReferenceRow[] {
  const rows = new Map<string, ReferenceRow>();
  walkReferences(resource, (ref) => {
    const target = parseLocalReference(ref, fhirBaseUrl);
    if (target) rows.set(`${target.targetType}/${target.targetId}`, target);
  });
  return [...rows.values()];
}

const LOCAL_REF = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[A-Za-z0-9\-.]{1,64})?$/;

export function parseLocalReference(ref: string, fhirBaseUrl: string): ReferenceRow | undefined {
  let relative = ref;
  if (ref.startsWith(fhirBaseUrl + '/')) relative = ref.slice(fhirBaseUrl.length + 1);
  const m = LOCAL_REF.exec(relative);
  return m ? { targetType: m[1], targetId: m[2] } : undefined;
}

/** Calls fn for every Reference.reference string in a JSON tree. */
export function walkReferences(node: unknown, fn: (reference: string, holder: Record<string, unknown>) => void): void {
  if (Array.isArray(node)) {
    for (const item of node) walkReferences(item, fn);
  } else if (node && typeof node === 'object') {
    const obj = node as Record<string, unknown>;
    for (const [key, value] of Object.entries(obj)) {
      if (key === 'reference' && typeof value === 'string') fn(value, obj);
      else if (value && typeof value === 'object') walkReferences(value, fn);
    }
  }
}
