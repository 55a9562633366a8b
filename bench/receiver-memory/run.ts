/**
 * Issue 3 benchmark: an agent's memory while it receives a large file over loopback. A coordinator (`shoal
 * server`) and an agent (`shoal agent`) run as child processes; the file is shared, added to a group's
 * pending list, and the agent's /proc/PID/status (VmRSS, VmHWM) is read every 200 ms. Printed: RSS at 25, 50,
 * 75 and 100 % of the file and the peak, for the file and for a file a quarter its size (each received by a
 * fresh agent process), and the ratio of the peaks — flat means about 1. Asserts nothing.
 *
 *   node --import tsx bench/receiver-memory/run.ts        (env: SIZE_MIB, default 4096; KEEP=1 keeps the work dir)
 *
 * Data is a fast deterministic pseudo-random stream; every file is deleted afterwards. Free disk is checked
 * first (source, the coordinator's copy and the agent's copy coexist): the size shrinks, and says so, when
 * space is short. Every child is bounded in time and stopped by PID.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writePseudoRandomFile } from './pseudo-random-file.ts';

const MiB = 1024 * 1024;
const requestedMiB = Number(process.env.SIZE_MIB ?? 4096);
const keep = process.env.KEEP === '1';
const transferTimeoutMs = 20 * 60_000;
const repo = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const shoalBin = join(repo, 'bin', 'shoal.js');
const adminPassword = 'receiver-memory-admin-password';
const userPassword = 'receiver-memory-user-password';
const group = 'mem';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (m: string) => console.error(`[receiver-memory ${new Date().toISOString().slice(11, 19)}] ${m}`);

/** Runs the shoal CLI to completion (bounded); throws on a non-zero exit. */
function cli(home: string, args: string[], input = '', timeoutMs = 10 * 60_000): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const p = spawn(process.execPath, [shoalBin, ...args], { env: { ...process.env, SHOAL_HOME: home }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    p.stdin.on('error', () => {});
    p.stdin.end(input);
    p.on('close', (code) => {
      clearTimeout(t);
      if (code === 0) resolvePromise(out);
      else reject(new Error(`shoal ${args[0]} ${args[1] ?? ''} exited ${code}: ${err.trim() || out.trim()}`));
    });
  });
}

/** A REST call with curl (-k: loopback, the coordinator's own self-signed certificate). */
function api(url: string, token: string, method: string, path: string, json?: unknown): { status: number; body: unknown } {
  const args = ['-sS', '-k', '--max-time', '30', '-X', method, '-H', `authorization: Bearer ${token}`, '-w', '\n%{http_code}'];
  if (json !== undefined) args.push('-H', 'content-type: application/json', '-d', JSON.stringify(json));
  const r = spawnSync('curl', [...args, `${url}/api/v1${path}`], { encoding: 'utf8', timeout: 40_000 });
  const lines = (r.stdout ?? '').trimEnd().split('\n');
  const status = Number(lines.pop());
  try {
    return { status, body: JSON.parse(lines.join('\n')) };
  } catch {
    return { status, body: lines.join('\n') };
  }
}

