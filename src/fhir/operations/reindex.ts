/**
 * $reindex: rewrites the search index rows of stored resources, after SearchParameters were added or
 * changed in fhir-profiles/ (as HAPI's $reindex). POST /fhir/$reindex for every type, POST /fhir/[type]/$reindex
 * for one. Runs in pages of current resources, each page in its own transaction.
 * `npm run reindex` (src/reindex.ts) runs the same from the command line.
 */
import type { Parameters } from '@medplum/fhirtypes';
import { assertAllowed } from '../../access/context';
import type { Database } from '../../storage/database';
import { currentPage, reindex } from '../../storage/repository';
import type { FhirContext, FhirResponse } from '../context';
import { resourceTypes } from '../definitions';
import { assertResourceType } from '../resources';

const PAGE = 500;

export async function reindexAll(db: Database, fhirBaseUrl: string, types: readonly string[]): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const type of types) {
    let after = '';
    let total = 0;
    for (;;) {
      const page = await currentPage(db, type, after, PAGE);
      if (page.length === 0) break;
      total += await db.transaction((tx) => reindex(tx, page, fhirBaseUrl));
      after = page[page.length - 1].id as string;
    }
    if (total > 0) counts.set(type, total);
  }
  return counts;
}

export async function reindexOperation(ctx: FhirContext, type?: string): Promise<FhirResponse> {
  if (type) assertResourceType(type);
  assertAllowed(ctx.access, 'operation', type ?? '*');
  const counts = await reindexAll(ctx.db, ctx.settings.fhirBaseUrl, type ? [type] : [...resourceTypes()]);
  const body: Parameters = {
    resourceType: 'Parameters',
    parameter: [
      { name: 'count', valueInteger: [...counts.values()].reduce((a, b) => a + b, 0) },
      ...[...counts].map(([t, n]) => ({ name: 'type', part: [{ name: 'type', valueCode: t }, { name: 'count', valueInteger: n }] })),
    ],
  };
  return { status: 200, body };
}
