/**
 * Issue 3 swarm benchmark on the namespace bed: one coordinator (namespace `sws`, 10.77.0.1), one sharer
 * (swr9) and N = 8 receiver agents (swr1..swr8, 10.77.0.11…), EVERY host's uplink capped with tbf (RATE_MBIT, default 200). Measures the time
 * until all 8 agents hold a verified copy of a SIZE_MIB file (default 256) delivered by Shoal (pending add to
 * a group of 8 online members: they pull from the coordinator and from each other), against all 8 fetching
 * the same file from one nginx in `s` with curl on the same bed, and against size ÷ cap. Prints a table with
 * times and ratios; asserts nothing about time.
 *
 *   sudo node --import tsx bench/swarm-bed/run.ts
 *   env: SIZE_MIB (256), RATE_MBIT (200), RUN_TIMEOUT_S (300), MODES (swarm,multicast), KEEP=1 (keep work dir),
 *        HTTP=0 (skip nginx), CPU_PROF_DIR (V8 profiles of the coordinator and agent r1),
 *        AGENT_NODE_FLAGS (extra Node flags for agent r1, e.g. "--trace-gc"; its log stays with KEEP=1),
 *        STREAMS (the agents' `--streams`, default theirs)
 *
 * Shoal runs once per mode: `swarm` (coordinator started with SHOAL_MULTICAST=off: agents pull over HTTPS
 * from the coordinator and each other) and `multicast` (the default scheduler: one multicast send paced at
 * 90 % of the cap, swarm repair), each with a fresh coordinator and fresh agents.
 *
 * Needs root and `ip netns`; otherwise it says why and exits 0. Builds the bed with
 * ../shared/bench/testbed.sh up 9 under namespace names of its own (so the default s/b77/rK bed other runs use
 * is never touched), caps swr1..swr9 itself (testbed.sh caps only the sender), removes the caps
 * and takes the bed down at the end. Every child runs under `timeout`; only processes started here are
 * signalled, by PID. Traffic stays inside 10.77.0.0/24.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, openSync, closeSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writePseudoRandomFile } from '../receiver-memory/pseudo-random-file.ts';

const MiB = 1024 * 1024;
const sizeMiB = Number(process.env.SIZE_MIB ?? 256);
const rateMbit = Number(process.env.RATE_MBIT ?? 200);
const runTimeoutS = Number(process.env.RUN_TIMEOUT_S ?? 300);
const keep = process.env.KEEP === '1';
const modes = (process.env.MODES ?? 'swarm,multicast').split(',').filter((m): m is 'swarm' | 'multicast' => m === 'swarm' || m === 'multicast');
const N = 8;

const coordIp = '10.77.0.1';
const sharerNs = `swr${N + 1}`;
const coordPort = 8443;
const coordUrl = `https://${coordIp}:${coordPort}`;
const httpPort = 8080;
const group = 'bench';
const adminPassword = 'swarm-bed-admin-password';
const userPassword = 'swarm-bed-user-password';
const repo = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const shoalBin = join(repo, 'bin', 'shoal.js');
const testbed = process.env.TESTBED ?? resolve(repo, '..', 'shared', 'bench', 'testbed.sh');
const bytes = sizeMiB * MiB;
// The bed's namespaces get names of their own (testbed.sh TB_* knobs): the default s/b77/rK bed is shared
// with other benchmarks that rebuild and remove it at any time. Addresses inside are the usual 10.77.0.x.
const bedS = 'sws';
const bedBr = 'swb';
const bedR = 'swr';
const bedEnv = { TB_S_NS: bedS, TB_BR_NS: bedBr, TB_R_PREFIX: bedR, TB_STATE: '/tmp/tb-swarm-bed/state' };
const rns = (k: number) => `${bedR}${k}`;
const idealS = (bytes * 8) / (rateMbit * 1e6);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rip = (k: number) => `10.77.0.${10 + k}`;

function log(msg: string): void {
  console.error(`[swarm-bed ${new Date().toISOString().slice(11, 19)}] ${msg}`);
}

/** Runs a command to completion (bounded by `timeoutS` via timeout(1)); returns code and output. */
function run(argv: string[], opts: { input?: string; env?: Record<string, string>; timeoutS?: number } = {}): Promise<{ code: number; out: string; err: string }> {
  const full = ['timeout', '-k', '5', String(opts.timeoutS ?? 120), ...argv];
  return new Promise((resolvePromise) => {
    const p = spawn(full[0], full.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-8000)));
    p.stdin.on('error', () => {}); // a command that never reads its stdin may close it first (EPIPE)
    p.stdin.end(opts.input ?? '');
    p.on('error', (e) => resolvePromise({ code: -1, out, err: String(e) }));
    p.on('close', (code) => resolvePromise({ code: code ?? -1, out, err }));
  });
}

