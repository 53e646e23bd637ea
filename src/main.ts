/**
 * Entry point: configuration, database, migrations, listen, graceful shutdown on SIGTERM
 * (stop accepting, finish in-flight requests and outbox deliveries, exit 0).
 */
import { join } from 'node:path';
import { createApp } from './app';
import { createHttpServer } from './http/clientErrors';
import { loadConfig, projectRoot } from './config';
import { loadDefinitions } from './fhir/definitions';
import { loadValidator } from './fhir/validation';
import { logger } from './logger';
import { openDatabase } from './storage/database';
import { migrate } from './storage/migrate';

async function main(): Promise<void> {
  const config = loadConfig();
  if (!config.databaseUrl) {
    // PGlite runs PostgreSQL with fsync off (-F) and its Node filesystem's sync does nothing: a process crash
    // loses nothing acknowledged, a power loss or an operating-system crash can.
    const embedded = { database: 'embedded', dataDir: config.dataDir };
    const why = 'the embedded database (PGlite) is for development, demos and a single small node: it never fsyncs, so a power loss or OS crash can lose acknowledged writes';
    if (config.production) logger.warn(embedded, `NODE_ENV=production without DATABASE_URL: ${why}. Set DATABASE_URL to a PostgreSQL server.`);
    else logger.info(embedded, `no DATABASE_URL: ${why}`);
  }
  logger.info(
    { adminClient: config.auth.bootstrapClientId ?? null },
    config.auth.bootstrapClientId ? 'admin client configured (BOOTSTRAP_CLIENT_ID)' : 'no admin client: BOOTSTRAP_CLIENT_ID and BOOTSTRAP_CLIENT_SECRET are unset',
  );
  const db = await openDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: join(config.dataDir, 'pglite'),
    poolSize: config.dbPoolSize,
    statementTimeoutMs: config.dbStatementTimeoutMs,
  });
  await migrate(db, join(projectRoot(), 'migrations'));
  loadDefinitions();
  const validator = loadValidator(config.profilesDir);
  const app = createApp({ config, db, validator });
  // Not app.listen(): the server answers malformed requests (bad request lines, huge headers) as OperationOutcomes.
  const server = createHttpServer(app.callback());
  server.listen(config.port, () => {
    logger.info({ port: config.port, baseUrl: config.baseUrl, database: db.kind }, 'FHIR server listening');
  });
  server.keepAliveTimeout = 65_000;

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      logger.error('shutdown timed out; exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs);
    force.unref();
    // The outbox worker claims nothing more; deliveries in flight get a while to finish (those that do not keep
    // their rows leased, and another server, or this one restarted, delivers them when the lease ends).
    const background = app.stopBackground(Math.min(10_000, config.shutdownTimeoutMs / 2)).catch(() => undefined);
    // Keep-alive connections that finish their request after this point go idle; close them as they do.
    const sweep = setInterval(() => server.closeIdleConnections(), 100);
    server.close(async () => {
      clearInterval(sweep);
      await background;
      await db.close().catch(() => undefined);
      logger.info('stopped');
      process.exit(0);
    });
    server.closeIdleConnections();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err) => {
  logger.fatal({ err: (err as Error).message, stack: (err as Error).stack }, 'failed to start');
  process.exit(1);
});
