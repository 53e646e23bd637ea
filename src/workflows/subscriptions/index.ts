/**
 * FHIR R4 Subscriptions with a rest-hook channel (https://hl7.org/fhir/R4/subscription.html; CONTRACT section 5;
 * issue 12): the workflow of the Subscription resource (hook.ts) and the outbox handlers that activate
 * Subscriptions and deliver their notifications (notify.ts).
 */
export { subscriptionHook, ACTIVATE_KIND, type SubscriptionSettings } from './hook';
export { subscriptionHandlers, EVENT_KIND, NOTIFY_KIND, NOTIFY_MAX_ATTEMPTS, NOTIFY_RETRY_MS, SUBSCRIPTION_KINDS, type SubscriptionDelivery } from './notify';
export { SECRET_EXTENSION } from './signing';
