/**
 * Multicast benchmark (issue 4's figures), needs root and the namespace bed. Two modes:
 *
 *   node --import tsx bench/multicast/run.ts direct [--size-mib 256] [--rate 400] [--ns 1,4,8] [--losses 0,2]
 *        [--pace MBIT] [--chunk-kib 64] [--parity on|off]
 *     Shoal alone on its own bed (namespaces mcbs, mcbr1.., mcbb): time from the sender's run() to the last
 *     receiver's verified copy, passes, wire bytes, CPU seconds. Quick, for tuning. Files under
 *     /tmp/shoal-mcbench (SHOAL_BENCH_WORK to change), as peers mode's are under /tmp/tb. SHOAL_BED_RX_GRO=on
 *     switches GRO on at the receivers' links (the bed switches it off on every veth).
 *
 *   node --import tsx bench/multicast/run.ts peers [--size-mib 256] [--rate 400] [--ns 1,4,8] [--losses 0,2]
 *        [--tools shoal,shoal-gro,uftp-enc,http] [--reps 1]
 *     Everything through ../shared/bench/peers.sh in the same run (Shoal through its "cmd" adapter), so every
 *     system is timed the same way: launch of the sender → every receiver holds a hash-checked copy (this
 *     includes process start-up). Shoal's bed sender and receiver are bundled to one JavaScript file each
 *     first (esbuild), so a launch costs Node's start, not a TypeScript compile of every module (0.4-0.6 s
 *     of CPU each), which a running coordinator or agent never pays; without esbuild they run through tsx.
 *     Prints a table with ratios to the ideal (size ÷ rate) and to UFTP. `shoal-gro` is Shoal with GRO
 *     switched on at its receivers' links, as a real NIC has it (the bed switches it off on every veth).
 *
 * Prints figures and ratios; never asserts on timings.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { hashFile } from '../../src/transfer/pieces/hash-file.ts';
import { bed, bedEnv, bedProblem, receiveOffloadAtReceivers, runOnBed, RX_GRO, SEGMENT_AT_SENDER, segmentAtSender, testbedScript } from './bed-run.ts';
import type { BedConfig } from './bed-config.ts';

const run = promisify(execFile);
const here = new URL('.', import.meta.url).pathname;
const root = resolve(here, '../..');
const peersScript = resolve(testbedScript, '../peers.sh');

const args = process.argv.slice(2);
const mode = args[0] ?? 'direct';
const opt = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1] : def;
};
const sizeMiB = Number(opt('size-mib', '256'));
const rateMbit = Number(opt('rate', '400'));
const ns = opt('ns', '1,4,8').split(',').map(Number);
const losses = opt('losses', '0,2').split(',').map(Number);
const tools = opt('tools', 'shoal,uftp-enc,http').split(',');
const reps = Number(opt('reps', '1'));
/** Sender pacing ceiling in Mbit/s for `direct` (default: the link rate). */
const paceMbit = Number(opt('pace', String(rateMbit)));
/** Plaintext bytes per sealed chunk (both modes). */
const chunkSize = Number(opt('chunk-kib', '64')) * 1024;
/** Repair with parity fragments (`direct` only; default on). */
const parity = opt('parity', 'on') !== 'off';
const idealS = (sizeMiB * 1024 * 1024 * 8) / (rateMbit * 1e6);

const problem = await bedProblem();
if (problem) {
  console.log(`multicast bench skipped: ${problem}`);
  process.exit(0);
}

if (mode === 'direct') await direct();
else if (mode === 'peers') await peers();
else {
  console.log('usage: run.ts direct|peers [options] (see the header)');
  process.exit(2);
}

