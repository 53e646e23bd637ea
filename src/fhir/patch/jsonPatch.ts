/**
 * JSON Patch (RFC 6902) on a FHIR resource, for the patch interaction with
 * Content-Type application/json-patch+json. https://hl7.org/fhir/R4/http.html#patch —
 * https://www.rfc-editor.org/rfc/rfc6902 — pointers: https://www.rfc-editor.org/rfc/rfc6901
 *
 * The pointer walking and operations are fast-json-patch's; this file decides what a client sees:
 * a document that is not a patch at all is a 400, a patch that does not fit this resource is a 422,
 * and the patch is all or nothing (RFC 6902 section 5): the input resource is never touched.
 */
import type { Resource } from '@medplum/fhirtypes';
import { applyPatch, deepClone, JsonPatchError, validate, type Operation } from 'fast-json-patch';
import { badRequest, unprocessable } from '../outcomes';

const OPS = new Set(['add', 'remove', 'replace', 'move', 'copy', 'test']);

/** Top-level members a patch may read (`test`, `copy` from) but never change: the caller checks the id after. */
const FIXED_MEMBERS = new Set(['resourceType', 'id']);

/** fast-json-patch error names that describe the patch document itself rather than where it is applied. */
const MALFORMED = new Set<string>([
  'SEQUENCE_NOT_AN_ARRAY',
  'OPERATION_NOT_AN_OBJECT',
  'OPERATION_OP_INVALID',
  'OPERATION_PATH_INVALID',
  'OPERATION_FROM_REQUIRED',
  'OPERATION_VALUE_REQUIRED',
  'OPERATION_VALUE_CANNOT_CONTAIN_UNDEFINED',
]);

/**
 * Applies an RFC 6902 patch to a copy of `resource` and returns the copy.
 * 400 for a malformed patch document or one that changes resourceType or id; 422 when a path does not
 * resolve in this resource, an array index is out of range, or a `test` operation fails.
 */
export function applyJsonPatch(resource: Resource, patch: unknown): Resource {
  const ops = checkDocument(patch);
  let result: unknown;
  try {
    // Cloning the operations too, so that the returned resource shares no objects with the request body.
    result = applyPatch(deepClone(resource), deepClone(ops) as Operation[], true, true).newDocument;
  } catch (err) {
    if (err instanceof JsonPatchError) throw patchError(err, ops);
    throw err;
  }
  if (!isObject(result) || result.resourceType !== resource.resourceType || result.id !== resource.id) {
    throw badRequest('JSON Patch must not change the resourceType or id of the resource');
  }
  return result as unknown as Resource;
}

/** Every check that needs no resource: a bad operation anywhere in the list fails the whole patch as a 400. */
function checkDocument(patch: unknown): Operation[] {
  if (!Array.isArray(patch)) throw badRequest('JSON Patch document must be an array of operations');
  const structural = validate(patch as Operation[]);
  if (structural) throw patchError(structural, patch);
  patch.forEach((op: Operation, i) => {
    const label = describe(op, i);
    const pointers = op.op === 'move' || op.op === 'copy' ? [op.path, op.from] : [op.path];
    for (const pointer of pointers) {
      if (pointer !== '' && !pointer.startsWith('/')) {
        throw badRequest(`${label}: '${pointer}' is not a JSON Pointer (it must be empty or start with '/')`);
      }
      if (
        unescape(pointer).some((token) => token === '__proto__' || token === 'constructor' || token === 'prototype')
      ) {
        throw badRequest(`${label}: '${pointer}' is not an allowed path`);
      }
      // RFC 6901 section 4: an array index is 0 or digits without a leading zero ('/name/01' is no index)
      if (unescape(pointer).some((token) => /^0\d+$/.test(token))) {
        throw badRequest(`${label}: '${pointer}' has an array index with a leading zero (RFC 6901)`);
      }
    }
    if (op.op !== 'test' && changesFixedMember(op.path)) {
      throw badRequest(`${label}: JSON Patch must not change the resourceType or id of the resource`);
    }
    if (op.op === 'move' && changesFixedMember(op.from)) {
      throw badRequest(`${label}: JSON Patch must not move the resourceType or id of the resource`);
    }
    // RFC 6902 section 4.4: "The "from" location MUST NOT be a proper prefix of the "path" location".
    if (op.op === 'move' && op.path.startsWith(`${op.from}/`)) {
      throw badRequest(`${label}: cannot move '${op.from}' into one of its own children`);
    }
  });
  return patch as Operation[];
}

/** The whole document ('') or one of its fixed top-level members. */
function changesFixedMember(pointer: string): boolean {
  const tokens = unescape(pointer);
  return tokens.length === 0 || FIXED_MEMBERS.has(tokens[0]);
}

/** RFC 6901 reference tokens of a pointer, with ~1 and ~0 decoded. */
function unescape(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((token) => token.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function patchError(err: JsonPatchError, ops: unknown): Error {
  const op = err.index !== undefined && Array.isArray(ops) ? (ops[err.index] as unknown) : undefined;
  const label = err.index !== undefined ? describe(op, err.index) : 'JSON Patch';
  const message = err.message.split('\n')[0];
  if (MALFORMED.has(err.name)) return badRequest(`${label}: ${message}`);
  return unprocessable(`${label}: ${message}`);
}

function describe(op: unknown, index: number): string {
  if (isObject(op) && typeof op.op === 'string' && OPS.has(op.op) && typeof op.path === 'string') {
    return `Operation ${index} (${op.op} ${op.path})`;
  }
  return `Operation ${index}`;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
