/**
 * Opaque paging cursors (https://hl7.org/fhir/R4/http.html#paging): the sort key values and id of the row a
 * page ends (or, for `previous`, starts) at. Paging by key instead of OFFSET keeps pages right while rows
 * are inserted or deleted, and a deep page as fast as the first.
 */
import { createHash } from 'node:crypto';
import type { Cursor } from '../../storage/search';
import { badRequest } from '../outcomes';

/** Ties a cursor to the sort it was made for: a cursor of another sort is refused, not misread. */
export function sortSignature(sort: string): string {
  return createHash('sha1').update(sort).digest('base64url').slice(0, 8);
}

export function encodeCursor(c: Cursor, signature: string): string {
  return Buffer.from(JSON.stringify([signature, c.values, c.id, c.backward ? 1 : 0])).toString('base64url');
}

export function decodeCursor(text: string, signature: string): Cursor {
  try {
    const [sig, values, id, backward] = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as unknown[];
    const valid =
      sig === signature &&
      Array.isArray(values) &&
      values.every((v) => v === null || typeof v === 'string') &&
      typeof id === 'string';
    if (valid) return { values: values as (string | null)[], id: id as string, backward: backward === 1 };
  } catch {
    // fall through to the 400 below
  }
  throw badRequest('Invalid _cursor (paging links are only valid for the search that made them)', '_cursor');
}