async function direct(): Promise<void> {
  const env = bedEnv('mcb');
  // Beside peers mode's files (/tmp/tb): received copies land on the machine's file system, as they would on a
  // real receiver, not in memory. SHOAL_BENCH_WORK puts them elsewhere (e.g. /dev/shm to leave the disk out).
  const work = process.env.SHOAL_BENCH_WORK ?? '/tmp/shoal-mcbench';
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  const path = join(work, 'payload.bin');
  await run('bash', ['-c', `head -c ${sizeMiB * 1024 * 1024} /dev/urandom > ${path}`]);
  const manifest = { name: 'payload.bin', ...(await hashFile(path)) };
  const fsType = (await run('stat', ['-f', '-c', '%T', work])).stdout.trim();
  const rows: string[][] = [['N', 'loss %', 'time s', '× ideal', 'passes', 'wire/size', 'sender CPU s', 'recv CPU s (max)', 'ok']];
  try {
    for (const n of ns) {
      for (const loss of losses) {
        await bed(env, 'up', String(n), String(rateMbit), String(loss));
        await segmentAtSender(env);
        if (process.env.SHOAL_BED_RX_GRO === 'on') await receiveOffloadAtReceivers(env, n);
        const out = await runOnBed({ env, n, path, manifest, destRoot: join(work, `rx-${n}-${loss}`), rateBps: paceMbit * 1e6, chunkSize, parity, workDir: work, timeoutMs: 300_000 });
        const ok = out.receivers.every((r) => r.done) && out.result?.complete === true;
        const t = out.totalMs / 1000;
        const recvCpu = Math.max(...out.receivers.map((r) => r.cpuUs ?? 0)) / 1e6;
        rows.push([String(n), String(loss), t.toFixed(2), (t / idealS).toFixed(3), String(out.result?.passes.length ?? '-'),
          out.result ? (out.result.wireBytes / manifest.size).toFixed(3) : '-', (out.senderCpuUs / 1e6).toFixed(2), recvCpu.toFixed(2), ok ? 'yes' : 'NO']);
        if (!ok) console.log(out.stderr.slice(0, 3000));
        const rc = out.receivers.map((r) => r.cpu).filter((c) => c !== undefined);
        for (const r of out.receivers) if (r.stats) console.log(`N=${n} loss=${loss}% r${r.k}: ${JSON.stringify({ doneAfterSenderMs: (r.at ?? 0) - out.end, rejected: r.stats.rejected, spilled: r.stats.spilled, restored: r.stats.restored, duplicates: r.stats.duplicates, pieceFailures: r.stats.pieceFailures, kernelDrops: r.kernelDrops, recvBuffer: r.stats.recvBufferBytes, offload: r.stats.receiveOffload, coalesced: r.stats.coalescedDatagrams, peakDiskQueueMiB: Math.round(Number(r.stats.peakDiskQueueBytes ?? 0) / 1048576), pageFaults: r.pageFaults, directMiB: r.directMiB, loop: r.loop, dropTimeline: r.dropTimeline })}`);
        if (rc.length) console.log(`N=${n} loss=${loss}%: receiver CPU user ${(rc.reduce((a, c) => a + c.user, 0) / rc.length / 1e6).toFixed(2)} s, sys ${(rc.reduce((a, c) => a + c.system, 0) / rc.length / 1e6).toFixed(2)} s (mean)`);
        if (out.runCpu) console.log(`N=${n} loss=${loss}%: sender run() CPU user ${(out.runCpu.user / 1e6).toFixed(2)} s, sys ${(out.runCpu.system / 1e6).toFixed(2)} s, ${out.runPageFaults ?? '?'} page faults`);
        if (out.result) console.log(`N=${n} loss=${loss}%: passes ${JSON.stringify(out.result.passes.map((p) => ({ pass: p.pass, dg: p.datagrams, ms: p.ms, rate: Math.round(p.rateBps / 1e6), loss: p.loss })))}`);
        await rm(join(work, `rx-${n}-${loss}`), { recursive: true, force: true });
      }
    }
  } finally {
    await bed(env, 'down').catch(() => undefined);
    await rm(work, { recursive: true, force: true });
  }
  console.log(`\nShoal multicast on the bed: ${sizeMiB} MiB, sender link ${rateMbit} Mbit/s, ideal ${idealS.toFixed(2)} s (time from run() to the last verified copy), copies on ${fsType}, GRO at the receivers' links ${process.env.SHOAL_BED_RX_GRO === 'on' ? 'on' : 'off (as the bed builds them)'}`);
  printTable(rows);
}

async function peers(): Promise<void> {
  if (!existsSync(peersScript)) {
    console.log(`no peers.sh at ${peersScript}`);
    return;
  }
  const busy = (await run('ip', ['netns', 'list'])).stdout.split('\n').some((l) => /^(s|b77|r\d+)\b/.test(l));
  if (busy) {
    console.log('the default bed (s, b77, rK) is in use by someone else: not running peers.sh now');
    return;
  }
  const results = `/tmp/shoal-mcbench-peers-${Date.now()}.csv`;
  const env = { ...process.env, SIZE_MIB: String(sizeMiB), RATE: String(rateMbit), REPS: String(reps), RESULTS: results };
  const sh = (...a: string[]) => new Promise<void>((ok, fail) => {
    const c = spawn('bash', [peersScript, ...a], { env: { ...env, ...extraEnv }, stdio: ['ignore', 'inherit', 'inherit'] });
    c.once('exit', (code) => (code === 0 ? ok() : fail(new Error(`peers.sh ${a.join(' ')} exited ${code}`))));
  });
  let extraEnv: NodeJS.ProcessEnv = {};
  await sh('prepare');
  const data = process.env.PEERS_WORK ? join(process.env.PEERS_WORK, 'data') : '/tmp/tb/data';
  const payload = join(data, 'src', `payload-${sizeMiB}M.bin`);
  const manifest = { name: `payload-${sizeMiB}M.bin`, ...(await hashFile(payload)) };
  const cfgPath = join(data, 'shoal-bench.json');
  const senderCmd = await bundled('bed-sender');
  const receiverCmd = await bundled('bed-receiver');
  try {
    for (const n of ns) {
      for (const loss of losses) {
        for (const tool of tools) {
          if (tool === 'shoal' || tool === 'shoal-gro') {
            const cfg: BedConfig = {
              path: payload, manifest, keyHex: randomBytes(32).toString('hex'), transferId: `bench-${n}-${loss}`,
              group: '239.77.3.1', port: 47_001, chunkSize, net: '10.77.0', n, destRoot: data, controlPort: 7707,
              rateBps: rateMbit * 1e6, maxPasses: 10, timeoutMs: 280_000, receiversExit: true,
            };
            await writeFile(cfgPath, JSON.stringify(cfg));
            extraEnv = {
              LABEL: tool,
              PEERS_RECV_READY_S: '3',
              // shoal-gro: the receivers' links coalesce datagrams (GRO), as a real NIC does; the bed switches
              // that off on every veth at each `up`, so it is switched on here, in each receiver's namespace.
              PEERS_RECV_CMD: `${tool === 'shoal-gro' ? `${RX_GRO} && ` : ''}cd ${root} && ${receiverCmd} ${cfgPath} "$K" exit`,
              PEERS_SEND_CMD: `${SEGMENT_AT_SENDER} && cd ${root} && ${senderCmd} ${cfgPath}`,
            };
            await sh('case', 'cmd', String(n), String(loss)).catch((err: unknown) => console.log(`shoal N=${n} loss=${loss}: ${String(err)}`));
            extraEnv = {};
          } else {
            await sh('case', tool, String(n), String(loss)).catch((err: unknown) => console.log(`${tool} N=${n} loss=${loss}: ${String(err)}`));
          }
        }
      }
    }
  } finally {
    await sh('cleanup').catch(() => undefined);
  }
  await report(results);
}

