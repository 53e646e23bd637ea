/**
 * `npm run rotate-keys`: re-wraps every attachment data key and every stored token signing key under the current
 * master key (LOCAL_MASTER_KEY or the key file, or KMS_KEY_ID), with a progress bar. Same configuration as the
 * server; run it after changing the master key, with the previous one still configured
 * (LOCAL_MASTER_KEYS_PREVIOUS, or the old KMS key enabled). Safe to run again, and to run while servers serve.
 */
import { join } from 'node:path';
import { SingleBar, Presets } from 'cli-progress';
import { loadConfig, projectRoot } from '../config';
import { rewrapSigningKeys } from '../auth/keys';
import { openDatabase } from '../storage/database';
import { migrate } from '../storage/migrate';
import { blobsFromConfig } from '.';
import { rotateDataKeys } from './rotate';

async function main(): Promise<void> {
  const config = loadConfig();
  const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: join(config.dataDir, 'pglite'), poolSize: 2 });
  const bar = new SingleBar({ format: 'data keys {bar} {value}/{total} ({eta_formatted} left)', hideCursor: true }, Presets.shades_classic);
  try {
    await migrate(db, join(projectRoot(), 'migrations'));
    const blobs = blobsFromConfig(config);
    console.log(`master key: ${await blobs.keys.currentId()}`);
    let started = false;
    const result = await rotateDataKeys(db, blobs, ({ done, total }) => {
      if (!started) {
        bar.start(total, done);
        started = true;
      } else bar.update(done, { total });
    });
    bar.stop();
    const signing = await rewrapSigningKeys(db, blobs);
    console.log(`re-wrapped ${result.done} data keys and ${signing} signing keys`);
  } finally {
    bar.stop();
    await db.close();
  }
}

main().catch((err) => {
  console.error((err as Error).message);
  process.exit(1);
});
