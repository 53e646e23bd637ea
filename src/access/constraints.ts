/**
 * v2 granular scopes: `patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory`
 * grants only resources that match the query
 * (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html#finer-grained-resource-constraints-using-search-parameters).
 * A search is narrowed by them (as storage Conditions); one resource is checked against them by evaluating
 * the SearchParameter's expression, token and reference parameters the way the indexer indexes them.
 * A constraint on any other kind of parameter, or one the type does not have, grants nothing (fail closed).
 */
import {
  evalFhirPathTyped,
  getParsedExpressionForResourceType,
  getSearchParameter,
  toTypedValue,
  type FhirPathAtom,
  type TypedValue,
} from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { loadDefinitions } from '../fhir/definitions';
import type { Condition } from '../storage/search';
import { localReference } from './compartment';
import type { ScopeConstraint } from './scopes';

interface Token {
  /** null: the value must have no system (`|code`); undefined: any system. */
  system?: string | null;
  value?: string;
}

/** Token search syntax: `system|code`, `|code`, `code`, `system|` (https://hl7.org/fhir/R4/search.html#token). */
function parseToken(s: string): Token {
  const bar = s.indexOf('|');
  if (bar < 0) return { value: s };
  const system = s.slice(0, bar);
  const value = s.slice(bar + 1);
  return { system: system === '' ? null : system, ...(value === '' ? {} : { value }) };
}

interface ConstraintParam {
  type: 'token' | 'reference';
  atom: FhirPathAtom;
}

const params = new Map<string, ConstraintParam | undefined>();

/** A token or reference SearchParameter of the type, with its expression parsed (once); else undefined. */
function paramOf(resourceType: string, code: string): ConstraintParam | undefined {
  const key = `${resourceType}.${code}`;
  if (params.has(key)) return params.get(key);
  loadDefinitions();
  const sp = getSearchParameter(resourceType, code);
  if (!sp) return undefined; // not cached: a custom SearchParameter may be loaded later
  let param: ConstraintParam | undefined;
  if (sp.expression && (sp.type === 'token' || sp.type === 'reference')) {
    try {
      param = { type: sp.type, atom: getParsedExpressionForResourceType(resourceType, sp.expression) };
    } catch {
      param = undefined;
    }
  }
  params.set(key, param);
  return param;
}

/** The storage conditions for a scope's constraints on this type; undefined when they cannot be honoured. */
export function constraintConditions(resourceType: string, constraints: readonly ScopeConstraint[]): Condition[] | undefined {
  const out: Condition[] = [];
  for (const c of constraints) {
    const sp = paramOf(resourceType, c.code);
    if (!sp) return undefined;
    if (sp.type === 'token') {
      out.push({ kind: 'token', code: c.code, any: c.values.map(parseToken) });
    } else {
      const targets = c.values.map((v) => localReference(v));
      if (targets.some((t) => !t)) return undefined;
      out.push({ kind: 'reference', codes: [c.code], targets: targets as { type: string; id: string }[] });
    }
  }
  return out;
}

/** Whether the constraints can be honoured for this type at all. */
export function constraintsApply(resourceType: string, constraints: readonly ScopeConstraint[]): boolean {
  return constraints.every((c) => paramOf(resourceType, c.code) !== undefined);
}

/** Whether one resource meets every constraint (each: any of its values). */
export function matchesConstraints(resource: Resource, constraints: readonly ScopeConstraint[], fhirBaseUrl?: string): boolean {
  return constraints.every((c) => {
    const sp = paramOf(resource.resourceType, c.code);
    if (!sp) return false;
    let values: TypedValue[];
    try {
      values = evalFhirPathTyped(sp.atom, [toTypedValue(resource)]);
    } catch {
      return false;
    }
    if (sp.type === 'token') {
      const wanted = c.values.map(parseToken);
      return values.some((v) => tokensOf(v).some((t) => wanted.some((w) => tokenMatches(t, w))));
    }
    const wanted = c.values.map((v) => localReference(v));
    return values.some((v) => {
      const got = localReference((v.value as { reference?: string } | undefined)?.reference, fhirBaseUrl);
      return !!got && wanted.some((w) => w?.type === got.type && w.id === got.id);
    });
  });
}

/** The (system, value) pairs a value indexes as, by datatype (https://hl7.org/fhir/R4/search.html#token). */
function tokensOf(tv: TypedValue): { system: string | null; value: string | null }[] {
  const v = tv.value;
  const pair = (system: unknown, value: unknown) => ({
    system: typeof system === 'string' ? system : null,
    value: value === undefined || value === null ? null : String(value),
  });
  switch (tv.type) {
    case 'Coding':
      return [pair(v.system, v.code)];
    case 'CodeableConcept':
      return (v.coding ?? []).map((c: { system?: string; code?: string }) => pair(c.system, c.code));
    case 'Identifier':
    case 'ContactPoint':
      return [pair(v.system, v.value)];
    case 'Reference':
      return v.identifier ? [pair(v.identifier.system, v.identifier.value)] : [];
    default:
      return v === undefined || v === null || typeof v === 'object' ? [] : [pair(null, v)];
  }
}

function tokenMatches(got: { system: string | null; value: string | null }, want: Token): boolean {
  if (want.system === null && got.system !== null) return false;
  if (typeof want.system === 'string' && got.system !== want.system) return false;
  return want.value === undefined || got.value === want.value;
}
