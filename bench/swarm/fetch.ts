/**
 * Benchmark helper: one swarm download into a fresh directory, then finalize. Prints one JSON line
 * { ms, downloadMs, bytes, piecesFetched, maxRssKiB, cpuMs, path }. Args: JSON { manifest (path), holders, ticket, destDir, streams }.
 */
import { readFile } from 'node:fs/promises';
import { createLogger } from '../../src/logger.ts';
import { openPartialFile } from '../../src/transfer/pieces/partial-file.ts';
import { downloadFile } from '../../src/transfer/swarm/downloader.ts';

const input = JSON.parse(process.argv[2]) as { manifest: string; holders: Array<{ id: string; url: string; fingerprint: string }>; ticket: string; destDir: string; streams: number };
const manifest = JSON.parse(await readFile(input.manifest, 'utf8'));
const logger = createLogger({ level: 'warn' });
const t0 = performance.now();
const partial = await openPartialFile({ manifest, destDir: input.destDir, logger });
const result = await downloadFile({ manifest, holders: input.holders, ticket: input.ticket, partial, streams: input.streams, logger });
const tDownloaded = performance.now();
const path = await partial.finalize();
const t1 = performance.now();
console.log(JSON.stringify({
  ms: Math.round(t1 - t0),
  downloadMs: Math.round(tDownloaded - t0),
  bytes: result.bytesReceived,
  piecesFetched: result.piecesFetched,
  maxRssKiB: process.resourceUsage().maxRSS,
  cpuMs: Math.round((process.cpuUsage().user + process.cpuUsage().system) / 1000),
  path,
}));
