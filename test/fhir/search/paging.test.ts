/**
 * _sort (https://hl7.org/fhir/R4/search.html#sort), paging (https://hl7.org/fhir/R4/http.html#paging),
 * _total, _count, _summary and _elements (https://hl7.org/fhir/R4/search.html#return).
 * Paging is by keyset cursor: stable with ties, correct while rows are inserted, previous links too.
 */
import { startServer, type TestServer } from '../../helpers/server';
import { allPages, create, link, newTag, pagesBackward, ref, refs, search, type Json, type Tagged } from './helpers';

let s: TestServer;
beforeAll(async () => {
  s = await startServer();
});
afterAll(async () => {
  await s.close();
});

const patient = (family: string, birthDate?: string) => ({ resourceType: 'Patient', name: [{ family }], ...(birthDate ? { birthDate } : {}) });

async function patients(t: Tagged, list: [string, string | undefined][]) {
  const out: Json[] = [];
  for (const [family, birthDate] of list) out.push(await create(s, t, patient(family, birthDate)));
  return out;
}

describe('_sort', () => {
  test('several keys, ascending and descending, missing values last', async () => {
    const t = newTag();
    const [a, b, c, d, e] = await patients(t, [
      ['Souza', '1990-01-01'],
      ['Alves', '1990-01-01'],
      ['Lima', '1985-05-05'],
      ['Zeca', undefined],
      ['Moura', '2000-12-31'],
    ]);
    const order = async (sort: string) => refs(await search(s, `Patient?${t.q}&_sort=${sort}`));
    expect(await order('birthdate,family')).toEqual([c, b, a, e, d].map(ref));
    expect(await order('birthdate,-family')).toEqual([c, a, b, e, d].map(ref));
    expect(await order('-birthdate,family')).toEqual([e, b, a, c, d].map(ref));
    expect(await order('family')).toEqual([b, c, e, a, d].map(ref));
    expect(await order('-family')).toEqual([d, a, e, c, b].map(ref));
  });

  test('_id and _lastUpdated', async () => {
    const t = newTag();
    const list = await patients(t, [['A', undefined], ['B', undefined], ['C', undefined]]);
    expect(refs(await search(s, `Patient?${t.q}&_sort=-_lastUpdated`))).toEqual(list.map(ref).reverse());
    expect(refs(await search(s, `Patient?${t.q}&_sort=_id`))).toEqual(list.map(ref).sort());
  });

  test('sorting by an unknown or unsortable parameter is a 400', async () => {
    expect((await s.request('GET', '/fhir/Patient?_sort=nope')).status).toBe(400);
    expect((await s.request('GET', '/fhir/Location?_sort=near')).status).toBe(400);
  });
});

