/**
 * Opaque paging cursors (https://hl7.org/fhir/R4/http.html#paging): the sort key values and id of the row a
 * page ends (or, for `previous`, starts) at. Paging by key instead of OFFSET keeps pages right while rows
 * are inserted or deleted, and a deep page as fast as the first.
 */
import { createHash } from 'node:crypto';
import { cursorFits, type Cursor, type SortKey } from '../../storage/search';
import { badRequest } from '../outcomes';

/** Ties a cursor to the sort it was made for: a cursor of another sort is refused, not misread. */
export function sortSignature(sort: string): string {
  return createHash('sha1').update(sort).digest('base64url').slice(0, 8);
}

export function encodeCursor(c: Cursor, signature: string): string {
  return Buffer.from(JSON.stringify([signature, c.values, c.id, c.backward ? 1 : 0])).toString('base64url');
}

/**
 * The cursor of a paging link, for the search of `sort`. Anything else (not base64url JSON, the wrong shape, a
 * value its sort key cannot hold, another sort's cursor) is a 400: a forged cursor never reaches the database.
 */
export function decodeCursor(text: string, signature: string, sort: SortKey[]): Cursor {
  let decoded: unknown;
  try {
    decoded = /^[A-Za-z0-9_-]*={0,2}$/.test(text) ? JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) : undefined;
  } catch {
    // not JSON: the 400 below
  }
  if (Array.isArray(decoded) && decoded.length === 4) {
    const [sig, values, id, backward] = decoded as unknown[];
    const valid =
      sig === signature &&
      Array.isArray(values) &&
      values.every((v) => v === null || typeof v === 'string') &&
      typeof id === 'string' &&
      (backward === 0 || backward === 1);
    const cursor: Cursor | undefined = valid ? { values: values as (string | null)[], id: id as string, backward: backward === 1 } : undefined;
    if (cursor && cursorFits(sort, cursor)) return cursor;
  }
  throw badRequest('Invalid page cursor (_cursor): paging links are only valid for the search that made them', '_cursor');
}
