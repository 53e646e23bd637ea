/**
 * Evaluates storage search Conditions against one resource's index rows, as the SQL of
 * src/storage/search.ts would: lets the decision-level tests check that `searchConditions()` (SQL) and
 * `can()` (one resource) agree without a database.
 */
import type { Resource } from '@medplum/fhirtypes';
import { loadDefinitions } from '../../src/fhir/definitions';
import { indexRows } from '../../src/storage/indexer';
import type { Condition } from '../../src/storage/search';

// The indexer caches each type's parameters on first use: the definitions must be loaded before.
loadDefinitions();

export const BASE = 'http://localhost:8080/fhir';

export function rowMatches(resource: Resource, conditions: Condition[]): boolean {
  const rows = indexRows(resource, BASE);
  const one = (c: Condition): boolean => {
    switch (c.kind) {
      case 'none':
        return false;
      case 'or':
        return c.any.some(one);
      case 'and':
        return c.all.every(one);
      case 'id':
        return c.ids.includes(resource.id ?? '') !== !!c.not;
      case 'reference': {
        const hit = rows.reference.some(
          (r) => c.codes.includes(r.code) && c.targets.some((t) => t.type === r.targetType && t.id === r.targetId),
        );
        return hit !== !!c.not;
      }
      case 'token': {
        const hit = rows.token.some(
          (r) =>
            r.code === c.code &&
            c.any.some(
              (t) =>
                (t.system === undefined || (t.system === null ? r.system === null : r.system === t.system)) &&
                (t.value === undefined || r.value === t.value),
            ),
        );
        return hit !== !!c.not;
      }
      default:
        throw new Error(`${c.kind}: not used by access rules`);
    }
  };
  return conditions.every(one);
}