/** The command that runs bench/multicast/<script>.ts (the bed sender or receiver): bundled by esbuild into
 * build/bench/multicast/ (three levels under the root, where its native modules' relative paths still resolve),
 * else through tsx. Bundled, a process starts in about 0.1 s of CPU instead of the 0.6 s of a TypeScript
 * compile of every module, which eight receivers starting at once on two cores would still be paying when the
 * sender starts (a running agent pays neither). */
async function bundled(script: 'bed-sender' | 'bed-receiver'): Promise<string> {
  const out = join(root, 'build', 'bench', 'multicast', `${script}.mjs`);
  try {
    const esbuild = await import('esbuild');
    await esbuild.build({ entryPoints: [join(root, `bench/multicast/${script}.ts`)], bundle: true, platform: 'node', format: 'esm', target: 'node20', outfile: out, packages: 'external', logLevel: 'warning' });
    console.log(`shoal ${script} bundled into ${out}`);
    return `${process.execPath} ${out}`;
  } catch (err) {
    console.log(`could not bundle ${script} (${String(err)}); it runs through tsx, start-up included`);
    return `${process.execPath} --import tsx bench/multicast/${script}.ts`;
  }
}

async function report(csvPath: string): Promise<void> {
  const [head, ...lines] = (await readFile(csvPath, 'utf8')).trim().split('\n');
  const cols = head.split(',');
  const recs = lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [cols[i], v])));
  const key = (r: Record<string, string>) => `${r.n}/${r.loss_pct}`;
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const byCase = new Map<string, Map<string, Record<string, string>[]>>();
  for (const r of recs) {
    const tool = r.tool.includes('shoal-gro') ? 'shoal-gro' : r.tool.includes('shoal') ? 'shoal' : r.tool;
    if (!byCase.has(key(r))) byCase.set(key(r), new Map());
    const m = byCase.get(key(r))!;
    if (!m.has(tool)) m.set(tool, []);
    m.get(tool)!.push(r);
  }
  const rows: string[][] = [['N/loss%', 'tool', 'ok', 'time s', '× ideal', '÷ UFTP-enc', 'tx ratio×N', 'sender CPU s', 'recv CPU s']];
  for (const [c, m] of byCase) {
    const uftp = m.get('uftp-enc');
    const uftpT = uftp ? median(uftp.map((r) => Number(r.t_total_s))) : NaN;
    for (const [tool, rs] of m) {
      const t = median(rs.map((r) => Number(r.t_total_s)));
      const n = Number(rs[0].n);
      rows.push([c, tool, rs.map((r) => r.ok).join(' '), t.toFixed(2), (t / idealS).toFixed(3), Number.isNaN(uftpT) ? '-' : (t / uftpT).toFixed(3),
        (median(rs.map((r) => Number(r.tx_ratio))) * n).toFixed(3), median(rs.map((r) => Number(r.sender_cpu_s))).toFixed(2), median(rs.map((r) => Number(r.recv_cpu_s))).toFixed(2)]);
    }
  }
  console.log(`\n${sizeMiB} MiB, sender link ${rateMbit} Mbit/s, ideal ${idealS.toFixed(2)} s; times from peers.sh (sender launch → every copy hash-checked), medians of ${reps}; CSV: ${csvPath}`);
  console.log('tx ratio×N = bytes on the sender link ÷ file size (multicast: ≈ 1 + headers + repairs)');
  printTable(rows);
}

function printTable(rows: string[][]): void {
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  for (const r of rows) console.log(r.map((v, i) => (v ?? '').padEnd(w[i])).join('  '));
}
