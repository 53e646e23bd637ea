/** Starting, waiting for and stopping the two servers under test, each in its own process. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface RunningServer {
  name: string;
  url: string;
  logFile: string;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();

// Whatever way the bench ends, no server is left behind.
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

export interface StartOptions {
  name: string;
  command: string;
  args: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  port: number;
  /** Path answering 200 once the server can take traffic. */
  readyPath: string;
  logDir: string;
  timeoutMs?: number;
}

export async function startServer(options: StartOptions): Promise<RunningServer> {
  const url = `http://127.0.0.1:${options.port}`;
  const probe = await fetch(url + options.readyPath).catch(() => undefined);
  if (probe) throw new Error(`port ${options.port} is already in use; pass --port to pick another`);

  const logFile = join(options.logDir, `${options.name}.log`);
  const log = createWriteStream(logFile);
  const child = spawn(options.command, options.args, {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  let exited: string | undefined;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      running.delete(child);
      exited = signal ?? String(code);
      resolve();
    }),
  );

  const stop = async (): Promise<void> => {
    if (exited !== undefined) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exit;
    clearTimeout(timer);
  };

  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  for (;;) {
    if (exited !== undefined) {
      throw new Error(`${options.name} exited (${exited}) before it was ready; ${logFile}:\n${tail(logFile)}`);
    }
    const status = await fetch(url + options.readyPath, { signal: AbortSignal.timeout(2000) })
      .then((r) => r.status)
      .catch(() => 0);
    if (status === 200) return { name: options.name, url, logFile, stop };
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${options.name} not ready at ${url + options.readyPath} (last status ${status}); ${logFile}:\n${tail(logFile)}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}
