/**
 * Runs one Shoal multicast transfer on the namespace bed (../shared/bench/testbed.sh): receivers in rK,
 * the sender in s, and returns what happened. Used by test/multicast/testbed.test.ts and bench/multicast/run.ts.
 * Every process is bounded by a timeout and ended by its PID.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import type { Manifest } from '../../src/protocol/api.ts';
import type { SendResult } from '../../src/transfer/multicast/sender.ts';
import type { BedConfig } from './bed-config.ts';

const run = promisify(execFile);
const here = new URL('.', import.meta.url).pathname;
const root = resolve(here, '../..');

/** Path of the bed script (SHOAL_TESTBED overrides). */
export const testbedScript = process.env.SHOAL_TESTBED ?? resolve(root, '../shared/bench/testbed.sh');

/** Our own namespace names, so a bed of ours never collides with another one on the host. */
export function bedEnv(prefix = 'mc'): NodeJS.ProcessEnv {
  return { ...process.env, TB_BR_NS: `${prefix}b`, TB_S_NS: `${prefix}s`, TB_R_PREFIX: `${prefix}r`, TB_STATE: `/tmp/shoal-${prefix}-bed/state` };
}

/** Null when the bed can be built here, else why not. */
export async function bedProblem(): Promise<string | null> {
  if (process.platform !== 'linux') return 'the namespace bed needs Linux';
  if (process.getuid?.() !== 0) return 'the namespace bed needs root (CI runs it as root)';
  if (!existsSync(testbedScript)) return `no bed script at ${testbedScript}`;
  try {
    await run('ip', ['netns', 'list'], { timeout: 5000 });
  } catch (err) {
    return `ip netns does not work here: ${(err as Error).message}`;
  }
  return null;
}

export async function bed(env: NodeJS.ProcessEnv, ...args: string[]): Promise<string> {
  const { stdout } = await run('bash', [testbedScript, ...args], { env, timeout: 120_000 });
  return stdout;
}

/**
 * The sender cuts its UDP segmentation-offload messages (native/shoal_udp.c) into datagrams on its own side of
 * the link, as a NIC does before the wire. A veth left as the bed builds it claims UDP segmentation offload and
 * passes whole 16-datagram messages through the bridge, its loss rule and the receivers' links, which no real
 * network does: losses would come in runs of 16 and the bridge would do a sixteenth of its work.
 */
export const SEGMENT_AT_SENDER = 'ethtool -K tb0 tx-udp-segmentation off';

export async function segmentAtSender(env: NodeJS.ProcessEnv): Promise<void> {
  await run('bash', [testbedScript, 'exec', env.TB_S_NS ?? 's', 'bash', '-c', SEGMENT_AT_SENDER], { env, timeout: 10_000 });
}

/**
 * GRO on the receivers' links (`SHOAL_BED_RX_GRO=on`): a real NIC coalesces received datagrams by default, the
 * bed switches it off on every veth so that tbf and the loss rule see single packets. Switched on inside the
 * receivers' namespaces only, it acts after the link's rate limit and loss, where a NIC's would.
 */
export const RX_GRO = 'ethtool -K tb0 gro on';

export async function receiveOffloadAtReceivers(env: NodeJS.ProcessEnv, n: number): Promise<void> {
  for (let k = 1; k <= n; k++) await run('bash', [testbedScript, 'exec', `${env.TB_R_PREFIX ?? 'r'}${k}`, 'bash', '-c', RX_GRO], { env, timeout: 10_000 });
}

export interface BedRunOptions {
  env: NodeJS.ProcessEnv;
  n: number;
  path: string;
  manifest: Manifest;
  destRoot: string;
  rateBps: number;
  chunkSize?: number;
  maxPasses?: number;
  /** Repair with parity fragments (default true). */
  parity?: boolean;
  timeoutMs?: number;
  /** Where the config file goes. */
  workDir: string;
}

export interface ReceiverOutcome {
  k: number;
  done: boolean;
  path?: string;
  partialsLeft?: string[];
  /** Completion wall-clock time, ms since epoch. */
  at?: number;
  cpuUs?: number;
  /** User and kernel CPU, µs. */
  cpu?: { user: number; system: number };
  stats?: Record<string, unknown>;
  /** Minor page faults from ready to done. */
  pageFaults?: number;
  /** MiB the receiver wrote past the page cache (O_DIRECT). */
  directMiB?: number;
  /** Datagrams the receiver's kernel dropped for a full socket buffer during the transfer. */
  kernelDrops?: number;
  /** [ms since the receiver started, datagrams dropped in the 100 ms before]. */
  dropTimeline?: Array<[number, number]>;
  /** Event-loop delay while receiving, ms. */
  loop?: { maxMs: number; p99Ms: number };
}

