/**
 * batch and transaction Bundles (https://hl7.org/fhir/R4/http.html#transaction).
 * A transaction is all-or-nothing in one database transaction: entries run in the order the spec sets
 * (DELETE, POST, PUT/PATCH, GET), `urn:uuid:` and other fullUrls are rewritten to the ids the server
 * assigns, conditional creates and updates are resolved first, and two entries for one resource are refused.
 * A batch runs each entry on its own and reports each entry's outcome.
 */
import type { Binary, Bundle, BundleEntry, OperationOutcomeIssue, Resource } from '@medplum/fhirtypes';
import { walkReferences } from '../../storage/indexer';
import { lockCriteria } from '../../storage/repository';
import type { FhirContext, FhirRequest, FhirResponse } from '../context';
import { isKnownResourceType } from '../definitions';
import { badRequest, issuesOutcome, OperationOutcomeError, outcome, preconditionFailed, serverError } from '../outcomes';
import { MAX_ISSUES } from '../validation/issues';
import { newResourceId } from '../resources';
import { logger } from '../../logger';
import { isConnectionError, pgErrorCode } from '../../storage/database';
import { create } from './create';
import { matchCriteria, runDeferredChecks } from './write';

type Router = (ctx: FhirContext, req: FhirRequest) => Promise<FhirResponse>;
type Method = FhirRequest['method'];

interface Entry {
  index: number;
  method: Method;
  /** Path below the FHIR base ("Patient", "Patient/1") and the query part. */
  path: string;
  query: string;
  fullUrl?: string;
  resource?: Resource;
  request: NonNullable<BundleEntry['request']>;
  /** Id reserved for a POST, so references to its fullUrl resolve before it runs. */
  assignedId?: string;
}

const ORDER: Record<string, number> = { DELETE: 0, POST: 1, PUT: 2, PATCH: 2, GET: 3, HEAD: 3 };
const STATUS_TEXT: Record<number, string> = { 200: 'OK', 201: 'Created', 204: 'No Content', 304: 'Not Modified' };

