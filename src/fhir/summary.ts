/**
 * _summary and _elements: a subset of each returned resource, tagged SUBSETTED.
 * https://hl7.org/fhir/R4/search.html#summary — https://hl7.org/fhir/R4/search.html#elements
 */
import { tryGetDataType } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { badRequest } from './outcomes';

export type SummaryMode = 'true' | 'text' | 'data' | 'count' | 'false';

export interface Subsetting {
  summary?: SummaryMode;
  elements?: string[];
}

const SUBSETTED = { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'SUBSETTED' };
const ALWAYS = ['resourceType', 'id', 'meta'];

export function parseSubsetting(query: URLSearchParams): Subsetting {
  const summary = query.get('_summary') ?? undefined;
  if (summary !== undefined && !['true', 'text', 'data', 'count', 'false'].includes(summary)) {
    throw badRequest(`Invalid _summary: ${summary}`, '_summary');
  }
  const elements = query.get('_elements');
  return {
    summary: summary as SummaryMode | undefined,
    elements: elements ? elements.split(',').map((e) => e.trim().replace(/^[A-Z][A-Za-z]+\./, '')).filter(Boolean) : undefined,
  };
}

export function applySubsetting(resource: Resource, s: Subsetting): Resource {
  let keep: (key: string) => boolean;
  if (s.elements) {
    const wanted = new Set([...ALWAYS, ...s.elements, ...mandatory(resource.resourceType)]);
    keep = (k) => wanted.has(k);
  } else if (s.summary === 'true') {
    const summary = tryGetDataType(resource.resourceType)?.summaryProperties;
    keep = (k) => ALWAYS.includes(k) || !!summary?.has(k) || k === 'implicitRules' || k === 'modifierExtension';
  } else if (s.summary === 'text') {
    const required = mandatory(resource.resourceType);
    keep = (k) => ALWAYS.includes(k) || k === 'text' || required.has(k);
  } else if (s.summary === 'data') {
    keep = (k) => k !== 'text';
  } else {
    return resource;
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(resource)) if (keep(k)) out[k] = v;
  const meta = { ...(resource.meta ?? {}) };
  meta.tag = [...(meta.tag ?? []).filter((t) => t.code !== SUBSETTED.code), SUBSETTED];
  out.meta = meta;
  return out as unknown as Resource;
}

function mandatory(resourceType: string): Set<string> {
  return tryGetDataType(resourceType)?.mandatoryProperties ?? new Set();
}
