/**
 * What a FHIR interaction runs with. The FHIR layer knows no web framework: the HTTP layer builds a
 * FhirRequest, the router answers a FhirResponse. Batch and transaction entries go through the same path.
 */
import type { OperationOutcomeIssue, Resource } from '@medplum/fhirtypes';
import type { Limits } from '../config';
import type { AccessContext } from '../access/context';
import type { Database, Queryable } from '../storage/database';
import type { InsertBatcher } from '../storage/insertBatcher';
import type { NewVersion } from '../storage/repository';
import type { FhirValidator } from './validation';

export interface FhirSettings {
  /** `$BASE_URL/fhir`: the prefix of every absolute URL the server writes. */
  fhirBaseUrl: string;
  enforceReferentialIntegrityOnWrite: boolean;
  enforceReferentialIntegrityOnDelete: boolean;
  /** What one request may ask (README "Limits"). */
  limits: Limits;
  /** The consultation rooms (CONTRACT section 1): a self-hosted Jitsi's JWT app signs participants' links. */
  video?: { jitsiAppId?: string; jitsiAppSecret?: string };
}

/** A write about to happen, as the workflow of its resource type sees it (src/workflows/). */
export interface WriteEvent {
  resourceType: string;
  id: string;
  method: 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** The stored version being replaced or deleted; undefined when the write creates (or re-creates) the resource. */
  previous?: Resource;
  /** The version about to be written, which the workflow may complete; undefined for a delete. */
  next?: Resource;
  /**
   * References of `next` ("Type/id") the workflow has found current in this transaction (the Slot it locked, the
   * Schedule's practitioner): the referential-integrity check does not query them again.
   */
  verifiedTargets?: Set<string>;
  /**
   * Set by a workflow that writes the version itself, together with its own rows, in one statement (a booking:
   * Appointment, Slot, holds and outbox at once). storeVersion calls it instead of writing the version; false:
   * nothing was written (a concurrent change), as for a lost optimistic write.
   */
  write?: (version: NewVersion) => Promise<boolean>;
}

/**
 * Rules that span resources (a booking takes a Slot; CONTRACT section 5). The one hook per resource type: it runs
 * inside the write's database transaction, before the version is written, so a rule and the write it guards
 * commit together. It may complete `next`, write other resources and outbox rows, or refuse with an
 * OperationOutcomeError. Interactions call it through storeVersion; they do not know the rules.
 */
export interface Workflows {
  /** Whether writes of this type have rules (they then always run in a transaction, validated after the hook). */
  handles(resourceType: string): boolean;
  /**
   * Whether a create of this resource needs a transaction around it (default: yes, for a type with rules). A
   * workflow that writes everything in one statement (WriteEvent.write) needs none: one statement is atomic.
   */
  createNeedsTransaction?(resource: Resource): boolean;
  beforeWrite(ctx: FhirContext, q: Queryable, event: WriteEvent): Promise<void>;
  /** After the version is written, in the same transaction (e.g. Slots made from a Schedule that now exists). */
  afterWrite(ctx: FhirContext, q: Queryable, event: WriteEvent): Promise<void>;
}

export interface FhirServices {
  db: Database;
  /** Rules that span resources; none in a bare FHIR server. */
  workflows?: Workflows;
  /** Writes the creates that run outside any transaction, grouping those that wait (group commit). */
  inserts: InsertBatcher;
  validator: FhirValidator;
  settings: FhirSettings;
}

/** Referential-integrity checks a transaction Bundle defers to its end (targets may be created later in it). */
export interface DeferredChecks {
  /** "Type/id" of every written resource -> the local targets it references, and how each is checked. */
  references: Map<string, { plain: { targetType: string; targetId: string }[]; visible: { targetType: string; targetId: string }[] }>;
  /** "Type/id" of every resource deleted in the transaction. */
  deletes: Set<string>;
}

export interface FhirContext extends FhirServices {
  access: AccessContext;
  /** Set while running inside a transaction Bundle: every entry uses this one database transaction. */
  tx?: Queryable;
  deferred?: DeferredChecks;
  /** Set on writes a workflow makes itself (a booking marking its Slot busy): the rules that guard clients' writes let them through. */
  byWorkflow?: boolean;
  /**
   * Warnings the rules of a write add to its answer (booked Slots a Schedule's new rules no longer make), listed in
   * an OperationOutcome answer (`Prefer: return=OperationOutcome`, a batch entry's `response.outcome`). Each routed
   * request gets its own list (src/fhir/router.ts).
   */
  notes?: OperationOutcomeIssue[];
}

export interface FhirRequest {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Path below the FHIR base, without leading slash: "Patient/1/_history/2", "" for the base. */
  path: string;
  query: URLSearchParams;
  body?: unknown;
  /** Media type of the body without parameters (e.g. "application/json-patch+json"). */
  contentType?: string;
  ifMatch?: string;
  ifNoneExist?: string;
  ifNoneMatch?: string;
  ifModifiedSince?: string;
  prefer?: string;
}

export interface FhirResponse {
  status: number;
  body?: Resource;
  location?: string;
  etag?: string;
  lastModified?: string;
}

/** Runs fn in the surrounding transaction Bundle's transaction, or in a new one. */
export function inTransaction<T>(ctx: FhirContext, fn: (q: Queryable) => Promise<T>): Promise<T> {
  return ctx.tx ? fn(ctx.tx) : ctx.db.transaction(fn);
}

/** Where reads run: the surrounding transaction (to see its own writes) or the database. */
export function reader(ctx: FhirContext): Queryable {
  return ctx.tx ?? ctx.db;
}