/** Starts a long-lived shoal command; resolves once `ready(stdout)` returns a value. */
async function startLong<T>(args: string[], env: Record<string, string>, ready: (out: string) => T | undefined): Promise<{ proc: ChildProcess; value: T }> {
  const proc = spawn(process.execPath, [shoalBin, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(proc);
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  for (let i = 0; i < 600; i++) {
    const v = ready(out);
    if (v !== undefined) return { proc, value: v };
    if (proc.exitCode !== null) break;
    await sleep(100);
  }
  throw new Error(`shoal ${args[0]} did not start: ${err.trim() || out.trim()}`);
}

const children: ChildProcess[] = [];

async function stop(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  p.kill('SIGTERM');
  if ((await Promise.race([exited.then(() => 'ok'), sleep(10_000).then(() => 'late')])) === 'late') {
    p.kill('SIGKILL');
    await Promise.race([exited, sleep(3000)]);
  }
}

function memKiB(pid: number): { rss: number; hwm: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    return { rss: Number(/VmRSS:\s+(\d+)/.exec(s)?.[1] ?? 0), hwm: Number(/VmHWM:\s+(\d+)/.exec(s)?.[1] ?? 0) };
  } catch {
    return undefined;
  }
}

/** Bytes received so far: allocated blocks of the sparse partial file, or the whole size once final. */
function receivedBytes(dir: string, name: string, size: number): number {
  const final = join(dir, name);
  if (existsSync(final) && statSync(final).size === size) return size;
  let best = 0;
  try {
    for (const f of readdirSync(dir)) {
      if (f.startsWith(`.${name}.`) && f.endsWith('.shoal-part')) best = Math.max(best, Math.min(size - 1, statSync(join(dir, f)).blocks * 512));
    }
  } catch {
    // not created yet
  }
  return best;
}

interface Sample {
  t: number;
  fraction: number;
  rss: number;
  hwm: number;
}

interface Measure {
  mib: number;
  idleRssKiB: number;
  at: Array<{ pct: number; rss: number; hwm: number } | undefined>;
  peakKiB: number;
  seconds: number;
}

async function measure(work: string, coord: { url: string; fingerprint: string }, adminToken: string, mib: number, tag: string): Promise<Measure> {
  const size = mib * MiB;
  const name = `${tag}.bin`;
  const src = join(work, name);
  log(`${tag}: writing ${mib} MiB of pseudo-random data`);
  await writePseudoRandomFile(src, size, `receiver-memory-${mib}`);
  log(`${tag}: sharing it with \`shoal file share\``);
  await cli(join(work, 'admin-home'), ['file', 'share', group, src, '--json']);
  await rm(src, { force: true }); // the coordinator holds its copy now; keep the disk free
  const files = api(coord.url, adminToken, 'GET', `/groups/${group}/files`).body as { files: Array<{ id: string; name: string }> };
  const fileId = files.files.find((f) => f.name === name)?.id;
  if (!fileId) throw new Error(`${name} not in the catalogue`);

  // A fresh agent process per file, so its VmHWM belongs to this transfer alone.
  const dir = join(work, `agent-${tag}`);
  await mkdir(dir, { recursive: true });
  const home = join(work, 'rx-home');
  const { proc: agent } = await startLong(
    ['agent', '-d', join(dir, 'dl'), '--state-dir', join(dir, 'state'), '--listen', '127.0.0.1:0', '--name', `mem-${tag}`],
    { SHOAL_HOME: home },
    () => (api(coord.url, adminToken, 'GET', '/receivers').body as { receivers?: Array<{ name: string; listenUrl: string | null }> }).receivers?.some((r) => r.name === `mem-${tag}` && r.listenUrl) || undefined,
  );
  try {
    const pid = agent.pid!;
    await sleep(1000);
    const idle = memKiB(pid)?.rss ?? 0;
    const destDir = join(dir, 'dl', group);
    const samples: Sample[] = [];
    const t0 = Date.now();
    const add = api(coord.url, adminToken, 'POST', `/groups/${group}/pending`, { fileId });
    if (add.status !== 200) throw new Error(`pending add: ${add.status} ${JSON.stringify(add.body)}`);
    let doneAt = 0;
    while (Date.now() - t0 < transferTimeoutMs) {
      const m = memKiB(pid);
      if (!m) throw new Error('the agent exited during the transfer');
      const fraction = receivedBytes(destDir, name, size) / size;
      samples.push({ t: Date.now() - t0, fraction, rss: m.rss, hwm: m.hwm });
      if (fraction >= 1 && !doneAt) doneAt = Date.now();
      if (doneAt && Date.now() - doneAt > 1000) break; // a second more: the completion report and cleanup
      await sleep(200);
    }
    if (!doneAt) throw new Error(`${tag}: not received within ${transferTimeoutMs / 1000} s`);
    const at = [0.25, 0.5, 0.75, 1].map((p) => {
      const s = samples.find((x) => x.fraction >= p);
      return s && { pct: p * 100, rss: s.rss, hwm: s.hwm };
    });
    const peak = memKiB(pid)?.hwm ?? Math.max(...samples.map((s) => s.hwm));
    const seconds = (doneAt - t0) / 1000;
    log(`${tag}: received ${mib} MiB in ${seconds.toFixed(1)} s; peak RSS ${(peak / 1024).toFixed(0)} MiB`);
    return { mib, idleRssKiB: idle, at, peakKiB: peak, seconds };
  } finally {
    await stop(agent);
    await rm(join(dir, 'dl'), { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  for (const bin of ['curl']) {
    if (spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0) {
      console.log(`receiver-memory: ${bin} not found; not run.`);
      return;
    }
  }
  const work = await mkdtemp(join(tmpdir(), 'shoal-receiver-memory-'));
  // Source (deleted after sharing), the coordinator's copy and the agent's copy: about 2.1 × the size at once.
  const df = spawnSync('df', ['-Pk', work], { encoding: 'utf8' }).stdout.trim().split('\n').pop()!.split(/\s+/);
  const freeMiB = Math.floor(Number(df[3]) / 1024);
  let mib = requestedMiB;
  while (mib > 64 && mib * 2.5 + 2048 > freeMiB) mib = Math.floor(mib / 2);
  if (mib !== requestedMiB) log(`only ${freeMiB} MiB free under ${tmpdir()}: shrinking the file from ${requestedMiB} to ${mib} MiB`);
  const small = Math.max(1, Math.floor(mib / 4));
  const onSignal = () => void Promise.all(children.map(stop)).finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const dataDir = join(work, 'coord');
    const { value: coord } = await startLong(['server', '--data', dataDir, '--host', '127.0.0.1', '--port', '0', '--json', '--no-registration'], { SHOAL_ADMIN_PASSWORD: adminPassword }, (out) => {
      const m = /"url"\s*:\s*"([^"]+)"[\s\S]*?"fingerprint"\s*:\s*"([0-9A-F:]+)"/.exec(out);
      return m ? { url: m[1], fingerprint: m[2] } : undefined;
    });
    log(`coordinator at ${coord.url}; ${mib} MiB and ${small} MiB files (${freeMiB} MiB free on disk)`);
    const adminHome = join(work, 'admin-home');
    await cli(adminHome, ['login', coord.url, '--user', 'admin', '--fingerprint', coord.fingerprint, '--password-stdin'], `${adminPassword}\n`);
    const adminToken = (JSON.parse(await readFile(join(adminHome, 'config.json'), 'utf8')) as { token: string }).token;
    for (const [method, path, body] of [
      ['POST', '/groups', { name: group }],
      ['POST', '/users', { username: 'rx', password: userPassword }],
      ['PUT', `/groups/${group}/members/rx`, {}],
    ] as const) {
      const r = api(coord.url, adminToken, method, path, body);
      if (r.status !== 200) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    }
    await cli(join(work, 'rx-home'), ['login', coord.url, '--user', 'rx', '--fingerprint', coord.fingerprint, '--password-stdin'], `${userPassword}\n`);

    const quarter = await measure(work, coord, adminToken, small, 'quarter');
    const full = await measure(work, coord, adminToken, mib, 'full');

    const f = (k: number | undefined) => (k === undefined ? '-' : (k / 1024).toFixed(0));
    console.log(`\n## Agent memory while receiving over loopback (RSS in MiB, sampled every 200 ms)\n`);
    console.log('| file | idle | at 25 % | at 50 % | at 75 % | at 100 % | peak (VmHWM) | time (s) |');
    console.log('|---|---|---|---|---|---|---|---|');
    for (const m of [quarter, full]) {
      console.log(`| ${m.mib} MiB | ${f(m.idleRssKiB)} | ${m.at.map((a) => f(a?.rss)).join(' | ')} | ${f(m.peakKiB)} | ${m.seconds.toFixed(1)} |`);
    }
    console.log(`\npeak(${mib} MiB) / peak(${small} MiB) = ${(full.peakKiB / quarter.peakKiB).toFixed(2)} (flat ≈ 1; the file is ${(mib / small).toFixed(0)} × larger)`);
    if (mib !== requestedMiB) console.log(`(shrunk from ${requestedMiB} MiB: only ${freeMiB} MiB free)`);
  } catch (err) {
    console.log(`receiver-memory: failed: ${(err as Error).message}`);
    process.exitCode = 1;
  } finally {
    for (const c of children) await stop(c);
    if (keep) log(`kept ${work}`);
    else await rm(work, { recursive: true, force: true });
  }
}

await main();