describe('paging', () => {
  test('ties are broken by id: pages are stable and complete, forward and back', async () => {
    const t = newTag();
    const list = await patients(t, Array.from({ length: 7 }, (_, i): [string, string] => [`Same${i % 2}`, '1980-01-01']));
    const q = `Patient?${t.q}&_sort=birthdate,family&_count=2`;
    const pages = await allPages(s, q);
    expect(pages.map((p) => p.length)).toEqual([2, 2, 2, 1]);
    const flat = pages.flat();
    const expected = [...list].sort((x, y) => x.name[0].family.localeCompare(y.name[0].family) || (x.id < y.id ? -1 : 1)).map(ref);
    expect(flat).toEqual(expected);

    // walk back from the last page with `previous`
    const back = await pagesBackward(s, q);
    expect(back.pages).toEqual(pages);
    expect(link(back.first, 'previous')).toBeUndefined();
  });

  test('a single-valued sort key (read in index order) pages across the rows without a value, both ways', async () => {
    const t = newTag();
    const appointment = (start?: string) => ({
      resourceType: 'Appointment',
      status: start ? 'booked' : 'proposed',
      participant: [{ actor: { display: 'x' }, status: 'accepted' }],
      ...(start ? { start, end: new Date(Date.parse(start) + 3_600_000).toISOString() } : {}),
    });
    const times = ['2032-01-03T10:00:00Z', '2032-01-01T10:00:00Z', '2032-01-02T10:00:00Z', '2032-01-02T10:00:00Z', undefined, undefined, undefined];
    const list: { start?: string; r: Json }[] = [];
    for (const start of times) list.push({ start, r: await create(s, t, appointment(start)) });
    const byStart = (desc: boolean) =>
      [...list]
        .sort((a, b) => {
          if (!a.start || !b.start) return !a.start && !b.start ? (a.r.id < b.r.id ? -1 : 1) : a.start ? -1 : 1;
          const d = Date.parse(a.start) - Date.parse(b.start);
          return (desc ? -d : d) || (a.r.id < b.r.id ? -1 : 1);
        })
        .map((x) => ref(x.r));
    for (const [sort, desc] of [['date', false], ['-date', true]] as const) {
      const q = `Appointment?${t.q}&_sort=${sort}&_count=2`;
      const pages = await allPages(s, q);
      expect([sort, pages.flat()]).toEqual([sort, byStart(desc)]);
      expect(pages.map((p) => p.length)).toEqual([2, 2, 2, 1]);
      expect([sort, (await pagesBackward(s, q)).pages]).toEqual([sort, pages]);
    }
    // a condition on the key itself leaves the rows without a value out
    expect(refs(await search(s, `Appointment?${t.q}&_sort=date&date=ge2032-01-02`))).toEqual(byStart(false).slice(1, 4));
  });

  test('a multi-valued sort key with no other condition (read in index order): each resource once, at its least or greatest value', async () => {
    // Person is used by no other test file, so this walk over every Person sees only rows of this file's tests
    const t = newTag();
    const person = (...names: { family?: string; given?: string[] }[]) => ({ resourceType: 'Person', ...(names.length ? { name: names } : {}) });
    const a = await create(s, t, person({ family: 'Nunes', given: ['Carla'] }));
    const b = await create(s, t, person({ family: 'Barros' }, { family: 'ÁVILA' }));
    const c = await create(s, t, person({ family: 'Dias', given: ['Zoe'] }));
    const d = await create(s, t, person());
    // the same value twice (two spellings, one normalized form): still one entry
    const e = await create(s, t, person({ family: 'Avila' }, { family: 'AVILA' }));
    const mine = new Set([a, b, c, d, e].map(ref));
    const key = (r: Json, desc: boolean): string | undefined => {
      const parts = ((r.name ?? []) as Json[]).flatMap((n) => [n.family, ...(n.given ?? [])]).filter(Boolean);
      const normalized = parts.map((p: string) => p.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase()).sort();
      return desc ? normalized[normalized.length - 1] : normalized[0];
    };
    const byId = (x: Json, y: Json) => (x.id < y.id ? -1 : 1);
    for (const [sort, desc] of [['name', false], ['-name', true]] as const) {
      const q = `Person?_sort=${sort}&_count=2`;
      const walked: Json[] = [];
      let bundle = await search(s, q);
      for (;;) {
        walked.push(...(bundle.entry ?? []).map((x: Json) => x.resource));
        const next = link(bundle, 'next');
        if (!next) break;
        bundle = await search(s, next);
      }
      const ids = walked.map(ref);
      expect(new Set(ids).size).toBe(ids.length);
      // the whole walk is in order: by the least (greatest) name, ties by id, resources without a name last
      const expected = [...walked].sort((x, y) => {
        const [kx, ky] = [key(x, desc), key(y, desc)];
        if (kx === undefined || ky === undefined) return kx === ky ? byId(x, y) : kx === undefined ? 1 : -1;
        return kx === ky ? byId(x, y) : (kx < ky) !== desc ? -1 : 1;
      });
      expect([sort, ids]).toEqual([sort, expected.map(ref)]);
      const ours = ids.filter((id) => mine.has(id));
      const [be1, be2] = [b, e].sort(byId).map(ref);
      expect([sort, ours]).toEqual([sort, desc ? [c, a, b, e, d].map(ref) : [be1, be2, ref(a), ref(c), ref(d)]]);
      expect([sort, (await pagesBackward(s, q)).pages.flat()]).toEqual([sort, ids]);
    }
  });

  test('rows inserted while paging neither repeat nor hide the rows that were there', async () => {
    const t = newTag();
    const original = await patients(t, Array.from({ length: 6 }, (_, i): [string, string] => [`P${i}`, `1970-01-0${i + 1}`]));
    const first = await search(s, `Patient?${t.q}&_sort=birthdate&_count=2`);
    // one sorts before the cursor (already passed), one among the rows still to come
    await create(s, t, patient('Early', '1969-01-01'));
    const late = await create(s, t, patient('Late', '1970-01-04'));
    const seen = [...refs(first)];
    let bundle = first;
    while (link(bundle, 'next')) {
      bundle = await search(s, link(bundle, 'next')!);
      seen.push(...refs(bundle));
    }
    expect(new Set(seen).size).toBe(seen.length);
    for (const p of original) expect(seen).toContain(ref(p));
    expect(seen).toContain(ref(late));
  });

  test('deep pages do not use OFFSET: the cursor is opaque and a forged one is a 400', async () => {
    const t = newTag();
    await patients(t, [['A', undefined], ['B', undefined], ['C', undefined]]);
    const first = await search(s, `Patient?${t.q}&_count=1`);
    const next = new URL(link(first, 'next')!);
    expect(next.searchParams.get('_cursor')).toMatch(/^[A-Za-z0-9_-]+$/);
    expect([...next.searchParams.keys()]).not.toContain('_offset');
    const forged = await s.request('GET', `/fhir/Patient?${t.q}&_count=1&_cursor=abc`);
    expect(forged.status).toBe(400);
    // a cursor made for another sort is refused, not misread
    const other = await s.request('GET', `/fhir/Patient?${t.q}&_count=1&_sort=family&_cursor=${next.searchParams.get('_cursor')}`);
    expect(other.status).toBe(400);
  });

  test('self, next, previous and first links keep the search parameters', async () => {
    const t = newTag();
    await patients(t, [['A', undefined], ['B', undefined], ['C', undefined]]);
    const first = await search(s, `Patient?${t.q}&family=a,b,c&_count=1`);
    expect(link(first, 'self')).toBe(`${s.fhirBase}/Patient?${t.q}&family=a%2Cb%2Cc&_count=1`);
    const second = await search(s, link(first, 'next')!);
    for (const rel of ['self', 'next', 'previous', 'first']) expect(link(second, rel)).toContain(`family=a%2Cb%2Cc`);
  });
});

