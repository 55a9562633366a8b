/**
 * "Many streams beat one": one source → one receiver, the same file fetched with 1, 4 and 8 streams.
 * Prints time, throughput and the ratio against one stream. Asserts nothing on time.
 *
 *   node --import tsx bench/swarm/streams.ts [--size-mib 256] [--piece-kib 4096] [--streams 1,4,8] [--runs 1] [--bed]
 *
 * Loopback by default (server and receiver in separate processes on 127.0.0.1). With --bed (root, and a bed
 * already up: `../shared/bench/testbed.sh up 1 [rate] [loss]`), the server runs in namespace `s` and the
 * receiver in `r1`; this script never builds or removes the bed, which other runs may be sharing.
 *
 * Measured on the shared 2-core box while other work loaded it (load average 8–14, so figures are noisy):
 *   bed, 256 MiB, sender capped at 400 Mbit/s, 1% loss: 1 stream 157 Mbit/s, 4 → 181 (1.15×), 8 → 217 (1.38×)
 *   loopback, 128 MiB: 1 stream 899 Mbit/s, 4 → 1284 (1.43×), 8 → 764 (CPU-bound, both ends on 2 cores)
 *   loopback, 1 GiB, 8 streams: peak receiver RSS 168 MiB (174 MiB for 128 MiB): flat in the file size.
 * 2026-12-02, 16:37 UTC, another host of the same kind, 256 MiB, one run each:
 *   bed, 400 Mbit/s, 1% loss: 1 stream 314 Mbit/s, 4 → 349 (1.11×), 8 → 338 (1.08×)
 *   loopback: 1 stream 1721 Mbit/s, 4 → 2523 (1.47×), 8 → 2053 (1.19×; CPU-bound, both ends on 2 cores)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { generateTicketKeys, publicKeyToRaw, signTicket } from '../../src/crypto/tickets.ts';
import { hashFile } from '../../src/transfer/pieces/hash-file.ts';
import { inBed, node, writeCert, writeRandomFile } from './bench-util.ts';

const args = process.argv.slice(2);
const opt = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1] : def;
};
const sizeMiB = Number(opt('size-mib', '256'));
const pieceKiB = Number(opt('piece-kib', '4096'));
const streamsList = opt('streams', '1,4,8').split(',').map(Number);
const runs = Math.max(1, Math.min(5, Number(opt('runs', '1'))));
const bed = args.includes('--bed');
const here = fileURLToPath(new URL('.', import.meta.url));
const runTimeoutMs = 10 * 60_000;

/** Runs a command to completion, bounded in time; returns its last stdout JSON line. */
function runJson(cmd: string[]): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd[0], cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (c: Buffer) => (out += c));
    p.stderr.on('data', (c: Buffer) => (err += c));
    const timer = setTimeout(() => p.kill('SIGKILL'), runTimeoutMs);
    p.on('exit', (code) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').pop() ?? '';
      if (code !== 0) reject(new Error(`${cmd.join(' ').slice(0, 200)} exited ${code}: ${err.slice(-1500)}`));
      else resolve(JSON.parse(line) as Record<string, unknown>);
    });
  });
}

/** Starts the server and resolves with its URL once it listens. */
function startServer(cmd: string[]): Promise<{ url: string; proc: ChildProcess }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(cmd[0], cmd.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error('server did not start'));
    }, 60_000);
    createInterface({ input: proc.stdout! }).once('line', (line) => {
      clearTimeout(timer);
      resolve({ url: (JSON.parse(line) as { url: string }).url, proc });
    });
    proc.on('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'shoal-bench-streams-'));
  let server: ChildProcess | null = null;
  try {
    const file = join(work, 'payload.bin');
    console.log(`writing ${sizeMiB} MiB of random data…`);
    await writeRandomFile(file, sizeMiB);
    const manifest = { name: 'payload.bin', ...(await hashFile(file, pieceKiB * 1024)) };
    const manifestPath = join(work, 'manifest.json');
    await writeFile(manifestPath, JSON.stringify(manifest));

    const host = bed ? '10.77.0.1' : '127.0.0.1';
    const { cert, key, fingerprint } = await writeCert(work, host);
    const keys = generateTicketKeys();
    const ticket = signTicket(keys.privateKey, { user: 'bench', sha256: manifest.sha256, expiresAt: Date.now() + 3600_000 });

    const serveInput = { file, manifest: manifestPath, cert, key, publicKey: publicKeyToRaw(keys.publicKey), host };
    const started = await startServer(inBed(bed ? 's' : null, [...node, join(here, 'serve.ts'), JSON.stringify(serveInput)]));
    server = started.proc;
    console.log(`server at ${started.url} (${bed ? 'bed: s → r1' : 'loopback'}), ${manifest.pieces.length} pieces of ${pieceKiB} KiB`);

    const results: Array<{ streams: number; ms: number; rss: number }> = [];
    for (const streams of streamsList) {
      for (let run = 0; run < runs; run++) {
        const destDir = join(work, `dest-${streams}-${run}`);
        const fetchInput = { manifest: manifestPath, holders: [{ id: 's', url: started.url, fingerprint }], ticket, destDir, streams };
        const r = await runJson(inBed(bed ? 'r1' : null, [...node, join(here, 'fetch.ts'), JSON.stringify(fetchInput)]));
        const ms = Number(r.ms);
        results.push({ streams, ms, rss: Number(r.maxRssKiB) });
        console.log(`  ${streams} stream(s), run ${run + 1}: ${(ms / 1000).toFixed(2)} s (transfer ${(Number(r.downloadMs) / 1000).toFixed(2)} s), ${((manifest.size * 8) / (ms / 1000) / 1e6).toFixed(0)} Mbit/s, peak RSS ${(Number(r.maxRssKiB) / 1024).toFixed(0)} MiB, receiver CPU ${(Number(r.cpuMs) / 1000).toFixed(2)} s`);
        await rm(destDir, { recursive: true, force: true });
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const base = median(results.filter((r) => r.streams === streamsList[0]).map((r) => r.ms));
    console.log(`\n| streams | median time | throughput | vs ${streamsList[0]} stream(s) |`);
    console.log('|---|---|---|---|');
    for (const streams of streamsList) {
      const m = median(results.filter((r) => r.streams === streams).map((r) => r.ms));
      console.log(`| ${streams} | ${(m / 1000).toFixed(2)} s | ${((manifest.size * 8) / (m / 1000) / 1e6).toFixed(0)} Mbit/s | ${(base / m).toFixed(2)}× |`);
    }
  } finally {
    if (server) {
      server.stdin?.end();
      server.kill('SIGTERM');
    }
    await rm(work, { recursive: true, force: true });
  }
}

await main();
