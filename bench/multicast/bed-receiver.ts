/**
 * One multicast receiver on the namespace bed: `node --import tsx bed-receiver.ts CONFIG.json K`, run inside
 * namespace rK. Serves a tiny HTTP control channel on its bed address (GET /status?pass=N, GET /bye) that the
 * bed sender uses instead of the agent's WebSocket. Prints one JSON line when listening ({"ready":K}) and one
 * when the file is verified and in place ({"done":K,...}); exits on /bye or after the config's timeout, or
 * as soon as the file is in place when a third argument `exit` is given (the peers.sh "cmd" adapter waits
 * for receivers to exit; the sender then counts a receiver that no longer answers as done).
 */
import http from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { join } from 'node:path';
import { readdir, readFile } from 'node:fs/promises';
import { createLogger } from '../../src/logger.ts';
import { openPartialFile } from '../../src/transfer/pieces/partial-file.ts';
import { createMulticastReceiver } from '../../src/transfer/multicast/receiver.ts';
import { readBedConfig, receiverIp } from './bed-config.ts';

const [configPath, kArg, mode] = process.argv.slice(2);
const c = await readBedConfig(configPath);
const k = Number(kArg);
const ip = receiverIp(c, k);
const logger = createLogger({ level: (process.env.SHOAL_LOG as 'info' | undefined) ?? 'warn', component: `bed:r${k}` });
const dir = join(c.destRoot, `r${k}`);
const partial = await openPartialFile({ manifest: c.manifest, destDir: dir, logger, durable: false });
const receiver = createMulticastReceiver({ logger, partial }, {
  address: c.group, port: c.port, interface: ip, key: Buffer.from(c.keyHex, 'hex'), transferId: c.transferId,
  manifest: c.manifest, chunkSize: c.chunkSize, receiverId: `r${k}`,
  ...(process.env.SHOAL_BED_RCVBUF_MIB ? { recvBufferBytes: Number(process.env.SHOAL_BED_RCVBUF_MIB) * 1024 * 1024 } : {}),
});

/** The namespace's UDP counters (/proc/net/snmp is per network namespace): datagrams the kernel dropped because
 * this socket's buffer was full are RcvbufErrors, a loss the bed did not cause. */
async function udpCounters(): Promise<Record<string, number>> {
  const lines = (await readFile('/proc/net/snmp', 'utf8')).split('\n').filter((l) => l.startsWith('Udp:'));
  const names = lines[0]?.split(/\s+/).slice(1) ?? [];
  const values = lines[1]?.split(/\s+/).slice(1).map(Number) ?? [];
  return Object.fromEntries(names.map((n, i) => [n, values[i] ?? 0]));
}
const udpAtStart = await udpCounters();
await receiver.start();
const t0 = Date.now();
let finished: Promise<void> | null = null;

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://x');
  if (url.pathname === '/status') {
    const pass = Number(url.searchParams.get('pass') ?? '0');
    void receiver.waitPassEnd(pass, 1500).then(() => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(receiver.status()));
    });
    return;
  }
  if (url.pathname === '/bye') {
    // The sender is done; the last chunks may still be on their way to disk and being verified.
    res.end('bye');
    void Promise.race([finished, new Promise((r) => setTimeout(r, 60_000))]).then(() => shutdown(0));
    return;
  }
  res.statusCode = 404;
  res.end();
});
await new Promise<void>((resolve) => server.listen(c.controlPort, ip, resolve));
console.log(JSON.stringify({ ready: k, recvBufferBytes: receiver.stats.recvBufferBytes }));
// CPU of the transfer itself: from listening to the verified copy (start-up and module loading excluded).
const cpuAtReady = process.cpuUsage();
const faultsAtReady = process.resourceUsage().minorPageFault;
// When the kernel dropped datagrams (ms since ready, count), and how long the event loop was held up: a
// receiver that does not read for a third of a second at full rate overflows even a 16 MiB buffer.
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();
const dropTimeline: Array<[number, number]> = [];
let dropsSeen = udpAtStart.RcvbufErrors ?? 0;
const dropSampler = setInterval(() => {
  void udpCounters().then((u) => {
    const now = u.RcvbufErrors ?? 0;
    if (now > dropsSeen && dropTimeline.length < 100) dropTimeline.push([Date.now() - t0, now - dropsSeen]);
    dropsSeen = now;
  }, () => undefined);
}, 100);

finished = receiver.whenComplete().then(async () => {
  const path = await partial.finalize();
  const left = (await readdir(dir)).filter((n) => n.includes('.shoal-'));
  const udp = await udpCounters();
  const kernelDrops = (udp.RcvbufErrors ?? 0) - (udpAtStart.RcvbufErrors ?? 0);
  clearInterval(dropSampler);
  loopDelay.disable();
  const loop = { maxMs: Math.round(loopDelay.max / 1e6), p99Ms: Math.round(loopDelay.percentile(99) / 1e6) };
  console.log(JSON.stringify({ done: k, at: Date.now(), ms: Date.now() - t0, path, partialsLeft: left, stats: receiver.stats, kernelDrops, dropTimeline, loop, cpu: process.cpuUsage(cpuAtReady), cpuTotal: process.cpuUsage(), pageFaults: process.resourceUsage().minorPageFault - faultsAtReady, directMiB: Math.round(partial.bytesWrittenDirect / 1048576) }));
  if (mode === 'exit') setImmediate(() => void shutdown(0));
}, () => undefined);

const timer = setTimeout(() => void shutdown(2), c.timeoutMs);
async function shutdown(code: number): Promise<void> {
  clearTimeout(timer);
  clearInterval(dropSampler);
  server.close();
  await receiver.stop();
  await finished;
  if (!partial.complete) {
    console.log(JSON.stringify({ failed: k, status: receiver.status().missing.length, stats: receiver.stats }));
    await partial.close().catch(() => undefined);
  }
  process.exit(code);
}
