/**
 * `_sort` on a parameter with several values per resource (https://hl7.org/fhir/R4/search.html#sort), with other
 * conditions: read off the sort key's index in order (`sortDriven`) or by finding the matches and sorting them,
 * the pages are the same, forward through every page, each resource once at its least (greatest) value.
 * src/storage/search.ts chooses between the two from the planner's estimates; here both are forced.
 */
import type { Condition, Cursor, SearchQuery, SortKey } from '../../src/storage/search';
import { searchResources } from '../../src/storage/search';
import { startServer, type TestServer } from '../helpers/server';
import { create, newTag, ref, type Json } from '../fhir/search/helpers';

let s: TestServer;
beforeAll(async () => {
  s = await startServer();
});
afterAll(async () => {
  await s.close();
});

/** Every page of a storage-level search, walked with the keyset cursor of each page's last row. */
async function walk(query: SearchQuery): Promise<string[]> {
  const out: string[] = [];
  let cursor: Cursor | undefined;
  for (let i = 0; i < 50; i++) {
    const page = await searchResources(s.db, { ...query, cursor });
    out.push(...page.versions.map((v) => `${v.resourceType}/${v.id}`));
    if (!page.more) break;
    const last = page.versions.length - 1;
    cursor = { values: page.keys[last], id: page.versions[last].id };
  }
  return out;
}

test('read in index order or sorted after matching, a multi-valued sort key gives the same pages', async () => {
  const t = newTag();
  const person = (gender: string, ...names: { family?: string; given?: string[] }[]) => ({
    resourceType: 'Person',
    gender,
    ...(names.length ? { name: names } : {}),
  });
  const made: Json[] = [];
  made.push(await create(s, t, person('male', { family: 'Nunes', given: ['Carla'] })));
  made.push(await create(s, t, person('male', { family: 'Barros' }, { family: 'Ávila' })));
  made.push(await create(s, t, person('female', { family: 'Dias', given: ['Zoe'] })));
  made.push(await create(s, t, person('male')));
  made.push(await create(s, t, person('male', { family: 'Avila' }, { family: 'AVILA' })));
  made.push(await create(s, t, person('male', { family: 'Melo' })));
  const [carla, barros, , none, avila, melo] = made;
  const conditions: Condition[] = [
    { kind: 'token', code: '_tag', any: [{ system: t.tag.system, value: t.tag.code }] },
    { kind: 'token', code: 'gender', any: [{ value: 'male' }] },
  ];
  const [b1, b2] = [barros, avila].sort((x, y) => (x.id < y.id ? -1 : 1));
  for (const [descending, expected] of [
    [false, [b1, b2, carla, melo, none]],
    [true, [carla, melo, barros, avila, none]],
  ] as const) {
    const sort: SortKey[] = [{ table: 'string', code: 'name', descending }];
    for (const sortDriven of [true, false]) {
      const query: SearchQuery = { resourceType: 'Person', conditions, sort, count: 2, sortDriven };
      expect([descending, sortDriven, await walk(query)]).toEqual([descending, sortDriven, expected.map(ref)]);
    }
  }
});
