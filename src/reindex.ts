/**
 * `npm run reindex [Type ...]`: rewrites the search index of stored resources (all types, or those named),
 * e.g. after adding a SearchParameter to fhir-profiles/. Uses the same configuration as the server.
 */
import { join } from 'node:path';
import { loadConfig, projectRoot } from './config';
import { loadDefinitions, resourceTypes } from './fhir/definitions';
import { reindexAll } from './fhir/operations/reindex';
import { registerSearchParameters } from './fhir/searchParameters';
import { loadValidator } from './fhir/validation';
import { openDatabase } from './storage/database';
import { migrate } from './storage/migrate';

async function main(): Promise<void> {
  const config = loadConfig();
  const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: join(config.dataDir, 'pglite'), poolSize: 2 });
  try {
    await migrate(db, join(projectRoot(), 'migrations'));
    loadDefinitions();
    registerSearchParameters(loadValidator(config.profilesDir).conformanceResources);
    const wanted = process.argv.slice(2);
    for (const t of wanted) if (!resourceTypes().has(t)) throw new Error(`Unknown resource type ${t}`);
    const counts = await reindexAll(db, `${config.baseUrl}/fhir`, wanted.length ? wanted : [...resourceTypes()]);
    for (const [type, n] of counts) console.log(`${type}: ${n}`);
    console.log(`reindexed ${[...counts.values()].reduce((a, b) => a + b, 0)} resources`);
  } finally {
    await db.close();
  }
}

main().catch((err) => {
  console.error((err as Error).message);
  process.exit(1);
});