describe('_total, _count, _summary, _elements', () => {
  test('_total accurate, estimate and none', async () => {
    const t = newTag();
    await patients(t, [['A', undefined], ['B', undefined], ['C', undefined]]);
    expect((await search(s, `Patient?${t.q}&_count=1&_total=accurate`)).total).toBe(3);
    expect((await search(s, `Patient?${t.q}&_count=1&_total=estimate`)).total).toBe(3);
    expect((await search(s, `Patient?${t.q}&_count=1&_total=none`)).total).toBeUndefined();
    expect((await search(s, `Patient?${t.q}`)).total).toBe(3);
    expect((await s.request('GET', `/fhir/Patient?_total=maybe`)).status).toBe(400);
  });

  test('_summary=count and _count=0 answer the total without entries', async () => {
    const t = newTag();
    await patients(t, [['A', undefined], ['B', undefined]]);
    const count = await search(s, `Patient?${t.q}&_summary=count`);
    expect(count.total).toBe(2);
    expect(count.entry ?? []).toEqual([]);
    const zero = await search(s, `Patient?${t.q}&_count=0`);
    expect(zero.total).toBe(2);
    expect(zero.entry ?? []).toEqual([]);
  });

  test('_summary=true and _elements return SUBSETTED resources', async () => {
    const t = newTag();
    await create(s, t, { resourceType: 'Patient', name: [{ family: 'X' }], gender: 'male', text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">x</div>' } });
    const summary = await search(s, `Patient?${t.q}&_summary=true`);
    expect(summary.entry[0].resource.text).toBeUndefined();
    expect(summary.entry[0].resource.meta.tag).toEqual(expect.arrayContaining([expect.objectContaining({ code: 'SUBSETTED' })]));
    const elements = await search(s, `Patient?${t.q}&_elements=gender`);
    expect(elements.entry[0].resource.gender).toBe('male');
    expect(elements.entry[0].resource.name).toBeUndefined();
    const data = await search(s, `Patient?${t.q}&_summary=data`);
    expect(data.entry[0].resource.text).toBeUndefined();
    expect(data.entry[0].resource.name).toBeDefined();
  });

  test('_count is capped, and a negative or non-numeric _count is a 400', async () => {
    expect((await s.request('GET', '/fhir/Patient?_count=-1')).status).toBe(400);
    expect((await s.request('GET', '/fhir/Patient?_count=ten')).status).toBe(400);
    expect((await s.request('GET', '/fhir/Patient?_count=100000&_summary=count')).status).toBe(200);
  });
});

test('POST [type]/_search takes form parameters and answers GET paging links', async () => {
  const t = newTag();
  const [a] = await patients(t, [['Form', undefined], ['Other', undefined]]);
  const res = await s.request('POST', '/fhir/Patient/_search', `${t.q}&family=form`, { 'content-type': 'application/x-www-form-urlencoded' });
  expect(res.status).toBe(200);
  expect(refs(res.body)).toEqual([ref(a)]);
  expect(link(res.body, 'self')).toContain('/fhir/Patient?');
});
