/**
 * Multicast over loopback: a real sender and real receivers on 127.0.0.1 with multicast loopback on, in one
 * process; collectStatus asks the receivers directly (the agent does it over its WebSocket).
 * Loss: receivers on loopback lose only what overflows their buffers, so one receiver per test uses the
 * documented `simulateLossRate` test knob to make repair passes happen; real network loss is exercised on
 * the namespace bed (testbed.test.ts).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { createLogger, silentLogger } from '../../src/logger.ts';
import { openPartialFile, type PartialFile } from '../../src/transfer/pieces/partial-file.ts';
import { createMulticastReceiver, type MulticastPartial, type MulticastReceiver } from '../../src/transfer/multicast/receiver.ts';
import { createMulticastSender, type MulticastSenderOptions } from '../../src/transfer/multicast/sender.ts';
import type { ReceiverStatus } from '../../src/transfer/multicast/receiver-status.ts';
import { loadBatchUdp } from '../../src/transfer/multicast/batch-udp.ts';
import type { Manifest } from '../../src/protocol/api.ts';
import { DatagramKind, type DataDatagram } from '../../src/protocol/datagram-types.ts';
import { freePort, loopbackMulticastProblem, nextGroup, partialsIn, randomFile, sha256File, tempDir } from './helpers.ts';

const MiB = 1024 * 1024;
const chunkSize = 64 * 1024;
let skipReason: string | null = null;
let work: Awaited<ReturnType<typeof tempDir>>;

before(async () => {
  skipReason = await loopbackMulticastProblem();
  if (skipReason) console.log(`# skipping loopback multicast tests: ${skipReason}`);
  work = await tempDir('shoal-mc-');
});
after(async () => {
  await work?.cleanup();
});

interface Rx { id: string; dir: string; partial: PartialFile; receiver: MulticastReceiver }

async function makeReceiver(id: string, manifest: Manifest, group: string, port: number, key: Uint8Array, transferId: string, extra: { simulateLossRate?: number; dir?: string; io?: 'batch' | 'dgram'; pieceBufferBytes?: number; reassemblyBytes?: number; disk?: (p: PartialFile) => MulticastPartial } = {}): Promise<Rx> {
  const dir = extra.dir ?? join(work.dir, `${id}-${Math.random().toString(36).slice(2)}`);
  const partial = await openPartialFile({ manifest, destDir: dir, logger: silentLogger, durable: false });
  const receiver = createMulticastReceiver({ logger: silentLogger, partial: extra.disk?.(partial) ?? partial }, {
    address: group, port, interface: '127.0.0.1', key, transferId, manifest, chunkSize, receiverId: id, simulateLossRate: extra.simulateLossRate, io: extra.io,
    pieceBufferBytes: extra.pieceBufferBytes, reassemblyBytes: extra.reassemblyBytes,
  });
  await receiver.start();
  return { id, dir, partial, receiver };
}

function collector(rxs: () => Rx[]) {
  return async (pass: number, signal: AbortSignal): Promise<ReceiverStatus[]> => {
    await Promise.all(rxs().map((r) => r.receiver.waitPassEnd(pass, 1000, signal)));
    // Let queued disk work (chunks being opened and written) settle so they are not asked for again.
    await new Promise((r) => setTimeout(r, 50));
    return rxs().map((r) => r.receiver.status());
  };
}

function senderOptions(path: string, manifest: Manifest, group: string, port: number, key: Uint8Array, transferId: string, rateBps: number): MulticastSenderOptions {
  return { address: group, port, interface: '127.0.0.1', chunkSize, rateBps, key, transferId, manifest, path, maxPasses: 10 };
}

describe('multicast over loopback', () => {
  it('delivers one file to four receivers, one of them losing 3% of datagrams, with identical hashes and no partial left', async (t) => {
    if (skipReason) return t.skip(skipReason);
    const src = await randomFile(work.dir, 'four.bin', 8 * MiB + 12345, MiB);
    const group = nextGroup();
    const port = await freePort();
    const key = randomBytes(32);
    const rxs: Rx[] = [];
    t.after(() => Promise.all(rxs.map((r) => r.receiver.stop())));
    for (let i = 0; i < 4; i++) rxs.push(await makeReceiver(`r${i + 1}`, src.manifest, group, port, key, 'tx-four', { simulateLossRate: i === 3 ? 0.03 : 0 }));
    const sender = createMulticastSender({ logger: silentLogger, collectStatus: collector(() => rxs) }, senderOptions(src.path, src.manifest, group, port, key, 'tx-four', 200e6));
    const result = await sender.run(AbortSignal.timeout(60_000));
    assert.equal(result.complete, true, JSON.stringify(result.passes.map((p) => p.missing)));
    assert.ok(result.passes.length >= 2, 'the lossy receiver needed a repair pass');
    for (const r of rxs) {
      await r.receiver.whenComplete(AbortSignal.timeout(10_000));
      const final = await r.partial.finalize();
      assert.equal(await sha256File(final), src.manifest.sha256);
      assert.deepEqual(await partialsIn(r.dir), []);
    }
    assert.ok(rxs[3].receiver.stats.simulatedDrops > 0);
    // Repair sends single fragments, not whole chunks: the bytes on the wire stay near the file size.
    assert.ok(result.wireBytes < src.manifest.size * 1.25, `wire bytes ${result.wireBytes} for ${src.manifest.size}`);
  });

  it('reuses its sealed-chunk buffers over a file larger than its repair cache: exact copies, no datagram fails authentication', async (t) => {
    if (skipReason) return t.skip(skipReason);
    // At 12 Mbit/s the sender keeps the last 46 sealed chunks for repairs; this file has 66, so buffers go round
    // (and past the preallocated slots), and a buffer handed out while still cached would send bytes that fail.
    const src = await randomFile(work.dir, 'reuse.bin', 4 * MiB + 4321, MiB);
    const group = nextGroup();
    const port = await freePort();
    const key = randomBytes(32);
    const rxs: Rx[] = [];
    t.after(() => Promise.all(rxs.map((r) => r.receiver.stop())));
    for (let i = 0; i < 2; i++) rxs.push(await makeReceiver(`r${i + 1}`, src.manifest, group, port, key, 'tx-reuse', { simulateLossRate: i === 1 ? 0.05 : 0 }));
    const sender = createMulticastSender({ logger: silentLogger, collectStatus: collector(() => rxs) }, senderOptions(src.path, src.manifest, group, port, key, 'tx-reuse', 12e6));
    const result = await sender.run(AbortSignal.timeout(60_000));
    assert.equal(result.complete, true);
    for (const r of rxs) {
      await r.receiver.whenComplete(AbortSignal.timeout(10_000));
      assert.equal(await sha256File(await r.partial.finalize()), src.manifest.sha256);
      assert.equal(r.receiver.stats.rejected.auth, 0, `${r.id}: chunks that failed authentication`);
    }
    assert.ok(rxs[1].receiver.stats.simulatedDrops > 0 && result.passes.length >= 2, 'the lossy receiver was repaired');
  });

  for (const senderIo of ['batch', 'dgram'] as const) {
    it(`moves a file between ${senderIo === 'batch' ? 'a batched sender and node:dgram receivers' : 'a node:dgram sender and batched receivers'} (both kinds of socket I/O agree)`, async (t) => {
      if (skipReason) return t.skip(skipReason);
      if (!loadBatchUdp()) return t.skip('build/shoal_udp.node is not built here (npm install builds it; scripts/test.sh requires it)');
      const receiverIo = senderIo === 'batch' ? 'dgram' : 'batch';
      const src = await randomFile(work.dir, `io-${senderIo}.bin`, 4 * MiB + 999, MiB);
      const group = nextGroup();
      const port = await freePort();
      const key = randomBytes(32);
      const rxs: Rx[] = [];
      t.after(() => Promise.all(rxs.map((r) => r.receiver.stop())));
      for (let i = 0; i < 2; i++) rxs.push(await makeReceiver(`r${i + 1}`, src.manifest, group, port, key, `tx-io-${senderIo}`, { io: receiverIo, simulateLossRate: i === 1 ? 0.03 : 0 }));
      const sender = createMulticastSender({ logger: silentLogger, collectStatus: collector(() => rxs) }, { ...senderOptions(src.path, src.manifest, group, port, key, `tx-io-${senderIo}`, 200e6), io: senderIo });
      const result = await sender.run(AbortSignal.timeout(60_000));
      assert.equal(result.complete, true);
      for (const r of rxs) {
        await r.receiver.whenComplete(AbortSignal.timeout(10_000));
        assert.equal(await sha256File(await r.partial.finalize()), src.manifest.sha256);
      }
      assert.ok(rxs[1].receiver.stats.simulatedDrops > 0 && result.passes.length >= 2, 'the lossy receiver was repaired');
    });
  }

  it('gives a batched receiver the 16 MiB socket buffer it asks for, beyond net.core.rmem_max when run as root', async (t) => {
    if (skipReason) return t.skip(skipReason);
    if (!loadBatchUdp()) return t.skip('build/shoal_udp.node is not built here (npm install builds it; scripts/test.sh requires it)');
    if (process.getuid?.() !== 0) return t.skip('not root: the kernel caps the buffer at net.core.rmem_max, which is the documented set-up');
    const src = await randomFile(work.dir, 'rcvbuf.bin', 100_000, MiB);
    const rx = await makeReceiver('r1', src.manifest, nextGroup(), await freePort(), randomBytes(32), 'tx-rcvbuf');
    t.after(() => rx.receiver.stop());
    // Linux reports twice the size it grants; a default rmem_max (208 KiB) would give 416 KiB.
    assert.equal(rx.receiver.stats.recvBufferBytes, 2 * 16 * MiB);
  });

  it('warns, with the sysctl that fixes it, when the kernel grants a smaller receive buffer than asked', async (t) => {
    if (skipReason) return t.skip(skipReason);
    const rmemMax = Number((await readFile('/proc/sys/net/core/rmem_max', 'utf8')).trim());
    if (rmemMax >= 16 * MiB) return t.skip(`net.core.rmem_max is ${rmemMax} here: the 16 MiB asked for is granted, nothing to warn about`);
    const src = await randomFile(work.dir, 'rcvbuf-warn.bin', 100_000, MiB);
    const lines: string[] = [];
    const logger = createLogger({ level: 'info', write: (l) => void lines.push(l) });
    const partial = await openPartialFile({ manifest: src.manifest, destDir: join(work.dir, 'rcvbuf-warn'), logger: silentLogger, durable: false });
    // node:dgram sets SO_RCVBUF only, which rmem_max caps whoever runs it.
    const receiver = createMulticastReceiver({ logger, partial }, {
      address: nextGroup(), port: await freePort(), interface: '127.0.0.1', key: randomBytes(32), transferId: 'tx-rcvbuf-warn', manifest: src.manifest, chunkSize, io: 'dgram',
    });
    await receiver.start();
    t.after(() => receiver.stop());
    const joined = lines.map((l) => JSON.parse(l) as { level: string; msg: string; hint?: string; recvBufferGranted?: number }).find((l) => l.msg === 'joined multicast group');
    assert.equal(joined?.level, 'warn');
    assert.equal(joined?.recvBufferGranted, 2 * rmemMax);
    assert.match(joined?.hint ?? '', /sysctl -w net\.core\.rmem_max=16777216/);
  });

  it('ends with correct copies when piece copies are evicted and incomplete chunks spill to disk all the time', async (t) => {
    if (skipReason) return t.skip(skipReason);
    // 256 KiB pieces, room for one piece copy and four incomplete chunks: most chunks are written when their
    // piece's copy is evicted, or go through the spill and read-back path, instead of the in-memory path.
    const src = await randomFile(work.dir, 'evict.bin', 6 * MiB + 4321, 256 * 1024);
    const group = nextGroup();
    const port = await freePort();
    const key = randomBytes(32);
    const rxs: Rx[] = [];
    t.after(() => Promise.all(rxs.map((r) => r.receiver.stop())));
    for (let i = 0; i < 2; i++) {
      rxs.push(await makeReceiver(`r${i + 1}`, src.manifest, group, port, key, 'tx-evict', { simulateLossRate: 0.04, pieceBufferBytes: 256 * 1024, reassemblyBytes: 4 * (chunkSize + 16) }));
    }
    const sender = createMulticastSender({ logger: silentLogger, collectStatus: collector(() => rxs) }, senderOptions(src.path, src.manifest, group, port, key, 'tx-evict', 100e6));
    const result = await sender.run(AbortSignal.timeout(60_000));
    assert.equal(result.complete, true);
    for (const r of rxs) {
      await r.receiver.whenComplete(AbortSignal.timeout(10_000));
      assert.ok(r.receiver.stats.spilled > 0, 'chunks were spilled');
      assert.equal(await sha256File(await r.partial.finalize()), src.manifest.sha256);
      assert.deepEqual(await partialsIn(r.dir), []);
    }
    assert.ok(rxs.some((r) => r.receiver.stats.restored > 0), 'two receivers losing different fragments were repaired with parity');
  });

  it('repairs receivers that lose different fragments with parity: fewer repair datagrams, the same exact copies', async (t) => {
    if (skipReason) return t.skip(skipReason);
    const src = await randomFile(work.dir, 'parity.bin', 6 * MiB + 777, MiB);
    const repairDatagrams: Record<string, number> = {};
    for (const parity of [false, true]) {
      const group = nextGroup();
      const port = await freePort();
      const key = randomBytes(32);
      const id = `tx-parity-${parity}`;
      const rxs: Rx[] = [];
      t.after(() => Promise.all(rxs.map((r) => r.receiver.stop())));
      for (let i = 0; i < 4; i++) rxs.push(await makeReceiver(`r${i + 1}`, src.manifest, group, port, key, id, { simulateLossRate: 0.04 }));
      const sender = createMulticastSender({ logger: silentLogger, collectStatus: collector(() => rxs) }, { ...senderOptions(src.path, src.manifest, group, port, key, id, 100e6), parity });
      const result = await sender.run(AbortSignal.timeout(60_000));
      assert.equal(result.complete, true);
      for (const r of rxs) {
        await r.receiver.whenComplete(AbortSignal.timeout(10_000));
        assert.equal(await sha256File(await r.partial.finalize()), src.manifest.sha256);
        assert.deepEqual(await partialsIn(r.dir), []);
      }
      const restored = rxs.reduce((a, r) => a + r.receiver.stats.restored, 0);
      if (parity) assert.ok(restored > 0, 'fragments were restored from parity');
      else assert.equal(restored, 0);
      // Every datagram beyond one copy of the file is repair (pass 1 sends each fragment once).
      const fileDatagrams = Math.ceil((src.manifest.size / chunkSize)) * Math.ceil((chunkSize + 16) / (1500 - 28 - 24));
      repairDatagrams[String(parity)] = result.datagrams - fileDatagrams;
    }
    console.log(`# repair datagrams for four receivers at 4 % loss each: ${repairDatagrams.false} without parity, ${repairDatagrams.true} with`);
    assert.ok(repairDatagrams.true < 0.8 * repairDatagrams.false, JSON.stringify(repairDatagrams));
  });

  it('ends with correct copies when every datagram also arrives a second time, late and out of order', async (t) => {
    if (skipReason) return t.skip(skipReason);
    // No netem on this kernel: a tap on the group re-sends every genuine datagram (the sender's, not its own)
    // in shuffled batches, so receivers see duplicates and reordering across chunks and passes.
    const dgram = await import('node:dgram');
    const src = await randomFile(work.dir, 'replayed.bin', 4 * MiB + 4321, MiB);
    const group = nextGroup();
    const port = await freePort();
    const key = randomBytes(32);
    const rxs: Rx[] = [];
    for (let i = 0; i < 2; i++) rxs.push(await makeReceiver(`d${i + 1}`, src.manifest, group, port, key, 'tx-replay'));
    const tap = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    const out = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => tap.bind(port, group, () => resolve()));
    tap.addMembership(group, '127.0.0.1');
    tap.setRecvBufferSize(4 * MiB);
    await new Promise<void>((resolve) => out.bind(0, '127.0.0.1', resolve));
    out.setMulticastInterface('127.0.0.1');
    out.setMulticastLoopback(true);
    const outPort = out.address().port;
    const maxReplays = 20_000;
    let held: Buffer[] = [];
    let replayed = 0;
    const flush = () => {
      for (let i = held.length - 1; i > 0; i--) {
        const j = Math.floor(Math.random() * (i + 1));
        [held[i], held[j]] = [held[j], held[i]];
      }
      for (const b of held) {
        if (replayed >= maxReplays) break;
        out.send(b, port, group);
        replayed++;
      }
      held = [];
    };
    tap.on('message', (msg, rinfo) => {
      if (rinfo.port === outPort) return;
      held.push(msg);
      if (held.length >= 64) flush();
    });
    const timer = setInterval(flush, 20);
    t.after(async () => {
      clearInterval(timer);
      tap.close();
      out.close();
      await Promise.all(rxs.map((r) => r.receiver.stop()));
    });
    const sender = createMulticastSender({ logger: silentLogger, collectStatus: collector(() => rxs) }, senderOptions(src.path, src.manifest, group, port, key, 'tx-replay', 50e6));
    const result = await sender.run(AbortSignal.timeout(60_000));
    assert.equal(result.complete, true, JSON.stringify(result.passes.map((p) => p.missing)));
    assert.ok(replayed > 0, 'the tap replayed datagrams');
    for (const r of rxs) {
      await r.receiver.whenComplete(AbortSignal.timeout(10_000));
      const final = await r.partial.finalize();
      assert.equal(await sha256File(final), src.manifest.sha256);
      assert.deepEqual(await partialsIn(r.dir), []);
      assert.ok(r.receiver.stats.duplicates > 0, `receiver ${r.id} saw duplicates`);
    }
  });

  it('gives a non-member that records every datagram nothing but ciphertext', async (t) => {
    if (skipReason) return t.skip(skipReason);
    const dgram = await import('node:dgram');
    const { createChunkSealer, wireTransferId } = await import('../../src/crypto/chunk-seal.ts');
    const { decodeDatagram, fragmentSpan } = await import('../../src/protocol/datagram.ts');
    const src = await randomFile(work.dir, 'secret.bin', 2 * MiB + 777, MiB);
    const group = nextGroup();
    const port = await freePort();
    const key = randomBytes(32);
    const rx = await makeReceiver('member', src.manifest, group, port, key, 'tx-secret');
    const spy = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    const captured: Buffer[] = [];
    await new Promise<void>((resolve) => spy.bind(port, group, () => resolve()));
    spy.addMembership(group, '127.0.0.1');
    spy.setRecvBufferSize(4 * MiB);
    spy.on('message', (msg) => captured.push(msg));
    t.after(async () => { spy.close(); await rx.receiver.stop(); });
    const sender = createMulticastSender({ logger: silentLogger, collectStatus: collector(() => [rx]) }, senderOptions(src.path, src.manifest, group, port, key, 'tx-secret', 100e6));
    const result = await sender.run(AbortSignal.timeout(60_000));
    assert.equal(result.complete, true);
    const capture = Buffer.concat(captured);
    assert.ok(capture.length > src.manifest.size, 'the spy heard the transfer');
    // Every 8-aligned 8-byte word of the file; any plaintext run of 15+ bytes in the capture contains one.
    const words = new Set<bigint>();
    for (let i = 0; i + 8 <= src.bytes.length; i += 8) words.add(src.bytes.readBigUInt64BE(i));
    let hits = 0;
    for (let i = 0; i + 8 <= capture.length; i++) if (words.has(capture.readBigUInt64BE(i))) hits++;
    assert.equal(hits, 0, 'plaintext found in the capture');
    // The spy can put chunk 0 together, but without the key it cannot open it.
    const frags = captured.map((b) => { try { return decodeDatagram(b); } catch { return null; } })
      .filter((d): d is DataDatagram => d !== null && d.kind === DatagramKind.DATA && d.chunk === 0);
    const sealedLen = chunkSize + 16;
    const sealed = Buffer.alloc(sealedLen);
    const seen = new Set<number>();
    for (const d of frags) { sealed.set(d.payload, fragmentSpan(sealedLen, d.fragments, d.fragment).offset); seen.add(d.fragment); }
    assert.equal(seen.size, frags[0].fragments);
    assert.throws(() => createChunkSealer(randomBytes(32), wireTransferId('tx-secret')).open(0, 0, sealed));
    assert.ok(createChunkSealer(key, wireTransferId('tx-secret')).open(0, 0, sealed).equals(src.bytes.subarray(0, chunkSize)));
  });

  it('slows down for a receiver that says it drops datagrams because it cannot keep up, and not otherwise', async (t) => {
    if (skipReason) return t.skip(skipReason);
    // 12 MiB at 100 Mbit/s is three segments of pass 1, so receivers are asked during the pass. Loopback loses
    // nothing here; one run's receiver also reports that it dropped 5 % of the datagrams for a full disk queue.
    const src = await randomFile(work.dir, 'overload.bin', 12 * MiB, MiB);
    const ceiling = 100e6;
    const finals: number[] = [];
    for (const overloadRate of [0, 0.05]) {
      const group = nextGroup();
      const port = await freePort();
      const key = randomBytes(32);
      const id = `tx-overload-${overloadRate}`;
      const rx = await makeReceiver('r1', src.manifest, group, port, key, id);
      t.after(() => rx.receiver.stop());
      const ask = collector(() => [rx]);
      const collectStatus = async (pass: number, signal: AbortSignal) => (await ask(pass, signal)).map((s) => ({ ...s, overloadRate }));
      const result = await createMulticastSender({ logger: silentLogger, collectStatus }, senderOptions(src.path, src.manifest, group, port, key, id, ceiling)).run(AbortSignal.timeout(60_000));
      assert.equal(result.complete, true);
      await rx.receiver.whenComplete(AbortSignal.timeout(10_000));
      assert.equal(await sha256File(await rx.partial.finalize()), src.manifest.sha256);
      finals.push(result.finalRateBps);
    }
    assert.equal(finals[0], ceiling, 'no overload, no loss: the rate stays at the ceiling');
    assert.ok(finals[1] < ceiling * 0.95, `an overloaded receiver lowers the rate: ended at ${finals[1]} of ${ceiling} bit/s`);
  });

  it('leaves a receiver that multicast does not reach to the swarm instead of resending everything for it', async (t) => {
    if (skipReason) return t.skip(skipReason);
    const src = await randomFile(work.dir, 'deaf.bin', 2 * MiB, MiB);
    const group = nextGroup();
    const port = await freePort();
    const key = randomBytes(32);
    const hearing = await makeReceiver('hearing', src.manifest, group, port, key, 'tx-deaf');
    // Joined to another group: it hears nothing of this transfer, like a host behind a router.
    const deaf = await makeReceiver('deaf', src.manifest, nextGroup(), port, key, 'tx-deaf');
    t.after(() => Promise.all([hearing.receiver.stop(), deaf.receiver.stop()]));
    const sender = createMulticastSender({ logger: silentLogger, collectStatus: collector(() => [hearing, deaf]) }, senderOptions(src.path, src.manifest, group, port, key, 'tx-deaf', 100e6));
    const result = await sender.run(AbortSignal.timeout(60_000));
    assert.equal(result.complete, false);
    assert.deepEqual(result.unreached, ['deaf']);
    // Repair passes (if the hearing receiver lost a datagram) never resend the file for the deaf one.
    assert.ok(result.passes.slice(1).every((p) => p.datagrams < result.passes[0].datagrams / 10), JSON.stringify(result.passes.map((p) => p.datagrams)));
    await hearing.receiver.whenComplete(AbortSignal.timeout(10_000));
    assert.equal(deaf.receiver.stats.firstDataAt, null);
    assert.equal(await sha256File(await hearing.partial.finalize()), src.manifest.sha256);
  });

  it('refuses to resend a chunk whose bytes changed on disk since pass 1 (a nonce never covers two plaintexts)', async (t) => {
    if (skipReason) return t.skip(skipReason);
    const { open } = await import('node:fs/promises');
    const { ErrorCode, isShoalError } = await import('../../src/protocol/errors.ts');
    const src = await randomFile(work.dir, 'changing.bin', 2 * MiB, MiB);
    const group = nextGroup();
    const port = await freePort();
    const key = randomBytes(32);
    const rx = await makeReceiver('lossy', src.manifest, group, port, key, 'tx-change', { simulateLossRate: 0.05 });
    t.after(() => rx.receiver.stop());
    const collect = collector(() => [rx]);
    const sender = createMulticastSender({
      logger: silentLogger,
      collectStatus: async (pass, signal) => {
        const statuses = await collect(pass, signal);
        // Rewrite the whole file between passes: every repair would reuse a nonce over new bytes.
        const fh = await open(src.path, 'r+');
        await fh.write(randomBytes(src.manifest.size), 0, src.manifest.size, 0);
        await fh.close();
        return statuses;
      },
    }, senderOptions(src.path, src.manifest, group, port, key, 'tx-change', 100e6));
    await assert.rejects(sender.run(AbortSignal.timeout(60_000)), (e) => isShoalError(e, ErrorCode.HASH_MISMATCH));
    assert.equal(rx.partial.complete, false);
  });

  it('lets a receiver stopped mid-transfer resume from its verified pieces instead of starting over', async (t) => {
    if (skipReason) return t.skip(skipReason);
    const src = await randomFile(work.dir, 'resume.bin', 8 * MiB, MiB);
    const group = nextGroup();
    const port = await freePort();
    const key = randomBytes(32);
    const steady = await makeReceiver('steady', src.manifest, group, port, key, 'tx-resume');
    let flaky = await makeReceiver('flaky', src.manifest, group, port, key, 'tx-resume');
    const flakyDir = flaky.dir;
    const rxs = () => [steady, flaky];
    t.after(() => Promise.all(rxs().map((r) => r.receiver.stop())));
    const sender = createMulticastSender({ logger: silentLogger, collectStatus: collector(rxs) }, senderOptions(src.path, src.manifest, group, port, key, 'tx-resume', 40e6));
    const running = sender.run(AbortSignal.timeout(60_000));
    // Stop the flaky receiver once it holds a few pieces, leave a gap, then restart it on the same partial file.
    for (let i = 0; i < 400 && flaky.partial.verifiedCount < 3; i++) await new Promise((r) => setTimeout(r, 25));
    assert.ok(flaky.partial.verifiedCount >= 3, 'flaky receiver got pieces before the restart');
    await flaky.receiver.stop();
    await flaky.partial.close();
    await new Promise((r) => setTimeout(r, 300));
    flaky = await makeReceiver('flaky', src.manifest, group, port, key, 'tx-resume', { dir: flakyDir });
    assert.ok(flaky.partial.resumedCount >= 3, 'restart resumed verified pieces');
    const result = await running;
    assert.equal(result.complete, true, JSON.stringify(result.passes.map((p) => p.missing)));
    await flaky.receiver.whenComplete(AbortSignal.timeout(10_000));
    const totalChunks = src.manifest.size / chunkSize;
    assert.ok(flaky.receiver.stats.chunks < totalChunks, `restarted receiver took ${flaky.receiver.stats.chunks} of ${totalChunks} chunks again`);
    // What it missed while down was resent (during the first pass or in a later one).
    const oneSending = totalChunks * Math.ceil((chunkSize + 16) / (1500 - 28 - 24));
    assert.ok(result.datagrams > oneSending, `sent ${result.datagrams} datagrams, one sending is ${oneSending}`);
    for (const r of rxs()) assert.equal(await sha256File(await r.partial.finalize()), src.manifest.sha256);
  });

  it('asks again for a piece whose record on disk failed, and still ends with an exact copy', async (t) => {
    if (skipReason) return t.skip(skipReason);
    const src = await randomFile(work.dir, 'record-fails.bin', 4 * MiB, 256 * 1024);
    const group = nextGroup();
    const port = await freePort();
    const key = randomBytes(32);
    // The disk refuses to record piece 5 the first time (a full disk when the resume state is written).
    let refused = 0;
    const flaky = (partial: PartialFile): MulticastPartial => ({
      manifest: partial.manifest,
      tempPath: partial.tempPath,
      get complete() { return partial.complete; },
      has: (i) => partial.has(i),
      writeAt: (offset, bytes) => partial.writeAt(offset, bytes),
      verifyPiece: (i, bytes) => partial.verifyPiece(i, bytes),
      acceptPiece: (i, bytes, release) => {
        if (i !== 5 || refused++ > 0) return partial.acceptPiece(i, bytes, release);
        if (bytes && release) release(bytes);
        return Promise.reject(new Error('ENOSPC: no space left on device'));
      },
    });
    const rx = await makeReceiver('r1', src.manifest, group, port, key, 'tx-record', { disk: flaky });
    const { receiver, partial, dir } = rx;
    t.after(() => receiver.stop());
    const sender = createMulticastSender({ logger: silentLogger, collectStatus: collector(() => [rx]) }, senderOptions(src.path, src.manifest, group, port, key, 'tx-record', 100e6));
    const result = await sender.run(AbortSignal.timeout(60_000));
    assert.equal(result.complete, true);
    await receiver.whenComplete(AbortSignal.timeout(10_000));
    assert.equal(refused, 2, 'piece 5 was refused once, then sent again and recorded');
    assert.equal(receiver.stats.pieceFailures, 1);
    assert.equal(await sha256File(await partial.finalize()), src.manifest.sha256);
    assert.deepEqual(await partialsIn(dir), []);
  });
});
