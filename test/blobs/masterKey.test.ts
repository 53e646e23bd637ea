/**
 * The default master key (CONTRACT section 1 "keys"): without LOCAL_MASTER_KEY or KMS_KEY_ID, a key file created
 * under DATA_DIR at first start, mode 0600, and the same key at every later start; LOCAL_MASTER_KEY must be 32
 * bytes of base64, said at start.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createBlobs } from '../../src/blobs';
import { loadConfig } from '../../src/config';
import { tempDataDir } from './support';

const settings = (dataDir: string, localMasterKey?: string) => ({ ...loadConfig({}).blobs, dataDir, localMasterKey });

test('a key file is created at first start with mode 0600 and reused after', async () => {
  const dir = tempDataDir('keyfile');
  const first = createBlobs(settings(dir));
  const file = join(dir, 'master.key');
  expect(statSync(file).mode & 0o777).toBe(0o600);
  expect(Buffer.from(readFileSync(file, 'utf8').trim(), 'base64')).toHaveLength(32);
  const wrapped = await first.wrapSecret('label', Buffer.from('secret'));
  const again = createBlobs(settings(dir));
  expect(await again.keys.currentId()).toBe(await first.keys.currentId());
  expect((await again.unwrapSecret('label', wrapped)).toString()).toBe('secret');
  await expect(again.unwrapSecret('other label', wrapped)).rejects.toThrow();
});

test('LOCAL_MASTER_KEY must be 32 bytes of base64', () => {
  expect(() => createBlobs(settings(tempDataDir('badkey'), Buffer.alloc(16).toString('base64')))).toThrow(/LOCAL_MASTER_KEY must be 32 bytes/);
});
