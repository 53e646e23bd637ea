/**
 * Content negotiation: this server speaks FHIR JSON only; a request that accepts only XML gets 406.
 * https://hl7.org/fhir/R4/http.html#mime-type
 */
import type { Context } from 'koa';
import { notAcceptable } from '../fhir/outcomes';

const JSON_FORMATS = new Set(['json', 'application/json', 'application/fhir+json']);

export function assertAcceptsJson(ctx: Context): void {
  const format = typeof ctx.query._format === 'string' ? ctx.query._format.toLowerCase() : undefined;
  if (format !== undefined && !JSON_FORMATS.has(format.split(';')[0].trim())) {
    throw notAcceptable(`_format ${format} is not supported: this server serves application/fhir+json`);
  }
  const accept = ctx.get('accept').toLowerCase();
  if (accept && accept.includes('xml') && !/json|\*\/\*|application\/\*/.test(accept)) {
    throw notAcceptable('This server serves application/fhir+json only');
  }
}
