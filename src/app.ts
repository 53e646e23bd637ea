/**
 * createApp(deps): the Koa application, without listening. Tests drive it over HTTP; main.ts serves it.
 * The OperationOutcome error middleware is first in the chain, so every error leaves as FHIR.
 * It also starts the background work of the process (the outbox worker), which `stopBackground()` ends.
 */
import Koa from 'koa';
import type { Config } from './config';
import { createAuth, type Mailer } from './auth';
import { createMailer } from './auth/mail';
import type { FhirServices } from './fhir/context';
import type { FhirValidator } from './fhir/validation';
import { loadDefinitions } from './fhir/definitions';
import { registerSearchParameters } from './fhir/searchParameters';
import { authRoutes } from './http/auth';
import { accessForGrant } from './access/fromToken';
import { outcomeErrors } from './http/errors';
import { fhirHandler } from './http/fhir';
import { binaryRoutes } from './http/binary';
import { blobsFromConfig, type Blobs } from './blobs';
import { prepareAttachments } from './workflows/records/attachments';
import { probes } from './http/probes';
import type { Database } from './storage/database';
import { InsertBatcher } from './storage/insertBatcher';
import { createWorkflows } from './workflows';
import { extendHorizonHandler } from './workflows/scheduling/generate';
import { subscriptionHandlers } from './workflows/subscriptions';
import { notificationHandlers } from './workflows/notifications';
import { createOutboxWorker, type OutboxHandlers, type OutboxWorkerOptions } from './workflows/outbox/worker';
import { isMigrated } from './storage/migrate';
import { join } from 'node:path';
import { projectRoot } from './config';

export interface AppDeps {
  config: Config;
  db: Database;
  validator: FhirValidator;
  /** Outgoing mail (password resets, notices); default: SMTP_URL, or the log. Tests pass one that records. */
  mailer?: Mailer;
  /** Attachment storage and keys; default: from the configuration (src/blobs/). */
  blobs?: Blobs;
  /** false: no outbox worker in this app (a test that drives one itself); default: it runs. */
  background?: boolean;
  /** Tests: more outbox handlers (or replacements), and a shorter lease or backoff than production's. */
  outbox?: { handlers?: OutboxHandlers } & Pick<OutboxWorkerOptions, 'leaseMs' | 'backoffMs' | 'unknownKindGraceMs' | 'maintenanceEveryMs' | 'batchSize'>;
}

export type App = Koa & {
  /** Stops the outbox worker, waiting up to `graceMs` for deliveries in flight; call before closing the database. */
  stopBackground(graceMs?: number): Promise<void>;
};

export function createApp(deps: AppDeps): App {
  loadDefinitions();
  const { config, db, validator } = deps;
  registerSearchParameters(validator.conformanceResources);
  const migrationsDir = join(projectRoot(), 'migrations');
  let migrated = false;
  const probe = probes(db, async () => (migrated ||= await isMigrated(db, migrationsDir)));
  const fhirBaseUrl = `${config.baseUrl}/fhir`;
  const blobs = deps.blobs ?? blobsFromConfig(config);
  const services: FhirServices = {
    db,
    // PGlite has one connection: one writer, and the creates that wait for it go in the next statement
    inserts: new InsertBatcher(db, fhirBaseUrl, {
      writers: db.kind === 'pglite' ? 1 : Math.min(config.createWriters, config.dbPoolSize),
      maxBatch: config.createBatchMax,
      onBatch: probe.createBatch,
    }),
    validator,
    workflows: createWorkflows({
      scheduling: { videoBaseUrl: config.videoBaseUrl },
      subscriptions: { endpointAllowlist: config.subscriptionEndpointAllowlist },
      blobs,
    }),
    settings: {
      fhirBaseUrl,
      enforceReferentialIntegrityOnWrite: config.enforceReferentialIntegrityOnWrite,
      enforceReferentialIntegrityOnDelete: config.enforceReferentialIntegrityOnDelete,
      limits: config.limits,
      video: { jitsiAppId: config.jitsiAppId, jitsiAppSecret: config.jitsiAppSecret },
    },
  };
  const mailer = deps.mailer ?? createMailer(config.smtpUrl, config.mailFrom);
  const auth = createAuth({ config, db, fhir: services, mailer, secrets: blobs });

  // Every side effect's kind and its handler (rows written by enqueue, src/workflows/outbox/enqueue.ts). Scheduling
  // adds its own here (e.g. 'schedule.extend-horizon'); FHIR Subscriptions their 'rest-hook'.
  const { handlers: testHandlers, ...outboxOptions } = deps.outbox ?? {};
  const outboxHandlers: OutboxHandlers = {
    ...notificationHandlers({ db, mailer, appUrl: config.baseUrl, mailFrom: config.mailFrom }),
    'schedule.extend-horizon': extendHorizonHandler(services),
    ...subscriptionHandlers({ services, settings: { endpointAllowlist: config.subscriptionEndpointAllowlist } }),
    ...testHandlers,
  };
  const worker = createOutboxWorker({
    db,
    handlers: outboxHandlers,
    pollMs: config.outboxPollMs,
    onOutcome: probe.outboxDelivery,
    ...outboxOptions,
  });
  const authenticate = async (header: string | undefined) => accessForGrant(db, await auth.authenticate(header), services.settings.fhirBaseUrl);
  const fhir = fhirHandler(services, config.maxJsonBytes, authenticate, (ctx, req) => prepareAttachments(blobs, ctx, req));
  const binary = binaryRoutes(services, blobs, config.maxJsonBytes, authenticate);

  const app = new Koa();
  app.proxy = true;
  app.silent = true;
  app.use(outcomeErrors());
  app.use(probe.timing);
  app.use(probe.router.routes());
  app.use(authRoutes(auth));
  app.use(async (ctx, next) => {
    if (ctx.path.startsWith('/fhir/Binary')) return binary(ctx, () => fhir(ctx, next));
    if (ctx.path === '/fhir' || ctx.path.startsWith('/fhir/')) return fhir(ctx, next);
    return next();
  });
  if (deps.background !== false) worker.start();
  return Object.assign(app, { stopBackground: (graceMs?: number) => worker.stop(graceMs) });
}
