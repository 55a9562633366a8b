/**
 * Fuzz: 100,000 random and mutated datagrams (random bytes, truncated headers, bad lengths, bad versions,
 * wrong transfer ids, out-of-range chunks and fragments, forged payloads that fail authentication) are fired
 * at a receiver on loopback while a real transfer runs. The receiver must not crash, must count what it
 * rejected, and must still end with the exact file.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { silentLogger } from '../../src/logger.ts';
import { openPartialFile } from '../../src/transfer/pieces/partial-file.ts';
import { createMulticastReceiver } from '../../src/transfer/multicast/receiver.ts';
import { createMulticastSender } from '../../src/transfer/multicast/sender.ts';
import { encodeDatagram, fragmentLayout, fragmentSpan } from '../../src/protocol/datagram.ts';
import { DatagramKind } from '../../src/protocol/datagram-types.ts';
import { wireTransferId } from '../../src/crypto/chunk-seal.ts';
import { freePort, loopbackMulticastProblem, nextGroup, partialsIn, randomFile, sha256File, tempDir } from './helpers.ts';

const MiB = 1024 * 1024;
const chunkSize = 64 * 1024;
let skipReason: string | null = null;
let work: Awaited<ReturnType<typeof tempDir>>;

before(async () => {
  skipReason = await loopbackMulticastProblem();
  if (skipReason) console.log(`# skipping multicast fuzz test: ${skipReason}`);
  work = await tempDir('shoal-mcfuzz-');
});
after(async () => {
  await work?.cleanup();
});

describe('multicast receiver under fuzz', () => {
  it('survives 100,000 hostile datagrams during a transfer, counts them and still writes the exact file', async (t) => {
    if (skipReason) return t.skip(skipReason);
    const src = await randomFile(work.dir, 'fuzzed.bin', 4 * MiB, MiB);
    const group = nextGroup();
    const port = await freePort();
    const key = randomBytes(32);
    const tid = wireTransferId('tx-fuzz');
    const dir = join(work.dir, 'rx');
    const partial = await openPartialFile({ manifest: src.manifest, destDir: dir, logger: silentLogger, durable: false });
    const receiver = createMulticastReceiver({ logger: silentLogger, partial }, {
      address: group, port, interface: '127.0.0.1', key, transferId: 'tx-fuzz', manifest: src.manifest, chunkSize, receiverId: 'victim',
    });
    await receiver.start();
    const fuzzer = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => fuzzer.bind(0, '127.0.0.1', resolve));
    fuzzer.setMulticastInterface('127.0.0.1');
    fuzzer.setMulticastLoopback(true);
    t.after(async () => { fuzzer.close(); await receiver.stop(); });

    const chunks = src.manifest.size / chunkSize;
    const { count } = fragmentLayout(chunkSize + 16, 1500 - 28 - 24);
    const valid = (id: Uint8Array, chunk: number, fragment: number) => encodeDatagram({
      kind: DatagramKind.DATA, transferId: id, chunk, epoch: 0, fragment, fragments: count,
      payload: randomBytes(fragmentSpan(chunkSize + 16, count, fragment).length),
    });
    const { size } = fragmentLayout(chunkSize + 16, 1500 - 28 - 24);
    const forgedParity = (chunk: number, index: number) => encodeDatagram({
      kind: DatagramKind.PARITY, transferId: tid, chunk, epoch: 0, fragment: index, fragments: count, payload: randomBytes(size),
    });
    const expected = { malformed: 0, wrongTransfer: 0, forged: 0 };
    const rnd = (n: number) => Math.floor(Math.random() * n);
    const hostile = (i: number): Buffer => {
      switch (i % 9) {
        case 0: expected.malformed++; return randomBytes(1 + rnd(1499)).fill(0, 0, 1); // never the magic
        case 1: expected.malformed++; return Buffer.from(valid(tid, rnd(chunks), rnd(count)).subarray(0, rnd(24)));
        case 2: { expected.malformed++; const b = Buffer.from(valid(tid, rnd(chunks), rnd(count))); b.writeUInt16BE((b.readUInt16BE(22) + 1 + rnd(100)) & 0xffff, 22); return b; }
        case 3: expected.wrongTransfer++; return Buffer.from(valid(randomBytes(8), rnd(chunks), rnd(count)));
        case 4: { expected.malformed++; const b = Buffer.from(valid(tid, rnd(chunks), 0)); b.writeUInt16BE(count + rnd(10), 18); return b; }
        case 5: { expected.malformed++; const b = Buffer.from(valid(tid, 0, rnd(count))); b.writeUInt32BE(chunks + rnd(1e6), 12); return b; }
        case 6: { expected.malformed++; const b = Buffer.from(valid(tid, rnd(chunks), rnd(count))); b[2] = 2 + rnd(200); return b; }
        case 7: expected.forged++; return Buffer.from(forgedParity(rnd(chunks), rnd(256 - count)));
        default: expected.forged++; return Buffer.from(valid(tid, rnd(chunks), rnd(count)));
      }
    };
    const total = 100_000;
    const fuzzing = (async () => {
      for (let i = 0; i < total;) {
        for (let k = 0; k < 25 && i < total; k++, i++) fuzzer.send(hostile(i), port, group);
        await new Promise((r) => setTimeout(r, 1));
      }
    })();
    const sender = createMulticastSender({
      logger: silentLogger,
      collectStatus: async (pass, signal) => {
        await receiver.waitPassEnd(pass, 1000, signal);
        await new Promise((r) => setTimeout(r, 50));
        return [receiver.status()];
      },
    }, { address: group, port, interface: '127.0.0.1', chunkSize, rateBps: 8e6, key, transferId: 'tx-fuzz', manifest: src.manifest, path: src.path, maxPasses: 20 });
    const result = await sender.run(AbortSignal.timeout(120_000));
    await fuzzing;
    assert.equal(result.complete, true, JSON.stringify({ passes: result.passes.map((p) => [p.datagrams, p.missing, p.loss]), unreached: result.unreached }));
    await receiver.whenComplete(AbortSignal.timeout(10_000));
    assert.equal(await sha256File(await partial.finalize()), src.manifest.sha256);
    assert.deepEqual(await partialsIn(dir), []);
    const s = receiver.stats;
    console.log(`# fuzz: sent ${JSON.stringify(expected)}, receiver rejected ${JSON.stringify(s.rejected)}, duplicates ${s.duplicates}, datagrams ${s.datagrams}`);
    // Loopback may drop a few under bursts, never invent any: counts are within [90%, 100%] of what was sent.
    assert.ok(s.rejected.malformed <= expected.malformed && s.rejected.malformed >= 0.9 * expected.malformed);
    assert.ok(s.rejected.wrongTransfer <= expected.wrongTransfer && s.rejected.wrongTransfer >= 0.9 * expected.wrongTransfer);
    assert.ok(s.rejected.auth > 0, 'forged fragments and parity poisoned some chunks, which failed authentication and were repaired');
  });
});
