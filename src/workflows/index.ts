/**
 * Rules that span resources (STYLE "Growing the house"): one hook per resource type, run by storeVersion inside
 * the write's transaction (src/fhir/context.ts `Workflows`). The interactions call the seam; the rules live here.
 */
import type { Resource } from '@medplum/fhirtypes';
import type { FhirContext, WriteEvent, Workflows } from '../fhir/context';
import type { Queryable } from '../storage/database';
import { consentHook } from './records/consent';
import { schedulingHooks, type SchedulingSettings } from './scheduling';
import { subscriptionHook, type SubscriptionSettings } from './subscriptions';
import type { Blobs } from '../blobs';
import { binaryHook } from './records/binaryContent';
import { documentReferenceHook } from './records/attachments';

/** The rules of one resource type. */
export interface TypeHook {
  /** See Workflows.createNeedsTransaction (default: yes). */
  createNeedsTransaction?(resource: Resource): boolean;
  beforeWrite(ctx: FhirContext, q: Queryable, event: WriteEvent): Promise<void>;
  afterWrite?(ctx: FhirContext, q: Queryable, event: WriteEvent): Promise<void>;
}

export interface WorkflowSettings {
  scheduling: SchedulingSettings;
  /** Unset: no endpoint is allow-listed (only https to public addresses). */
  subscriptions?: SubscriptionSettings;
  /** Encrypted attachments (Binary content, DocumentReference inline data); unset: no Binary or DocumentReference rules. */
  blobs?: Blobs;
}

export function createWorkflows(settings: WorkflowSettings): Workflows {
  const hooks: Record<string, TypeHook> = {
    ...schedulingHooks(settings.scheduling),
    Subscription: subscriptionHook(settings.subscriptions ?? { endpointAllowlist: [] }),
    ...(settings.blobs ? { Binary: binaryHook(settings.blobs), DocumentReference: documentReferenceHook() } : {}),
    Consent: consentHook,
  };
  return {
    handles: (resourceType) => Object.prototype.hasOwnProperty.call(hooks, resourceType),
    createNeedsTransaction: (resource) => hooks[resource.resourceType]?.createNeedsTransaction?.(resource) ?? true,
    beforeWrite: (ctx, q, event) => hooks[event.resourceType].beforeWrite(ctx, q, event),
    afterWrite: async (ctx, q, event) => {
      await hooks[event.resourceType].afterWrite?.(ctx, q, event);
    },
  };
}
