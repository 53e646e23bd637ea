/**
 * Request bodies: content-type checks (XML is answered 415), a size limit (413, MAX_JSON_MB), strict UTF-8
 * decoding, and FHIR JSON parsing (malformed JSON is a 400 OperationOutcome).
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

/**
 * FHIR JSON is UTF-8 (https://hl7.org/fhir/R4/json.html), and so is a form body here. `fatal` refuses invalid
 * sequences (a lenient decoder would store U+FFFD in their place); `ignoreBOM: false` strips one leading byte
 * order mark. decode() without `stream` starts afresh each call, so one decoder serves every request.
 */
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/** The body as text: at most `limitBytes` (413 past it), strictly UTF-8, one leading BOM allowed. */
export async function readText(ctx: Context, limitBytes: number): Promise<string> {
  const encoding = ctx.get('content-encoding').trim().toLowerCase();
  if (encoding !== '' && encoding !== 'identity') {
    throw unsupportedMediaType(`Content-Encoding ${encoding} is not supported: send the body uncompressed`);
  }
  const bytes = await getRawBody(ctx.req, { limit: limitBytes });
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw badRequest('The request body is not valid UTF-8');
  }
  // The decoder took one BOM; parseFhirJson would quietly take a second.
  if (text.charCodeAt(0) === 0xfeff) throw badRequest('The request body starts with more than one byte order mark');
  return text;
}

export async function readBody(ctx: Context, limitBytes: number): Promise<ParsedBody> {
  if (!['POST', 'PUT', 'PATCH'].includes(ctx.method) || !hasBody(ctx)) return {};
  const contentType = mediaType(ctx.get('content-type')) ?? 'application/fhir+json';
  if (contentType === FORM) {
    return { contentType, form: new URLSearchParams(await readText(ctx, limitBytes)) };
  }
  if (!JSON_TYPES.has(contentType)) {
    throw unsupportedMediaType(`Unsupported Content-Type ${contentType}: send application/fhir+json`);
  }
  const text = await readText(ctx, limitBytes);
  if (text.trim() === '') throw badRequest('Empty request body');
  return { contentType, body: parseFhirJson(text) };
}
