/**
 * createApp(deps): the Koa application, without listening. Tests drive it over HTTP; main.ts serves it.
 * The OperationOutcome error middleware is first in the chain, so every error leaves as FHIR.
 */
import Koa from 'koa';
import type { Config } from './config';
import { createAuth, type Mailer } from './auth';
import type { FhirServices } from './fhir/context';
import type { FhirValidator } from './fhir/validation';
import { loadDefinitions } from './fhir/definitions';
import { registerSearchParameters } from './fhir/searchParameters';
import { authRoutes } from './http/auth';
import { accessForGrant } from './access/fromToken';
import { outcomeErrors } from './http/errors';
import { fhirHandler } from './http/fhir';
import { probes } from './http/probes';
import type { Database } from './storage/database';
import { InsertBatcher } from './storage/insertBatcher';
import { createWorkflows } from './workflows';
import { isMigrated } from './storage/migrate';
import { join } from 'node:path';
import { projectRoot } from './config';

export interface AppDeps {
  config: Config;
  db: Database;
  validator: FhirValidator;
  /** Outgoing mail (password resets); default: SMTP_URL, or the log. Tests pass one that records. */
  mailer?: Mailer;
}

export function createApp(deps: AppDeps): Koa {
  loadDefinitions();
  const { config, db, validator } = deps;
  registerSearchParameters(validator.conformanceResources);
  const migrationsDir = join(projectRoot(), 'migrations');
  let migrated = false;
  const probe = probes(db, async () => (migrated ||= await isMigrated(db, migrationsDir)));
  const fhirBaseUrl = `${config.baseUrl}/fhir`;
  const services: FhirServices = {
    db,
    // PGlite has one connection: one writer, and the creates that wait for it go in the next statement
    inserts: new InsertBatcher(db, fhirBaseUrl, {
      writers: db.kind === 'pglite' ? 1 : Math.min(config.createWriters, config.dbPoolSize),
      maxBatch: config.createBatchMax,
      onBatch: probe.createBatch,
    }),
    validator,
    workflows: createWorkflows({ scheduling: { videoBaseUrl: config.videoBaseUrl } }),
    settings: {
      fhirBaseUrl,
      enforceReferentialIntegrityOnWrite: config.enforceReferentialIntegrityOnWrite,
      enforceReferentialIntegrityOnDelete: config.enforceReferentialIntegrityOnDelete,
      limits: config.limits,
    },
  };
  const auth = createAuth({ config, db, fhir: services, mailer: deps.mailer });
  const fhir = fhirHandler(services, config.maxJsonBytes, async (header) =>
    accessForGrant(db, await auth.authenticate(header), services.settings.fhirBaseUrl),
  );

  const app = new Koa();
  app.proxy = true;
  app.silent = true;
  app.use(outcomeErrors());
  app.use(probe.timing);
  app.use(probe.router.routes());
  app.use(authRoutes(auth));
  app.use(async (ctx, next) => {
    if (ctx.path === '/fhir' || ctx.path.startsWith('/fhir/')) return fhir(ctx, next);
    return next();
  });
  return app;
}