function must(r: { code: number; out: string; err: string }, what: string): string {
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}): ${r.err.trim() || r.out.trim()}`);
  return r.out;
}

const nsArgv = (ns: string, argv: string[]) => ['ip', 'netns', 'exec', ns, ...argv];
const shoalArgv = (args: string[]) => [process.execPath, shoalBin, ...args];
// CPU_PROF_DIR=dir: the coordinator and agent r1 write V8 CPU profiles there (at exit) to see where time goes.
const cpuProfDir = process.env.CPU_PROF_DIR;
const profiledArgv = (args: string[]) => (cpuProfDir ? [process.execPath, '--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`, shoalBin, ...args] : shoalArgv(args));
// AGENT_NODE_FLAGS="--trace-gc ...": extra Node flags for agent r1 (its log is in the kept work dir, KEEP=1).
const agentFlags = (process.env.AGENT_NODE_FLAGS ?? '').split(' ').filter(Boolean);
// STREAMS=n: every agent runs with `--streams n` (connections per holder).
const agentStreams = process.env.STREAMS ? ['--streams', process.env.STREAMS] : [];
const firstAgentArgv = (args: string[]) => (agentFlags.length ? [process.execPath, ...agentFlags, shoalBin, ...args] : profiledArgv(args));

/** Starts a long-lived command in a namespace under timeout(1), output to `logFile`. */
function startIn(ns: string, argv: string[], logFile: string, env: Record<string, string> = {}): ChildProcess {
  const fd = openSync(logFile, 'a');
  const p = spawn('ip', ['netns', 'exec', ns, 'timeout', '-k', '5', String(runTimeoutS + 120), ...argv], {
    stdio: ['ignore', fd, fd],
    env: { ...process.env, ...env },
  });
  closeSync(fd);
  started.push(p);
  return p;
}

const started: ChildProcess[] = [];

/** PIDs of `pid` and its descendants (from /proc, so only processes this script started). */
function tree(pid: number): number[] {
  const out = [pid];
  try {
    for (const c of readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)) out.push(...tree(Number(c)));
  } catch {
    // gone already
  }
  return out;
}

/** SIGTERM to a child we started (timeout forwards it), then SIGKILL to it and its descendants, by PID. */
async function stop(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null || !p.pid) return;
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  const pids = tree(p.pid);
  p.kill('SIGTERM');
  const t = await Promise.race([exited.then(() => 'ok'), sleep(8000).then(() => 'late')]);
  if (t === 'late') {
    for (const pid of pids.reverse()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await Promise.race([exited, sleep(3000)]);
  }
}

/** Coordinator REST call from the sharer's namespace with curl (fast to start; -k: the bed is closed). */
async function api(token: string, method: string, path: string, json?: unknown): Promise<{ status: number; body: unknown }> {
  const args = ['curl', '-sS', '-k', '--max-time', '30', '-X', method, '-H', `authorization: Bearer ${token}`, '-w', '\n%{http_code}'];
  if (json !== undefined) args.push('-H', 'content-type: application/json', '-d', JSON.stringify(json));
  args.push(`${coordUrl}/api/v1${path}`);
  const r = await run(nsArgv(sharerNs, args), { timeoutS: 40 });
  const lines = r.out.trimEnd().split('\n');
  const status = Number(lines.pop());
  const text = lines.join('\n');
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status, body };
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * MiB })) h.update(chunk as Buffer);
  return h.digest('hex');
}

