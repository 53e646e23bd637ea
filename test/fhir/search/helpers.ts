/**
 * Shared helpers of the search tests: every test tags what it creates with its own unique tag and adds
 * `_tag` to its searches, so tests never see each other's data (they may share one database).
 */
import { randomUUID } from 'node:crypto';
import type { TestServer } from '../../helpers/server';

export const TAG_SYSTEM = 'urn:test:search';

export interface Tagged {
  tag: { system: string; code: string };
  /** `_tag=<system>|<code>` for a query string. */
  q: string;
}

export function newTag(): Tagged {
  const code = randomUUID();
  return { tag: { system: TAG_SYSTEM, code }, q: `_tag=${encodeURIComponent(`${TAG_SYSTEM}|${code}`)}` };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = Record<string, any>;

/** Creates a resource carrying the tag; fails the test on anything but 201. */
export async function create(s: TestServer, t: Tagged, resource: Json): Promise<Json> {
  const body = { ...resource, meta: { ...(resource.meta ?? {}), tag: [...(resource.meta?.tag ?? []), t.tag] } };
  const res = await s.request('POST', `/fhir/${resource.resourceType}`, body);
  if (res.status !== 201) throw new Error(`create ${resource.resourceType}: ${res.status} ${res.text}`);
  return res.body;
}

/** GET a search; fails the test on anything but 200. */
export async function search(s: TestServer, path: string, headers: Record<string, string> = {}): Promise<Json> {
  const res = await s.request('GET', path.startsWith('/fhir') || path.startsWith('http') ? path : `/fhir/${path}`, undefined, headers);
  if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${res.text}`);
  expect(res.body.resourceType).toBe('Bundle');
  expect(res.body.type).toBe('searchset');
  return res.body;
}

/** "Type/id" of the entries of a search Bundle in a mode (default: the matches). */
export function refs(bundle: Json, mode = 'match'): string[] {
  return (bundle.entry ?? [])
    .filter((e: Json) => e.search?.mode === mode)
    .map((e: Json) => `${e.resource.resourceType}/${e.resource.id}`);
}

export const ref = (r: Json) => `${r.resourceType}/${r.id}`;

/** The ids a search over a tag returns, sorted (order-insensitive comparisons). */
export async function matchIds(s: TestServer, path: string): Promise<string[]> {
  return refs(await search(s, path)).sort();
}

export const sorted = (list: Json[]) => list.map(ref).sort();

/** The URL of a search Bundle's link with this relation, if any. */
export const link = (bundle: Json, relation: string): string | undefined =>
  ((bundle.link ?? []) as { relation: string; url: string }[]).find((l) => l.relation === relation)?.url;

/** Follows `next` links to the end; returns every page's matches in order. */
export async function allPages(s: TestServer, path: string, relation = 'next'): Promise<string[][]> {
  const pages: string[][] = [];
  let bundle = await search(s, path);
  pages.push(refs(bundle));
  for (let i = 0; i < 100; i++) {
    const url = link(bundle, relation);
    if (!url) break;
    bundle = await search(s, url);
    pages.push(refs(bundle));
  }
  return pages;
}

/**
 * Follows `next` links to the last page, then `previous` links back to the first; returns every page's
 * matches in order (as read going back) and the first page's Bundle as reached backward.
 */
export async function pagesBackward(s: TestServer, path: string): Promise<{ pages: string[][]; first: Json }> {
  let bundle = await search(s, path);
  for (let url = link(bundle, 'next'); url; url = link(bundle, 'next')) bundle = await search(s, url);
  const pages: string[][] = [refs(bundle)];
  for (let url = link(bundle, 'previous'); url; url = link(bundle, 'previous')) {
    bundle = await search(s, url);
    pages.unshift(refs(bundle));
  }
  return { pages, first: bundle };
}
