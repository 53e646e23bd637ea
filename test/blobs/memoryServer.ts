/**
 * The server of the memory test, in a process of its own (jest's heap would drown the measure): starts the app,
 * prints `READY <baseUrl> <token>`, samples its RSS and its live memory (V8 heap used plus Buffers outside it)
 * every 5 ms, and on a line `MARK` on stdin prints `RSS <rss> <live>` now, on `PEAK` the highest of each since.
 */
import { createInterface } from 'node:readline';
import { startServer } from '../helpers/server';

async function main(): Promise<void> {
  const s = await startServer({ DATA_DIR: process.argv[2], MAX_UPLOAD_MB: '60' });
  const token = await s.adminToken();
  let peak = 0;
  let peakLive = 0;
  const live = () => {
    const m = process.memoryUsage();
    return m.heapUsed + m.external;
  };
  setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
    peakLive = Math.max(peakLive, live());
  }, 5).unref();
  console.log(`READY ${s.baseUrl} ${token}`);
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === 'MARK') {
      (globalThis as { gc?: () => void }).gc?.();
      const rss = process.memoryUsage.rss();
      peak = rss;
      peakLive = live();
      console.log(`RSS ${rss} ${peakLive}`);
    } else if (line === 'PEAK') console.log(`PEAK ${Math.max(peak, process.memoryUsage.rss())} ${Math.max(peakLive, live())}`);
    else if (line === 'EXIT') break;
  }
  await s.close();
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
