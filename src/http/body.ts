/**
 * Request bodies: content-type checks (XML is answered 415), a size limit (413, MAX_JSON_MB), and
 * FHIR JSON parsing (malformed JSON is a 400 OperationOutcome).
 */
import type { Context } from 'koa';
import getRawBody from 'raw-body';
import { parseFhirJson } from '../fhir/validation/json';
import { badRequest, unsupportedMediaType } from '../fhir/outcomes';

const JSON_TYPES = new Set(['application/fhir+json', 'application/json', 'application/json-patch+json']);
const FORM = 'application/x-www-form-urlencoded';

export interface ParsedBody {
  body?: unknown;
  contentType?: string;
  form?: URLSearchParams;
}

export function mediaType(header: string | undefined): string | undefined {
  return header?.split(';')[0].trim().toLowerCase() || undefined;
}

function hasBody(ctx: Context): boolean {
  const length = ctx.get('content-length');
  return (length !== '' && length !== '0') || ctx.get('transfer-encoding') !== '';
}

export async function readBody(ctx: Context, limitBytes: number): Promise<ParsedBody> {
  if (!['POST', 'PUT', 'PATCH'].includes(ctx.method) || !hasBody(ctx)) return {};
  const contentType = mediaType(ctx.get('content-type')) ?? 'application/fhir+json';
  if (contentType === FORM) {
    const text = await getRawBody(ctx.req, { limit: limitBytes, encoding: 'utf8' });
    return { contentType, form: new URLSearchParams(text) };
  }
  if (!JSON_TYPES.has(contentType)) {
    throw unsupportedMediaType(`Unsupported Content-Type ${contentType}: send application/fhir+json`);
  }
  const text = await getRawBody(ctx.req, { limit: limitBytes, encoding: 'utf8' });
  if (text.trim() === '') throw badRequest('Empty request body');
  return { contentType, body: parseFhirJson(text) };
}
