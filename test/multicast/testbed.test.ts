/**
 * End to end on the namespace bed (../shared/bench/testbed.sh, CI runs it as root): a sender in its own
 * namespace, 4 receivers in theirs, 3% independent random loss on each receiver's port, real kernel
 * multicast over a bridge. Skips with the reason when not root or without `ip netns`.
 * The bed uses its own namespace names (mcs, mcr1.., mcb) so that it never touches another bed on the host.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { bed, bedEnv, bedProblem, receiveOffloadAtReceivers, runOnBed, segmentAtSender } from '../../bench/multicast/bed-run.ts';
import { randomFile, sha256File, tempDir } from './helpers.ts';

const MiB = 1024 * 1024;
const env = bedEnv('mct');
let skipReason: string | null = null;
let work: Awaited<ReturnType<typeof tempDir>> | null = null;
let up = false;

before(async () => {
  skipReason = await bedProblem();
  if (skipReason) {
    console.log(`# skipping namespace bed test: ${skipReason}`);
    return;
  }
  work = await tempDir('shoal-mcbed-');
  await bed(env, 'up', '4', '0', '3');
  up = true;
  await segmentAtSender(env); // loss and reordering hit single datagrams, as on a real link
});
after(async () => {
  if (up) await bed(env, 'down').catch((err: unknown) => console.log(`# bed down failed: ${String(err)}`));
  await work?.cleanup();
});

describe('multicast on the namespace bed', () => {
  it('delivers a file to 4 receivers that each lose 3% of frames, every copy identical, no partial left', async (t) => {
    if (skipReason || !work) return t.skip(skipReason ?? 'no bed');
    const src = await randomFile(work.dir, 'bed.bin', 16 * MiB + 4321, 4 * MiB);
    const out = await runOnBed({ env, n: 4, path: src.path, manifest: src.manifest, destRoot: join(work.dir, 'rx'), rateBps: 200e6, workDir: work.dir, timeoutMs: 90_000 });
    assert.ok(out.result, `sender produced no result: ${out.stderr.slice(0, 2000)}`);
    assert.equal(out.result.complete, true, JSON.stringify(out.result.passes));
    assert.ok(out.result.passes.length >= 2, 'loss made repair passes necessary');
    for (const r of out.receivers) {
      assert.equal(r.done, true, `receiver ${r.k} did not finish: ${out.stderr.slice(0, 2000)}`);
      assert.equal(await sha256File(r.path!), src.manifest.sha256);
      assert.deepEqual(r.partialsLeft, []);
    }
    // Fragment-level repair: with 3% loss the wire carries little more than the file (plus headers).
    assert.ok(out.result.wireBytes < src.manifest.size * 1.25, `wire ${out.result.wireBytes} for ${src.manifest.size}`);
    console.log(`# bed: ${out.result.passes.length} passes, wire/size ${(out.result.wireBytes / src.manifest.size).toFixed(3)}, ${out.totalMs} ms`);
  });

  it('reads datagrams that the receivers\' links coalesce (GRO), every copy identical, none rejected', async (t) => {
    if (skipReason || !work) return t.skip(skipReason ?? 'no bed');
    await receiveOffloadAtReceivers(env, 4); // as a real NIC receives: GRO after the link's loss
    const src = await randomFile(work.dir, 'gro.bin', 24 * MiB + 999, 4 * MiB);
    const out = await runOnBed({ env, n: 4, path: src.path, manifest: src.manifest, destRoot: join(work.dir, 'rx-gro'), rateBps: 200e6, workDir: work.dir, timeoutMs: 90_000 });
    assert.equal(out.result?.complete, true, out.stderr.slice(0, 2000));
    let coalesced = 0;
    for (const r of out.receivers) {
      assert.equal(r.done, true, `receiver ${r.k} did not finish: ${out.stderr.slice(0, 2000)}`);
      assert.equal(await sha256File(r.path!), src.manifest.sha256);
      assert.deepEqual(r.partialsLeft, []);
      assert.equal(r.stats?.receiveOffload, true, `receiver ${r.k} did not get UDP_GRO`);
      assert.equal((r.stats?.rejected as { malformed: number } | undefined)?.malformed, 0, `receiver ${r.k} rejected split datagrams`);
      coalesced += Number(r.stats?.coalescedDatagrams ?? 0);
    }
    const datagrams = out.result!.passes.reduce((a, p) => a + p.datagrams, 0);
    assert.ok(coalesced > 0, `no datagram arrived coalesced (of ${datagrams} sent to 4 receivers)`);
    console.log(`# bed with GRO: ${coalesced} of ${4 * datagrams} datagrams arrived coalesced, ${out.result!.passes.length} passes`);
  });
});