function tbfArgs(): string[] {
  const burst = Math.max(16000, Math.round(rateMbit * 125)); // 1 ms at the rate, as testbed.sh does for s
  return ['tbf', 'rate', `${rateMbit}mbit`, 'burst', String(burst), 'latency', '50ms'];
}

/** Bytes sent on each host's bed link (tb0 tx), for the table. */
async function txBytes(ns: string): Promise<number> {
  const r = await run(nsArgv(ns, ['cat', '/sys/class/net/tb0/statistics/tx_bytes']), { timeoutS: 10 });
  return Number(r.out.trim()) || 0;
}

/** "swarm 8, none 1": how many pending entries each transport delivered (none: not delivered, or the sharer's own). */
function transports(rows: Array<{ transport: string | null }>): string {
  const n = new Map<string, number>();
  for (const r of rows) {
    const t = r.transport ?? 'none';
    n.set(t, (n.get(t) ?? 0) + 1);
  }
  return [...n].map(([t, k]) => `${t} ${k}`).join(', ');
}

/** Host CPU counters (/proc/stat first line): busy and softirq ticks, and the total. */
function cpuTicks(): { busy: number; softirq: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3] - f[4], softirq: f[6], total };
}

/** CPU seconds (user + system) used so far by the processes under `roots` (less noisy than wall time on a
 * shared host: what Shoal itself spent). */
function treeCpuSeconds(roots: ChildProcess[]): { user: number; sys: number; faults: number } {
  let user = 0;
  let sys = 0;
  let faults = 0;
  for (const r of roots) {
    if (!r.pid) continue;
    for (const pid of tree(r.pid)) {
      try {
        const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
        faults += Number(f[7]);
        user += Number(f[11]);
        sys += Number(f[12]);
      } catch {
        // gone already
      }
    }
  }
  return { user: user / 100, sys: sys / 100, faults };
}

/** Cores in use between two cpuTicks() readings (the whole host: every tenant and the kernel's bridging). */
function coresBetween(a: ReturnType<typeof cpuTicks>, b: ReturnType<typeof cpuTicks>): string {
  const n = cpus().length;
  const dt = b.total - a.total || 1;
  return `host busy ${(((b.busy - a.busy) / dt) * n).toFixed(2)} of ${n} cores (softirq ${(((b.softirq - a.softirq) / dt) * n).toFixed(2)})`;
}

interface Outcome {
  seconds: number;
  ok: number;
  note: string;
}

type Mode = 'swarm' | 'multicast';

/** One Shoal delivery to the 8 agents. `swarm`: the coordinator's multicast is off (SHOAL_MULTICAST=off),
 * so the agents pull pieces over HTTPS from it and from each other; `multicast`: the default scheduler,
 * which sends a group delivery once by multicast (paced at 90 % of the cap) when several members are online. */
