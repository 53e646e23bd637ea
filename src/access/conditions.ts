/**
 * Turns "rows matching any of these AND-lists" into the storage query language, where a top-level list is
 * ANDed. Conditions common to every alternative are factored out (so the usual case — one reach, several
 * v2 constraints — reads `[compartment, or(constraints)]`); what is left is an `or` of the alternatives.
 */
import type { Condition } from '../storage/search';

const key = (c: Condition) => JSON.stringify(c);

export function combineAlternatives(alternatives: Condition[][]): Condition[] {
  const unique = [...new Map(alternatives.map((a) => [a.map(key).sort().join('&'), a])).values()];
  if (unique.length === 0) return [{ kind: 'none' }];
  if (unique.some((a) => a.length === 0)) return [];
  if (unique.length === 1) return unique[0];
  const common = unique[0].filter((c) => unique.every((a) => a.some((x) => key(x) === key(c))));
  const commonKeys = new Set(common.map(key));
  const rests = unique.map((a) => a.filter((c) => !commonKeys.has(key(c))));
  // One alternative is just the common part: it contains all the others.
  if (rests.some((r) => r.length === 0)) return common;
  const any = rests.flatMap((r): Condition[] => {
    if (r.length > 1) return [{ kind: 'and', all: r }];
    return r[0].kind === 'or' ? r[0].any : [r[0]];
  });
  return [...common, { kind: 'or', any }];
}
