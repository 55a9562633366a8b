/**
 * Benchmark helper: one swarm receiver that also serves what it has verified (a member that becomes a holder
 * while downloading). Prints `{ url }` once listening, waits for one stdin line `{ holders }`, downloads,
 * prints `{ doneMs, bytesPerHolder, maxRssKiB, cpuMs }`, then keeps serving until stdin closes.
 * Args: JSON { manifest (path), destDir, cert, key (paths), publicKey, ticket, host, streams, uploadBytesPerSecond }.
 */
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { createLogger } from '../../src/logger.ts';
import { openPartialFile } from '../../src/transfer/pieces/partial-file.ts';
import { downloadFile, type Holder } from '../../src/transfer/swarm/downloader.ts';
import { createPieceServer } from '../../src/transfer/swarm/piece-server.ts';
import { createPieceRegistry } from '../../src/transfer/swarm/piece-source.ts';

const input = JSON.parse(process.argv[2]) as {
  manifest: string; destDir: string; cert: string; key: string; publicKey: string; ticket: string; host: string; streams: number;
  uploadBytesPerSecond?: number;
};
const manifest = JSON.parse(await readFile(input.manifest, 'utf8'));
const logger = createLogger({ level: 'warn' });
const partial = await openPartialFile({ manifest, destDir: input.destDir, logger });
const registry = createPieceRegistry();
registry.addPartial(partial);
const server = createPieceServer(
  { logger, source: registry, publicKey: input.publicKey },
  { host: input.host, port: 0, tls: { cert: await readFile(input.cert), key: await readFile(input.key) }, uploadBytesPerSecond: input.uploadBytesPerSecond },
);
const { url } = await server.start();
console.log(JSON.stringify({ url }));

const lines = createInterface({ input: process.stdin });
const first = await new Promise<string>((resolve) => lines.once('line', resolve));
const { holders } = JSON.parse(first) as { holders: Holder[] };
const t0 = performance.now();
const result = await downloadFile({ manifest, holders, ticket: input.ticket, partial, streams: input.streams, logger, haveRefreshMs: 500 });
await partial.finalize();
const usage = process.cpuUsage();
console.log(JSON.stringify({
  doneMs: Math.round(performance.now() - t0),
  bytesPerHolder: result.bytesPerHolder,
  maxRssKiB: process.resourceUsage().maxRSS,
  cpuMs: Math.round((usage.user + usage.system) / 1000),
}));
lines.on('close', () => {
  void server.stop().then(() => process.exit(0));
});