export async function batchOrTransaction(ctx: FhirContext, req: FhirRequest, route: Router): Promise<FhirResponse> {
  const bundle = req.body as Bundle | undefined;
  if (!bundle || typeof bundle !== 'object' || bundle.resourceType !== 'Bundle') {
    throw badRequest('POST to the FHIR base needs a batch or transaction Bundle', 'resourceType');
  }
  if (bundle.type !== 'batch' && bundle.type !== 'transaction') {
    throw badRequest(`Bundle.type must be batch or transaction, not ${bundle.type}`, 'Bundle.type');
  }
  // The envelope and every entry's shape are checked before anything runs; a transaction's resources too.
  if (bundle.entry !== undefined && !Array.isArray(bundle.entry)) throw badRequest('Bundle.entry must be an array', 'Bundle.entry');
  const count = bundle.entry?.length ?? 0;
  const max = ctx.settings.limits.bundleMaxEntries;
  if (count > max) {
    throw badRequest(`The Bundle has ${count} entries; a ${bundle.type} may have at most ${max} (BUNDLE_MAX_ENTRIES)`, 'Bundle.entry');
  }
  const entries = (bundle.entry ?? []).map((e, i) => parseEntry(ctx, e, i));
  uniqueFullUrls(entries);
  if (bundle.type === 'transaction') validateEntries(ctx, entries);
  return bundle.type === 'transaction' ? transaction(ctx, req, entries, route) : batch(ctx, req, entries, route);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseEntry(ctx: FhirContext, e: unknown, index: number): Entry {
  const where = `Bundle.entry[${index}]`;
  if (!isObject(e)) throw badRequest(`${where} must be a JSON object`, where);
  const request = e.request;
  if (!isObject(request)) throw badRequest(`${where}: request (with method and url) is required`, `${where}.request`);
  if (typeof request.method !== 'string' || typeof request.url !== 'string' || request.url === '') {
    throw badRequest(`${where}: request.method and request.url are required strings`, `${where}.request`);
  }
  for (const key of ['ifMatch', 'ifNoneExist', 'ifNoneMatch', 'ifModifiedSince'] as const) {
    if (request[key] !== undefined && typeof request[key] !== 'string') throw badRequest(`${where}: request.${key} must be a string`, `${where}.request.${key}`);
  }
  if (e.fullUrl !== undefined && typeof e.fullUrl !== 'string') throw badRequest(`${where}: fullUrl must be a string`, `${where}.fullUrl`);
  if (e.resource !== undefined && !isObject(e.resource)) throw badRequest(`${where}: resource must be a JSON object`, `${where}.resource`);
  const method = request.method.toUpperCase() as Method;
  if (!Object.prototype.hasOwnProperty.call(ORDER, method)) throw badRequest(`${where}: unsupported method ${request.method.slice(0, 20)}`, `${where}.request.method`);
  let url = request.url;
  const base = ctx.settings.fhirBaseUrl + '/';
  if (url.startsWith(base)) url = url.slice(base.length);
  url = url.replace(/^\/+/, '');
  const q = url.indexOf('?');
  const entry: Entry = {
    index,
    method,
    path: q < 0 ? url : url.slice(0, q),
    query: q < 0 ? '' : url.slice(q + 1),
    fullUrl: e.fullUrl as string | undefined,
    resource: e.resource as Resource | undefined,
    request: request as unknown as NonNullable<BundleEntry['request']>,
  };
  if ((method === 'POST' || method === 'PUT' || method === 'PATCH') && !e.resource) {
    throw badRequest(`${where}: a ${method} entry needs a resource`, `${where}.resource`);
  }
  // A Bundle may be stored (POST Bundle), but a batch or transaction is not run from inside another one.
  if (entry.path === '' && method !== 'GET' && method !== 'HEAD') {
    throw badRequest(`${where}: a batch or transaction cannot contain another batch or transaction (${method} to the base)`, `${where}.request.url`);
  }
  return entry;
}

/** bdl-7 (https://hl7.org/fhir/R4/bundle.html#invs): fullUrl is unique in a Bundle, unless the versions differ. */
function uniqueFullUrls(entries: Entry[]): void {
  const seen = new Map<string, number>();
  for (const entry of entries) {
    if (!entry.fullUrl) continue;
    const key = `${entry.fullUrl}|${entry.resource?.meta?.versionId ?? ''}`;
    const first = seen.get(key);
    if (first !== undefined) {
      throw badRequest(`Bundle.entry[${entry.index}]: fullUrl ${entry.fullUrl.slice(0, 200)} is also Bundle.entry[${first}]'s (bdl-7: fullUrl must be unique)`, `Bundle.entry[${entry.index}].fullUrl`);
    }
    seen.set(key, entry.index);
  }
}

/**
 * A transaction is all or nothing: every resource it would write is validated before the first one is, so a bad
 * last entry costs a validation pass, not thousands of writes rolled back. (Each is validated again as written,
 * once its references are rewritten to the ids the server assigned.)
 */
function validateEntries(ctx: FhirContext, entries: Entry[]): void {
  const issues: OperationOutcomeIssue[] = [];
  let status = 422;
  for (const entry of entries) {
    if (!entry.resource || (entry.method !== 'POST' && entry.method !== 'PUT')) continue;
    // A type with a workflow is validated once the workflow has completed it (write.ts).
    if (ctx.workflows?.handles(entry.resource.resourceType)) continue;
    let found: OperationOutcomeIssue[];
    try {
      ctx.validator.assertValid(entry.resource);
      continue;
    } catch (err) {
      if (!(err instanceof OperationOutcomeError)) throw err;
      if (err.status === 400) status = 400;
      found = (err.outcome.issue ?? []).filter((i) => i.severity === 'error' || i.severity === 'fatal');
    }
    for (const i of found) {
      issues.push({ ...i, diagnostics: `Bundle.entry[${entry.index}] (${entry.method} ${entry.request.url.slice(0, 200)}): ${i.diagnostics ?? ''}` });
      if (issues.length >= MAX_ISSUES) break;
    }
    if (issues.length >= MAX_ISSUES) break;
  }
  if (issues.length > 0) throw new OperationOutcomeError(status, issuesOutcome(issues));
}

function toRequest(entry: Entry, outer: FhirRequest): FhirRequest {
  const req: FhirRequest = {
    method: entry.method,
    path: entry.path,
    query: new URLSearchParams(entry.query.replace(/\+/g, '%2B')),
    body: entry.resource,
    contentType: 'application/fhir+json',
    ifMatch: entry.request.ifMatch,
    ifNoneExist: entry.request.ifNoneExist,
    ifNoneMatch: entry.request.ifNoneMatch,
    ifModifiedSince: entry.request.ifModifiedSince,
    prefer: outer.prefer,
  };
  if (entry.method === 'PATCH' && entry.resource?.resourceType === 'Binary') {
    // A JSON Patch travels in a transaction as a Binary (https://hl7.org/fhir/R4/http.html#patch).
    const binary = entry.resource as Binary;
    req.contentType = binary.contentType;
    try {
      req.body = JSON.parse(Buffer.from(binary.data ?? '', 'base64').toString('utf8'));
    } catch {
      throw badRequest(`Bundle.entry[${entry.index}]: the Binary does not hold a JSON Patch document`);
    }
  }
  return req;
}

function entryResponse(res: FhirResponse): BundleEntry {
  const entry: BundleEntry = {
    response: {
      status: `${res.status} ${STATUS_TEXT[res.status] ?? ''}`.trim(),
      location: res.location,
      etag: res.etag,
      lastModified: res.lastModified ? new Date(res.lastModified).toISOString() : undefined,
    },
  };
  if (res.body?.resourceType === 'OperationOutcome') entry.response!.outcome = res.body;
  else if (res.body) entry.resource = res.body;
  return entry;
}

async function batch(ctx: FhirContext, outer: FhirRequest, entries: Entry[], route: Router): Promise<FhirResponse> {
  const out: BundleEntry[] = [];
  for (const entry of entries) {
    try {
      out.push(entryResponse(await route(ctx, toRequest(entry, outer))));
    } catch (err) {
      const e = err instanceof OperationOutcomeError ? err : unexpected(err);
      out.push({ response: { status: String(e.status), outcome: e.outcome } });
    }
  }
  return { status: 200, body: { resourceType: 'Bundle', type: 'batch-response', ...(out.length > 0 ? { entry: out } : {}) } as Bundle };
}

function unexpected(err: unknown): OperationOutcomeError {
  // The database going away fails the whole batch with 503 (src/http/errors.ts), not each entry with 500.
  if (isConnectionError(err)) throw err;
  // A deadlock or serialization conflict with a concurrent write: this entry wrote nothing and may be retried.
  const code = pgErrorCode(err);
  if (code === '40P01' || code === '40001') return new OperationOutcomeError(409, outcome('error', 'transient', 'A concurrent write conflicted with this one and nothing was written; retry'));
  logger.error({ err: (err as Error)?.message, stack: (err as Error)?.stack }, 'batch entry failed');
  return serverError();
}

async function transaction(ctx: FhirContext, outer: FhirRequest, entries: Entry[], route: Router): Promise<FhirResponse> {
  return ctx.db.transaction(async (tx) => {
    const inner: FhirContext = { ...ctx, tx, deferred: { references: new Map(), deletes: new Set() } };
    const targets = await resolveTargets(inner, entries);
    rewriteReferences(entries, targets);
    const responses = new Array<BundleEntry>(entries.length);
    const ordered = [...entries].sort((a, b) => ORDER[a.method] - ORDER[b.method] || a.index - b.index);
    for (const entry of ordered) {
      try {
        const req = toRequest(entry, outer);
        const res = entry.method === 'POST' && entry.assignedId
          ? await create(inner, { ...req, ifNoneExist: undefined }, entry.path, entry.assignedId)
          : await route(inner, req);
        responses[entry.index] = entryResponse(res);
      } catch (err) {
        throw err instanceof OperationOutcomeError ? inEntry(err, entry) : err;
      }
    }
    await runDeferredChecks(inner, tx);
    return { status: 200, body: { resourceType: 'Bundle', type: 'transaction-response', ...(responses.length > 0 ? { entry: responses } : {}) } as Bundle };
  });
}

/** Prefixes an entry's failure with where it happened, keeping its status. */
function inEntry(err: OperationOutcomeError, entry: Entry): OperationOutcomeError {
  const issues = (err.outcome.issue ?? []).map((i) => ({
    ...i,
    diagnostics: `Bundle.entry[${entry.index}] (${entry.method} ${entry.request.url}): ${i.diagnostics ?? ''}`,
  }));
  return new OperationOutcomeError(err.status, { ...err.outcome, issue: issues }, err.headers);
}

/**
 * Decides, before anything runs, which resource each write entry targets: a new id for a POST (or the match of
 * its If-None-Exist), the match of a conditional PUT. Returns fullUrl -> "Type/id".
 */
async function resolveTargets(ctx: FhirContext, entries: Entry[]): Promise<Map<string, string>> {
  const targets = new Map<string, string>();
  const written = new Map<string, number>();
  const byCriteria = new Map<string, string>();
  const q = ctx.tx!;
  for (const entry of entries) {
    const where = `Bundle.entry[${entry.index}]`;
    const [type, id] = entry.path.split('/');
    if (!isKnownResourceType(type) && entry.path !== '') {
      throw badRequest(`${where}: unknown resource type ${type}`, `${where}.request.url`);
    }
    let target: string | undefined;
    if (entry.method === 'POST') {
      const criteria = entry.request.ifNoneExist;
      if (criteria) {
        const key = `${type}?${criteria}`;
        const known = byCriteria.get(key);
        if (known) {
          target = known; // the same conditional create twice: the second finds the first
        } else {
          await lockCriteria(q, key);
          const matches = await matchCriteria(ctx, q, 'create', type, criteria);
          if (matches.length > 1) throw preconditionFailed(`${where}: If-None-Exist ${criteria} matches more than one ${type}`, 'multiple-matches');
          if (matches.length === 1) {
            target = `${type}/${matches[0].id}`;
          } else {
            entry.assignedId = newResourceId();
            target = `${type}/${entry.assignedId}`;
          }
          byCriteria.set(key, target);
          if (entry.assignedId) countWrite(written, target, where);
        }
      } else {
        entry.assignedId = newResourceId();
        target = `${type}/${entry.assignedId}`;
      }
    } else if (entry.method === 'PUT' && !id && entry.query) {
      const key = `${type}?${entry.query}`;
      await lockCriteria(q, key);
      const matches = await matchCriteria(ctx, q, 'update', type, entry.query);
      if (matches.length > 1) throw preconditionFailed(`${where}: ${key} matches more than one ${type}`, 'multiple-matches');
      const resolvedId = matches[0]?.id ?? entry.resource?.id ?? newResourceId();
      target = `${type}/${resolvedId}`;
      entry.path = target;
      entry.query = '';
      entry.resource = { ...(entry.resource as Resource), id: resolvedId };
      countWrite(written, target, where);
    } else if ((entry.method === 'PUT' || entry.method === 'PATCH' || entry.method === 'DELETE') && id) {
      target = `${type}/${id}`;
      countWrite(written, target, where);
    }
    if (target && entry.fullUrl) targets.set(entry.fullUrl, target);
  }
  return targets;
}

function countWrite(written: Map<string, number>, target: string, where: string): void {
  if (written.has(target)) {
    throw badRequest(`${where}: ${target} is already the target of Bundle.entry[${written.get(target)}]; a transaction may change a resource once`);
  }
  written.set(target, Number(/\d+/.exec(where)?.[0]));
}

/** Rewrites references to entries' fullUrls (urn:uuid: or absolute) to "Type/id", in bodies and URLs. */
function rewriteReferences(entries: Entry[], targets: Map<string, string>): void {
  for (const entry of entries) {
    if (entry.resource) {
      walkReferences(entry.resource, (ref, holder) => {
        const mapped = targets.get(ref);
        if (mapped) holder.reference = mapped;
        else if (ref.startsWith('urn:uuid:') || ref.startsWith('urn:oid:')) {
          throw badRequest(`Bundle.entry[${entry.index}]: reference ${ref} matches no entry's fullUrl`);
        }
      });
    }
    for (const [from, to] of targets) {
      if (entry.query.includes(from)) entry.query = entry.query.split(from).join(to);
      if (entry.path === from) entry.path = to;
    }
  }
}
