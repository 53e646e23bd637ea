/**
 * `_sort=a,-b` (https://hl7.org/fhir/R4/search.html#sort): several keys, `-` for descending. The id is always
 * the last key, so the order is total and keyset paging is stable.
 */
import type { SortKey } from '../../storage/search';
import { badRequest } from '../outcomes';
import { cardinality, indexTable, searchParameter } from './params';

export function parseSort(types: string[], value: string): SortKey[] {
  return value
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean)
    .map((v): SortKey => {
      const descending = v.startsWith('-');
      const code = descending ? v.slice(1) : v;
      if (code === '_id') return { column: 'id', descending };
      if (code === '_lastUpdated') return { column: 'last_updated', descending };
      const tables = new Set(types.map((t) => {
        const sp = searchParameter(t, code);
        return sp ? indexTable(sp) : undefined;
      }));
      const [table] = tables;
      if (tables.size !== 1 || table === undefined || table === 'position') {
        throw badRequest(`Cannot sort by ${code}: not a sortable search parameter of ${types.join(', ')}`, '_sort');
      }
      // a parameter with one index row per resource can drive the query in index order (one type only)
      const sp = types.length === 1 ? searchParameter(types[0], code) : undefined;
      return { table, code, descending, ...(sp ? cardinality(types[0], sp) : {}) };
    });
}
