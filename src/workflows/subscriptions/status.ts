/**
 * The server's own status changes of a Subscription (https://hl7.org/fhir/R4/subscription.html#status):
 * `requested` -> `active` or `error` on activation, `active` -> `error` when notifications fail for good. Written
 * as a new version through storeVersion, so history, indexes and the Subscription workflow (its topic row) follow;
 * `byWorkflow` lets the write set what a client may not.
 */
import type { Subscription } from '@medplum/fhirtypes';
import { systemContext } from '../../access/context';
import type { FhirServices } from '../../fhir/context';
import { storeVersion } from '../../fhir/interactions/write';
import { logger } from '../../logger';
import { readCurrent } from '../../storage/repository';

/**
 * Moves Subscription/<id> from `from` to `to` (with `error` text for `error`), unless it is no longer in `from`
 * (a client turned it off meanwhile), or no longer has `endpoint` when one is given (a client moved it while its
 * old endpoint was being checked: the new one has its own activation): then nothing is written. Returns whether it
 * was written.
 */
export async function changeStatus(
  services: FhirServices,
  id: string,
  from: Subscription['status'],
  to: Subscription['status'],
  opts: { error?: string; endpoint?: string } = {},
): Promise<boolean> {
  const { error, endpoint } = opts;
  const ctx = { ...services, access: systemContext(), byWorkflow: true };
  const written = await services.db.transaction(async (q) => {
    const current = await readCurrent(q, 'Subscription', id, { forUpdate: true });
    const subscription = current?.resource as Subscription | undefined;
    if (!current || current.deleted || subscription?.status !== from) return false;
    if (endpoint !== undefined && subscription.channel?.endpoint !== endpoint) return false;
    const next: Subscription = { ...subscription, status: to };
    if (error) next.error = error;
    else delete next.error;
    await storeVersion(ctx, q, { resourceType: 'Subscription', id, versionId: current.versionId + 1, method: 'PUT', resource: next }, subscription);
    return true;
  });
  if (written) logger.info({ subscription: id, status: to }, 'subscription status changed');
  return written;
}