async function shoalRun(top: string, payload: string, expectedSha: string, mode: Mode): Promise<Outcome> {
  const work = join(top, mode);
  for (let k = 1; k <= N; k++) await mkdir(join(work, `r${k}`), { recursive: true });
  const coordDir = join(work, 'coord');
  await mkdir(coordDir, { recursive: true });
  const coordLog = join(work, 'coordinator.log');
  const coord = startIn(bedS, profiledArgv(['server', '--data', coordDir, '--host', coordIp, '--port', String(coordPort), '--json', '--no-registration']), coordLog, {
    SHOAL_ADMIN_PASSWORD: adminPassword,
    SHOAL_MULTICAST: mode === 'swarm' ? 'off' : 'on',
    SHOAL_MULTICAST_RATE_MBIT: String(Math.round(rateMbit * 0.9)),
  });
  // The --json result is the first thing on stdout (the log file); wait for it, bounded.
  let fingerprint = '';
  for (let i = 0; i < 300 && !fingerprint; i++) {
    await sleep(200);
    if (coord.exitCode !== null) throw new Error(`coordinator exited: ${readFileSync(coordLog, 'utf8').slice(-2000)}`);
    const m = /"fingerprint"\s*:\s*"([0-9A-F:]+)"/.exec(readFileSync(coordLog, 'utf8'));
    if (m) fingerprint = m[1];
  }
  if (!fingerprint) throw new Error('coordinator did not report its fingerprint within 60 s');
  log(`coordinator up in s at ${coordUrl}, fingerprint ${fingerprint.slice(0, 23)}…`);

  // The sharer logs in with the CLI (pinning the fingerprint), then sets up users and a group.
  const sharerHome = join(work, 'sharer');
  must(await run(nsArgv(sharerNs, shoalArgv(['login', coordUrl, '--user', 'admin', '--fingerprint', fingerprint, '--password-stdin'])), { input: `${adminPassword}\n`, env: { SHOAL_HOME: sharerHome } }), 'sharer login');
  const adminToken = (JSON.parse(await readFile(join(sharerHome, 'config.json'), 'utf8')) as { token: string }).token;
  const g = await api(adminToken, 'POST', '/groups', { name: group });
  if (g.status !== 200) throw new Error(`create group: ${g.status} ${JSON.stringify(g.body)}`);
  for (let k = 1; k <= N; k++) {
    const u = await api(adminToken, 'POST', '/users', { username: `u${k}`, password: userPassword });
    if (u.status !== 200) throw new Error(`create user u${k}: ${u.status} ${JSON.stringify(u.body)}`);
    const m = await api(adminToken, 'PUT', `/groups/${group}/members/u${k}`, {});
    if (m.status !== 200) throw new Error(`add u${k}: ${m.status} ${JSON.stringify(m.body)}`);
  }
  log(`sharing ${sizeMiB} MiB from ${sharerNs} with \`shoal file share\` (not timed)`);
  const shareStart = Date.now();
  must(await run(nsArgv(sharerNs, shoalArgv(['file', 'share', group, payload, '--json'])), { env: { SHOAL_HOME: sharerHome }, timeoutS: runTimeoutS }), 'file share');
  log(`shared in ${((Date.now() - shareStart) / 1000).toFixed(1)} s`);
  const files = await api(adminToken, 'GET', `/groups/${group}/files`);
  const fileId = (files.body as { files: Array<{ id: string; name: string }> }).files.find((f) => f.name === 'payload.bin')?.id;
  if (!fileId) throw new Error(`shared file not in the catalogue: ${JSON.stringify(files.body)}`);

  // Receivers: log in with the CLI in their namespace, then run `shoal agent` listening on their bed address.
  await Promise.all(
    Array.from({ length: N }, async (_, i) => {
      const k = i + 1;
      const home = join(work, `r${k}`, 'home');
      must(
        await run(nsArgv(rns(k), shoalArgv(['login', coordUrl, '--user', `u${k}`, '--fingerprint', fingerprint, '--password-stdin'])), { input: `${userPassword}\n`, env: { SHOAL_HOME: home } }),
        `login u${k}`,
      );
    }),
  );
  const agents: ChildProcess[] = [];
  for (let k = 1; k <= N; k++) {
    const dir = join(work, `r${k}`);
    agents.push(
      startIn(rns(k), (k === 1 ? firstAgentArgv : shoalArgv)(['agent', '-d', join(dir, 'dl'), '--state-dir', join(dir, 'state'), '--listen', `${rip(k)}:0`, '--name', `r${k}`, ...agentStreams]), join(work, `agent-r${k}.log`), {
        SHOAL_HOME: join(dir, 'home'),
      }),
    );
  }
  try {
    let online: Array<{ username: string; listenUrl: string | null }> = [];
    for (let i = 0; i < 120; i++) {
      const r = await api(adminToken, 'GET', '/receivers');
      online = ((r.body as { receivers?: Array<{ username: string; listenUrl: string | null }> }).receivers ?? []).filter((x) => x.listenUrl);
      if (online.length >= N) break;
      await sleep(500);
    }
    if (online.length < N) throw new Error(`only ${online.length} of ${N} agents online with a piece server`);
    log(`agents online: ${online.map((o) => `${o.username}→${o.listenUrl}`).join(' ')}`);

    const tx0 = await Promise.all([bedS, ...Array.from({ length: N }, (_, i) => rns(i + 1))].map(txBytes));
    const c0 = cpuTicks();
    const cpu0 = { coord: treeCpuSeconds([coord]), agents: treeCpuSeconds(agents) };
    const t0 = performance.now();
    const add = await api(adminToken, 'POST', `/groups/${group}/pending`, { fileId });
    if (add.status !== 200) throw new Error(`pending add: ${add.status} ${JSON.stringify(add.body)}`);
    const doneAt = new Map<number, number>();
    const deadline = Date.now() + runTimeoutS * 1000;
    while (doneAt.size < N && Date.now() < deadline) {
      for (let k = 1; k <= N; k++) {
        if (doneAt.has(k)) continue;
        const f = join(work, `r${k}`, 'dl', group, 'payload.bin');
        if (existsSync(f) && statSync(f).size === bytes) doneAt.set(k, (performance.now() - t0) / 1000);
      }
      await sleep(100);
    }
    const seconds = doneAt.size === N ? Math.max(...doneAt.values()) : NaN;
    const cores = coresBetween(c0, cpuTicks());
    const cpu1 = { coord: treeCpuSeconds([coord]), agents: treeCpuSeconds(agents) };
    const us = (a: ReturnType<typeof treeCpuSeconds>, b: ReturnType<typeof treeCpuSeconds>) =>
      `${(b.user - a.user).toFixed(1)} user + ${(b.sys - a.sys).toFixed(1)} sys (${((b.faults - a.faults) / 1000).toFixed(0)}k page faults)`;
    const cpu = `CPU s: coordinator ${us(cpu0.coord, cpu1.coord)}, agents ${us(cpu0.agents, cpu1.agents)}`;
    const tx1 = await Promise.all([bedS, ...Array.from({ length: N }, (_, i) => rns(i + 1))].map(txBytes));
    const sent = tx1.map((v, i) => v - tx0[i]);
    log(`per receiver (s): ${[...doneAt.entries()].sort((a, b) => a[0] - b[0]).map(([k, t]) => `r${k}=${t.toFixed(1)}`).join(' ')}`);
    log(`sent on the bed (MiB): s=${(sent[0] / MiB).toFixed(0)} receivers=${sent.slice(1).map((v) => (v / MiB).toFixed(0)).join('/')}`);
    // What the coordinator recorded, then every copy hashed (outside the timing).
    const pend = await api(adminToken, 'GET', `/groups/${group}/pending`);
    const rows = (pend.body as { entries?: Array<{ username: string; state: string; transport: string | null }> }).entries ?? [];
    const delivered = rows.filter((r) => r.state === 'delivered').length;
    let ok = 0;
    for (let k = 1; k <= N; k++) {
      const f = join(work, `r${k}`, 'dl', group, 'payload.bin');
      if (existsSync(f) && (await sha256File(f)) === expectedSha) ok++;
    }
    return { seconds, ok, note: `coordinator says ${delivered}/${N} delivered (${transports(rows)}); coordinator sent ${(sent[0] / MiB).toFixed(0)} MiB, receivers ${(sent.slice(1).reduce((a, b) => a + b, 0) / MiB).toFixed(0)} MiB; ${cpu}; ${cores}` };
  } finally {
    for (const a of agents) await stop(a);
    await stop(coord);
    if (!keep) await rm(work, { recursive: true, force: true });
  }
}