export interface BedRunResult {
  result: SendResult | null;
  start: number;
  end: number;
  senderCpuUs: number;
  receivers: ReceiverOutcome[];
  /** Sender CPU during run() only, µs. */
  runCpu?: { user: number; system: number };
  /** Minor page faults of the sender's run(). */
  runPageFaults?: number;
  /** From sender start to the last receiver's verified copy, ms. */
  totalMs: number;
  stderr: string;
}

function lines(child: ChildProcess, onLine: (l: string) => void): void {
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      onLine(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
}

/** One transfer on a bed that is already up with at least `n` receivers. */
export async function runOnBed(o: BedRunOptions): Promise<BedRunResult> {
  const timeoutMs = o.timeoutMs ?? 120_000;
  const cfg: BedConfig = {
    path: o.path, manifest: o.manifest, keyHex: randomBytes(32).toString('hex'), transferId: `bed-${Date.now()}`,
    group: `239.77.9.${1 + Math.floor(Math.random() * 200)}`, port: 47_000 + Math.floor(Math.random() * 1000),
    chunkSize: o.chunkSize ?? 64 * 1024, net: '10.77.0', n: o.n, destRoot: o.destRoot, controlPort: 7707,
    rateBps: o.rateBps, maxPasses: o.maxPasses ?? 10, parity: o.parity, timeoutMs,
  };
  const cfgPath = join(o.workDir, `bed-${cfg.transferId}.json`);
  await writeFile(cfgPath, JSON.stringify(cfg));
  const children: ChildProcess[] = [];
  let stderr = '';
  const outcomes: ReceiverOutcome[] = Array.from({ length: o.n }, (_, i) => ({ k: i + 1, done: false }));
  const exec = (ns: string, script: string, ...args: string[]) => {
    // SHOAL_BED_PROF=DIR writes a CPU profile of every bed process into DIR (for tuning).
    const prof = process.env.SHOAL_BED_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.SHOAL_BED_PROF}`] : [];
    const child = spawn('bash', [testbedScript, 'exec', ns, process.execPath, ...prof, '--import', 'tsx', join(here, script), ...args], { env: o.env, cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stderr!.on('data', (d: Buffer) => { if (stderr.length < 20_000) stderr += d.toString(); });
    children.push(child);
    return child;
  };
  const killer = setTimeout(() => { for (const c of children) if (c.exitCode === null && c.pid) process.kill(c.pid, 'SIGKILL'); }, timeoutMs + 15_000);
  try {
    const prefix = o.env.TB_R_PREFIX ?? 'r';
    const ready = await Promise.all(outcomes.map((out) => new Promise<boolean>((resolveReady) => {
      const child = exec(`${prefix}${out.k}`, 'bed-receiver.ts', cfgPath, String(out.k));
      const t = setTimeout(() => resolveReady(false), 30_000);
      lines(child, (l) => {
        try {
          const msg = JSON.parse(l) as { ready?: number; done?: number } & Pick<ReceiverOutcome, 'at' | 'path' | 'partialsLeft' | 'cpu' | 'stats' | 'kernelDrops' | 'dropTimeline' | 'loop' | 'pageFaults' | 'directMiB'>;
          if (msg.ready !== undefined) { clearTimeout(t); resolveReady(true); }
          if (msg.done !== undefined) Object.assign(out, { done: true, at: msg.at, path: msg.path, partialsLeft: msg.partialsLeft, cpuUs: msg.cpu ? msg.cpu.user + msg.cpu.system : undefined, cpu: msg.cpu, stats: msg.stats, kernelDrops: msg.kernelDrops, dropTimeline: msg.dropTimeline, loop: msg.loop, pageFaults: msg.pageFaults, directMiB: msg.directMiB });
        } catch { /* not ours */ }
      });
      child.once('exit', () => { clearTimeout(t); resolveReady(false); });
    })));
    if (ready.some((r) => !r)) throw new Error(`receivers did not start: ${stderr.slice(0, 2000)}`);
    const got: { line: { result: SendResult; start: number; end: number; cpu: { user: number; system: number }; runCpu?: { user: number; system: number }; runPageFaults?: number } | null } = { line: null };
    const sender = exec(o.env.TB_S_NS ?? 's', 'bed-sender.ts', cfgPath);
    lines(sender, (l) => { try { got.line = JSON.parse(l); } catch { /* not ours */ } });
    await Promise.all(children.map((c) => (c.exitCode !== null ? Promise.resolve() : new Promise((r) => c.once('exit', r)))));
    const s = got.line;
    const last = Math.max(...outcomes.map((x) => x.at ?? Infinity));
    return {
      runCpu: s?.runCpu,
      runPageFaults: s?.runPageFaults,
      result: s?.result ?? null, start: s?.start ?? 0, end: s?.end ?? 0, senderCpuUs: s ? s.cpu.user + s.cpu.system : 0,
      receivers: outcomes, totalMs: s ? Math.max(last, s.end) - s.start : Infinity, stderr,
    };
  } finally {
    clearTimeout(killer);
    for (const c of children) if (c.exitCode === null && c.pid) process.kill(c.pid, 'SIGTERM');
  }
}
