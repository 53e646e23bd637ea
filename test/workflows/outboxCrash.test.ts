/**
 * At least once across a crash (issue 12: "a kill -9 of the server mid-delivery loses nothing"): the real server
 * (src/main.ts, as `npm start` runs it) claims a booking notice and starts sending it to an SMTP server that
 * accepts the message but never answers the end of DATA; the server is killed with SIGKILL while it waits. A new
 * server on the same database claims the row once its lease has run out and the mail arrives. Both databases:
 * PGlite under DATA_DIR, or the PostgreSQL server of DATABASE_URL.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../../src/config';
import { openDatabase, type Database } from '../../src/storage/database';
import { migrate } from '../../src/storage/migrate';
import { enqueue } from '../../src/workflows/outbox/enqueue';
import { icsLines, icsOf, startSmtp, storeResource, waitFor } from './outboxSupport';

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

test('a server killed (SIGKILL) while it delivers a mail: after a restart the mail arrives', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'fhir-outbox-crash-'));
  const open = (): Promise<Database> => openDatabase({ databaseUrl: process.env.DATABASE_URL, dataDir: join(dataDir, 'pglite'), poolSize: 2 });
  // The first message stalls in DATA (accepted, never answered); later ones are accepted.
  const smtp = await startSmtp((n) => (n === 1 ? 'stall' : 'accept'));
  const port = await freePort();
  const id = `crash-${randomBytes(6).toString('hex')}`;
  const email = `dr.${id}@example.com`;
  const children: ChildProcess[] = [];
  let stderr = '';
  const start = () => {
    const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', 'src/main.ts'], {
      cwd: projectRoot(),
      env: { ...process.env, PORT: String(port), DATA_DIR: dataDir, LOG_LEVEL: 'warn', SMTP_URL: smtp.url, OUTBOX_POLL_MS: '100' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr!.on('data', (d) => (stderr += d));
    children.push(child);
    return { child, exited: new Promise<number | null>((r) => child.on('exit', (code, signal) => r(code ?? (signal ? -1 : null)))) };
  };

  try {
    // The notice, written as the booking workflow writes it (before the server runs: PGlite has one process).
    const db = await open();
    await migrate(db, join(projectRoot(), 'migrations'));
    const fhirBase = `http://localhost:${port}/fhir`;
    await storeResource(db, fhirBase, { resourceType: 'Practitioner', id: `pr-${id}`, telecom: [{ system: 'email', value: email }] });
    await storeResource(db, fhirBase, {
      resourceType: 'Appointment',
      id,
      status: 'pending',
      start: '2031-01-10T12:00:00Z',
      end: '2031-01-10T12:50:00Z',
      participant: [{ actor: { reference: `Practitioner/pr-${id}` }, status: 'needs-action' }],
    });
    await db.transaction((tx) => enqueue(tx, [{ kind: 'mail.booking-requested', payload: { appointment: id } }]));
    await db.close();

    const first = start();
    await waitFor('the first delivery to reach DATA', () => smtp.attempts >= 1, 60_000);
    first.child.kill('SIGKILL');
    expect(await first.exited).toBe(-1);
    expect(smtp.received).toEqual([]);

    const second = start();
    // The lease (30 s) of the killed server's claim must run out first.
    const mail = await waitFor('the mail after the restart', () => smtp.received.find((m) => m.to.includes(email)), 90_000);
    expect(icsLines(icsOf(mail)!)).toContain(`UID:${id}`);
    expect(mail.parsed.subject).toBe('Nova solicitação de teleconsulta');
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);

    const after = await open();
    try {
      const row = await after.query<{ state: string; attempts: number }>(`SELECT state, attempts FROM outbox WHERE payload->>'appointment' = $1`, [id]);
      expect(row.rows).toEqual([{ state: 'done', attempts: 2 }]);
    } finally {
      await after.close();
    }
  } catch (err) {
    throw new Error(`${(err as Error).message}\nserver stderr:\n${stderr}`);
  } finally {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await smtp.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}, 180_000);