async function httpRun(work: string, payloadDir: string, expectedSha: string): Promise<Outcome> {
  const dir = join(work, 'nginx');
  await mkdir(join(dir, 'tmp'), { recursive: true });
  await writeFile(
    join(dir, 'nginx.conf'),
    `worker_processes 2;
daemon off;
master_process on;
user root;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  client_body_temp_path ${dir}/tmp; proxy_temp_path ${dir}/tmp; fastcgi_temp_path ${dir}/tmp; uwsgi_temp_path ${dir}/tmp; scgi_temp_path ${dir}/tmp;
  types { application/octet-stream bin; }
  server { listen ${coordIp}:${httpPort}; root ${payloadDir}; }
}
`,
  );
  const nginx = startIn(bedS, ['nginx', '-e', join(dir, 'error.log'), '-p', dir, '-c', join(dir, 'nginx.conf')], join(work, 'nginx.log'));
  try {
    let up = false;
    for (let i = 0; i < 100 && !up; i++) {
      up = (await run(nsArgv(rns(1), ['curl', '-s', '-o', '/dev/null', '--max-time', '1', '-r', '0-0', `http://${coordIp}:${httpPort}/payload.bin`]), { timeoutS: 5 })).code === 0;
      if (!up) await sleep(100);
    }
    if (!up) throw new Error('nginx did not answer');
    const c0 = cpuTicks();
    const t0 = performance.now();
    const times = await Promise.all(
      Array.from({ length: N }, async (_, i) => {
        const k = i + 1;
        const out = join(work, `r${k}`, 'http.bin');
        const r = await run(nsArgv(rns(k), ['curl', '-sS', '--fail', '--max-time', String(runTimeoutS), '-o', out, `http://${coordIp}:${httpPort}/payload.bin`]), { timeoutS: runTimeoutS + 10 });
        return r.code === 0 ? (performance.now() - t0) / 1000 : NaN;
      }),
    );
    const seconds = Math.max(...times);
    const cores = coresBetween(c0, cpuTicks());
    let ok = 0;
    for (let k = 1; k <= N; k++) {
      const f = join(work, `r${k}`, 'http.bin');
      if (existsSync(f) && (await sha256File(f)) === expectedSha) ok++;
      await rm(f, { force: true });
    }
    return { seconds, ok, note: `per curl (s): ${times.map((t) => t.toFixed(1)).join(' ')}; ${cores}` };
  } finally {
    await stop(nginx);
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.log('swarm-bed: needs root (network namespaces and tc); not run.');
    return;
  }
  for (const [bin, args] of [['ip', ['netns', 'list']], ['tc', ['-V']], ['nginx', ['-v']], ['curl', ['--version']]] as const) {
    const r = spawnSync(bin, [...args], { encoding: 'utf8' });
    if (r.error || r.status !== 0) {
      console.log(`swarm-bed: \`${bin} ${args.join(' ')}\` is not available here (${r.error?.message ?? r.stderr.trim()}); not run.`);
      return;
    }
  }
  if (!existsSync(testbed)) {
    console.log(`swarm-bed: ${testbed} not found; not run.`);
    return;
  }
  const mine = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
  if (new RegExp(`^(${bedS}|${bedBr}|${bedR}\\d+)\\b`, 'm').test(mine)) {
    if (spawnSync('pgrep', ['-f', 'bench/swarm-bed/run.ts'], { encoding: 'utf8' }).stdout.trim().split('\n').length > 1) {
      console.log('swarm-bed: another run of this benchmark is using its bed; not run.');
      return;
    }
    log('leftover namespaces of an earlier run of this benchmark: rebuilding them');
  }

  const work = await mkdtemp(join(tmpdir(), 'shoal-swarm-bed-'));
  const payloadDir = join(work, 'src');
  await mkdir(payloadDir);
  for (let k = 1; k <= N; k++) await mkdir(join(work, `r${k}`));
  const payload = join(payloadDir, 'payload.bin');
  let bedUp = false;
  const capped: string[] = [];
  const onSignal = () => {
    log('interrupted; cleaning up');
    void Promise.all(started.map(stop)).finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    log(`${sizeMiB} MiB, ${N} receivers, every uplink capped at ${rateMbit} Mbit/s; work dir ${work}`);
    await writePseudoRandomFile(payload, bytes, `swarm-bed-${sizeMiB}`);
    const expectedSha = await sha256File(payload);

    must(await run([testbed, 'up', String(N + 1), String(rateMbit), '0'], { timeoutS: 120, env: bedEnv }), 'testbed.sh up');
    bedUp = true;
    for (let k = 1; k <= N + 1; k++) {
      must(await run(nsArgv(rns(k), ['tc', 'qdisc', 'replace', 'dev', 'tb0', 'root', ...tbfArgs()]), { timeoutS: 20 }), `cap r${k}`);
      capped.push(rns(k));
    }
    // The multicast sender's 16-datagram segmentation-offload messages are cut on the coordinator's side of
    // its link, as a NIC does, not carried whole through the bridge (see bench/multicast/bed-run.ts).
    must(await run(nsArgv(bedS, ['ethtool', '-K', 'tb0', 'tx-udp-segmentation', 'off']), { timeoutS: 20 }), 'segmentation at the coordinator');
    log(`bed up: ${bedS} (coordinator, nginx) + ${rns(1)}..${rns(N)} (agents, curl) + ${sharerNs} (sharer), tbf ${rateMbit} Mbit/s on every tb0 egress`);

    const shoal: Partial<Record<Mode, Outcome>> = {};
    for (const mode of modes) {
      try {
        shoal[mode] = await shoalRun(work, payload, expectedSha, mode);
      } catch (err) {
        log(`shoal ${mode} failed: ${(err as Error).message}`);
        for (const f of ['coordinator.log', ...Array.from({ length: N }, (_, i) => `agent-r${i + 1}.log`)]) {
          const path = join(work, mode, f);
          if (existsSync(path)) console.error(`--- ${mode}/${f} (tail)\n${readFileSync(path, 'utf8').slice(-1500)}`);
        }
        shoal[mode] = { seconds: NaN, ok: 0, note: `failed: ${(err as Error).message}` };
      }
      log(`shoal ${mode}: ${shoal[mode]!.seconds.toFixed(2)} s, ${shoal[mode]!.ok}/${N} verified; ${shoal[mode]!.note}`);
    }
    // HTTP=0 skips the nginx case (iterating on Shoal alone; its figure changes only with the bed).
    const http: Outcome = process.env.HTTP === '0' ? { seconds: NaN, ok: 0, note: 'skipped (HTTP=0)' } : await httpRun(work, payloadDir, expectedSha);
    log(`http: ${http.seconds.toFixed(2)} s, ${http.ok}/${N} verified; ${http.note}`);

    const row = (name: string, s: number, ok: string) =>
      `| ${name} | ${Number.isFinite(s) ? s.toFixed(2) : 'failed'} | ${Number.isFinite(s) ? (s / idealS).toFixed(2) : '-'} | ${ok} |`;
    console.log(`\n## Swarm on the bed: ${sizeMiB} MiB to ${N} receivers, every uplink ${rateMbit} Mbit/s (tbf)\n`);
    console.log('| case | time (s) | × size/cap | verified copies |');
    console.log('|---|---|---|---|');
    console.log(row('size ÷ cap (ideal)', idealS, '-'));
    for (const mode of modes) console.log(row(`Shoal ${mode} (coordinator + 8 agents, pending add)`, shoal[mode]!.seconds, `${shoal[mode]!.ok}/${N}`));
    console.log(row('nginx in s → 8 × curl', http.seconds, `${http.ok}/${N}`));
    console.log('');
    for (const mode of modes) {
      const o = shoal[mode]!;
      console.log(`Shoal ${mode} / ideal = ${(o.seconds / idealS).toFixed(2)} (goal ≤ 2.5); nginx / Shoal ${mode} = ${(http.seconds / o.seconds).toFixed(2)}; ${o.note}`);
    }
    console.log(`nginx / ideal = ${(http.seconds / idealS).toFixed(2)} (≈ ${N} expected)`);
    console.log(`nginx: ${http.note}`);
  } catch (err) {
    console.log(`swarm-bed: failed: ${(err as Error).message}`);
    process.exitCode = 1;
  } finally {
    for (const p of started) await stop(p);
    for (const ns of capped) await run(nsArgv(ns, ['tc', 'qdisc', 'del', 'dev', 'tb0', 'root']), { timeoutS: 20 });
    if (bedUp) {
      const d = await run([testbed, 'down'], { timeoutS: 120, env: bedEnv });
      if (d.code !== 0) log(`testbed.sh down: exit ${d.code} ${d.err.trim()}`);
    }
    if (keep) log(`kept ${work}`);
    else await rm(work, { recursive: true, force: true });
  }
}

await main();
