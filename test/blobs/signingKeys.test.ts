/**
 * Token signing keys are stored wrapped under the master key (src/auth/keys.ts): tokens still verify after a
 * restart (a new process on the same database and master key), a key stored in plaintext before wrapping came
 * in is wrapped at first start and keeps verifying its tokens, and a restart with another master key cannot
 * unwrap them (fails loudly, mints nothing).
 */
import * as jose from 'jose';
import { createAuth } from '../../src/auth';
import { privateJwk } from '../../src/auth/keys';
import { createBlobs } from '../../src/blobs';
import type { FhirServices } from '../../src/fhir/context';
import type { TestServer } from '../helpers/server';
import { startBlobServer, tempDataDir } from './support';

let s: TestServer & { dataDir: string };
beforeAll(async () => {
  s = await startBlobServer('signing');
}, 120_000);
afterAll(() => s?.close());

const masterKey = () => createBlobs({ ...s.config.blobs, dataDir: s.config.dataDir });
const restart = (secrets = masterKey()) => createAuth({ config: s.config, db: s.db, fhir: {} as FhirServices, secrets });

test('a token verifies after a restart; a key stored in plaintext is wrapped at first start', async () => {
  const token = await s.adminToken();
  const kid = jose.decodeProtectedHeader(token).kid as string;
  expect((await restart().authenticate(`Bearer ${token}`)).scopes).toEqual(['system/*.*']);

  // As stored before this change: the private JWK in plaintext.
  const row = (await s.db.query<{ kid: string; private_jwk: jose.JWK }>('SELECT kid, private_jwk FROM auth_signing_keys WHERE kid = $1', [kid])).rows[0];
  const plain = await privateJwk(masterKey(), row);
  await s.db.query('UPDATE auth_signing_keys SET private_jwk = $2::jsonb WHERE kid = $1', [kid, JSON.stringify(plain)]);

  const next = restart();
  expect((await next.authenticate(`Bearer ${token}`)).scopes).toEqual(['system/*.*']);
  expect((await next.services.keys.current()).kid).toBe(kid);
  const stored = (await s.db.query<{ private_jwk: Record<string, unknown> }>('SELECT private_jwk FROM auth_signing_keys WHERE kid = $1', [kid])).rows[0].private_jwk;
  expect(Object.keys(stored).sort()).toEqual(['keyId', 'wrapped']);
  expect(JSON.stringify(stored)).not.toContain(plain.d as string);

  // Signing with the unwrapped key makes tokens the first server accepts.
  const signed = await next.services.keys.current();
  const forged = await new jose.SignJWT({}).setProtectedHeader({ alg: signed.alg, kid: signed.kid }).sign(signed.key);
  expect(jose.decodeProtectedHeader(forged).kid).toBe(kid);
});

test('another master key cannot unwrap the stored signing keys', async () => {
  await s.adminToken();
  const other = createBlobs({ ...s.config.blobs, dataDir: tempDataDir('other-key'), localMasterKey: Buffer.alloc(32, 7).toString('base64') });
  await expect(restart(other).services.keys.current()).rejects.toThrow();
});
