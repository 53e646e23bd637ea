/**
 * date parameters (https://hl7.org/fhir/R4/search.html#date): a search value covers the range its precision
 * implies ("2020" the whole year), compared with the range the stored value covers (a Period, or a date at
 * its own precision) by the prefix semantics of https://hl7.org/fhir/R4/search.html#prefix.
 */
import type { Condition, DateMatch } from '../../storage/search';
import { dateRange } from '../../storage/values';
import { badRequest } from '../outcomes';
import type { ParamContext } from './parameter';
import { splitOr, splitPrefix } from './values';

const DATE = /^\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

/** Month, day and time fields within their ranges (the Date arithmetic would silently roll them over). */
function validFields(v: string): boolean {
  const [y, mo = 1, d = 1] = v.slice(0, 10).split('-').map(Number);
  if (mo < 1 || mo > 12 || d < 1 || d > new Date(Date.UTC(y, mo, 0)).getUTCDate()) return false;
  const time = /T(\d{2}):(\d{2})(?::(\d{2}))?/.exec(v);
  return !time || (Number(time[1]) < 24 && Number(time[2]) < 60 && Number(time[3] ?? 0) < 60);
}

/** A search value as [start, end) with its prefix; `ap` widened by 10% of its distance from now. */
export function parseDateValue(p: ParamContext, value: string): DateMatch {
  const { prefix, rest } = splitPrefix(value);
  const range = DATE.test(rest) && validFields(rest) ? dateRange(rest) : undefined;
  if (!range) throw badRequest(`Invalid date for ${p.name}: ${value}`, p.name);
  let [start, end] = range;
  if (prefix === 'ap') {
    const s = Date.parse(start);
    const e = Date.parse(end);
    const margin = 0.1 * Math.abs(Date.now() - s);
    start = new Date(s - margin).toISOString();
    end = new Date(e + margin).toISOString();
  }
  return { prefix, start, end };
}

export function dateCondition(p: ParamContext, code: string, modifier: string | undefined, value: string): Condition {
  if (modifier !== undefined) throw badRequest(`Unknown modifier :${modifier} for date parameter ${code}`, p.name);
  return { kind: 'date', code, any: splitOr(value).map((v) => parseDateValue(p, v)) };
}

/**
 * `_lastUpdated` compares with resources.last_updated, an instant (the point [t, t]), so the prefixes reduce
 * to comparisons the (resource_type, last_updated) index answers.
 */
export function lastUpdatedCondition(p: ParamContext, modifier: string | undefined, value: string): Condition {
  if (modifier !== undefined) throw badRequest(`Unknown modifier :${modifier} for _lastUpdated`, p.name);
  const any = splitOr(value).map((v): Condition => {
    const { prefix, start, end } = parseDateValue(p, v);
    const ge: Condition = { kind: 'lastUpdated', op: '>=', value: start };
    const lt: Condition = { kind: 'lastUpdated', op: '<', value: end };
    switch (prefix) {
      case 'eq':
      case 'ap':
        return { kind: 'and', all: [ge, lt] };
      case 'ne':
        return { kind: 'or', any: [{ kind: 'lastUpdated', op: '<', value: start }, { kind: 'lastUpdated', op: '>=', value: end }] };
      case 'gt':
      case 'sa':
        return { kind: 'lastUpdated', op: '>=', value: end };
      case 'lt':
      case 'eb':
        return { kind: 'lastUpdated', op: '<', value: start };
      case 'ge':
        return ge;
      case 'le':
        return lt;
    }
  });
  return any.length === 1 ? any[0] : { kind: 'or', any };
}
