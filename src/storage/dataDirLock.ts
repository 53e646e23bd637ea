/**
 * An exclusive lock on the embedded database's directory. PGlite's own postmaster.pid always holds the same
 * fake PID, so PostgreSQL takes it for stale and a second server on one DATA_DIR starts too; two writers on
 * one data directory lose acknowledged writes and corrupt indexes. This lock file holds the real PID, host and
 * start time; a second server finds the holder alive and refuses to start, naming it. A lock left by a
 * process that died (kill -9, a power loss) names a PID that is gone, and the next start takes it over.
 *
 * Why not a library: proper-lockfile (the well-kept one) decides staleness by the lock's age and needs a
 * timer refreshing it; a PID checked for liveness is exact for one host and needs nothing running. The lock
 * does not guard a DATA_DIR shared between hosts (a network volume): the message says so.
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';

interface Holder {
  pid: number;
  host: string;
  since: string;
}

export interface DirLock {
  readonly path: string;
  release(): void;
}

/** Lock files this process holds (a second open in the same process is refused too). */
const held = new Set<string>();

function readHolder(path: string): Holder | undefined {
  try {
    const h = JSON.parse(readFileSync(path, 'utf8')) as Partial<Holder>;
    return typeof h.pid === 'number' && typeof h.host === 'string' && typeof h.since === 'string' ? (h as Holder) : undefined;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to another user
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether the holder is a live process other than a stale record of this one's PID (a restarted container is PID 1 again). */
function live(path: string, h: Holder): boolean {
  if (h.host !== hostname()) return true;
  if (h.pid === process.pid) return held.has(path);
  return alive(h.pid);
}

export class DataDirInUseError extends Error {
  constructor(dir: string, h: Holder) {
    const where = h.host === hostname() ? `process ${h.pid}` : `process ${h.pid} on host ${h.host}`;
    super(
      `The embedded database in ${dir} is in use by ${where} (since ${h.since}). ` +
        'Stop that server first, or give this one another DATA_DIR. ' +
        (h.host === hostname() ? '' : 'If that host is gone, remove the lock file after making sure no server uses the directory.'),
    );
    this.name = 'DataDirInUseError';
  }
}

/** Takes the lock `<dir>.lock`, or throws DataDirInUseError naming the holder. Released by `release()` or at exit. */
export function lockDataDir(dir: string): DirLock {
  const path = `${dir}.lock`;
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      try {
        writeSync(fd, JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() } satisfies Holder));
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      held.add(path);
      const release = () => {
        if (!held.delete(path)) return;
        try {
          if (readHolder(path)?.pid === process.pid) unlinkSync(path);
        } catch {
          // already gone
        }
      };
      process.once('exit', release);
      return {
        path,
        release() {
          process.off('exit', release);
          release();
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = readHolder(path);
    if (holder && live(path, holder)) throw new DataDirInUseError(dir, holder);
    takeOverStale(path, holder);
  }
  throw new Error(`Could not lock ${dir}: its lock file ${path} keeps changing`);
}

/**
 * Moves a stale lock out of the way. Two servers may find the same stale lock at once: the rename is atomic,
 * and a server that finds it renamed a lock other than the stale one it read puts it back.
 */
function takeOverStale(path: string, stale: Holder | undefined): void {
  const aside = `${path}.stale-${process.pid}-${Date.now()}`;
  try {
    renameSync(path, aside);
  } catch {
    return; // someone else moved it: try again
  }
  const moved = readHolder(aside);
  if (stale && moved && (moved.pid !== stale.pid || moved.since !== stale.since) && !existsSync(path)) {
    renameSync(aside, path);
    return;
  }
  try {
    unlinkSync(aside);
  } catch {
    // gone
  }
}
