import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFile, open, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { silentLogger } from '../../src/logger.ts';
import { isShoalError } from '../../src/protocol/errors.ts';
import { signTicket } from '../../src/crypto/tickets.ts';
import { openPartialFile } from '../../src/transfer/pieces/partial-file.ts';
import { pieceRange } from '../../src/transfer/pieces/piece-map.ts';
import { createPieceRegistry } from '../../src/transfer/swarm/piece-source.ts';
import { downloadFile, type DownloadProgress } from '../../src/transfer/swarm/downloader.ts';
import { Scratch, generateTicketKeys, makeTls, sampleFile, startHolder, ticketFor, type Tls } from './helpers.ts';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('swarm downloader', () => {
  const scratch = new Scratch();
  const keys = generateTicketKeys();
  let tls: Tls;
  before(() => {
    tls = makeTls();
  });
  after(() => scratch.cleanup());

  it('fetches a file over many streams from one holder', async () => {
    const file = await sampleFile(scratch, 3_000_000, 64 * 1024);
    const h = await startHolder(scratch, { id: 'seed', keys, tls, file });
    const dest = await scratch.dir();
    const partial = await openPartialFile({ manifest: file.manifest, destDir: dest, logger: silentLogger });
    const progress: DownloadProgress[] = [];
    const result = await downloadFile({
      manifest: file.manifest, holders: [h.holder], ticket: ticketFor(keys, file.manifest.sha256), partial, streams: 16,
      logger: silentLogger, onProgress: (p) => progress.push(p),
    });
    const path = await partial.finalize();
    assert.equal(sha(await readFile(path)), file.manifest.sha256);
    assert.equal(result.piecesFetched, file.manifest.pieces.length);
    assert.equal(result.bytesPerHolder.seed, file.manifest.size);
    assert.deepEqual(result.badHolders, []);
    assert.equal(progress.at(-1)?.bytes, file.manifest.size);
    // Several connections were really used: the server saw requests from several sockets.
    const sockets = new Set(h.events.map((e) => e.remote));
    assert.ok(sockets.size > 1, `${sockets.size} connection(s) used`);
  });

  it('gets a correct file from three holders when one corrupts pieces, and reports the bad one', async () => {
    const file = await sampleFile(scratch, 40 * 32 * 1024, 32 * 1024);
    const evilPath = join(await scratch.dir(), 'evil.bin');
    await copyFile(file.path, evilPath);
    // Flip one byte in every piece so whichever piece it is asked for is bad.
    const fh = await open(evilPath, 'r+');
    for (let i = 0; i < file.manifest.pieces.length; i++) {
      const { offset } = pieceRange(file.manifest, i);
      await fh.write(Buffer.from([file.data[offset + 7] ^ 0x55]), 0, 1, offset + 7);
    }
    await fh.close();
    const a = await startHolder(scratch, { id: 'a', keys, tls, file });
    const evil = await startHolder(scratch, { id: 'evil', keys, tls, file: { manifest: file.manifest, path: evilPath } });
    const b = await startHolder(scratch, { id: 'b', keys, tls, file });
    const dest = await scratch.dir();
    const partial = await openPartialFile({ manifest: file.manifest, destDir: dest, logger: silentLogger });
    const result = await downloadFile({
      manifest: file.manifest, holders: [a.holder, evil.holder, b.holder], ticket: ticketFor(keys, file.manifest.sha256),
      partial, streams: 2, logger: silentLogger,
    });
    const path = await partial.finalize();
    assert.equal(sha(await readFile(path)), file.manifest.sha256);
    assert.deepEqual(result.badHolders.map((x) => x.id), ['evil']);
    assert.ok(evil.events.length >= 1, 'the corrupting holder was asked at least once');
    assert.ok((result.bytesPerHolder.a ?? 0) + (result.bytesPerHolder.b ?? 0) >= file.manifest.size);
  });

  it('combines holders that each have only some of the pieces', async () => {
    const file = await sampleFile(scratch, 10 * 16 * 1024, 16 * 1024);
    const halves = [0, 1].map(async (parity) => {
      const partial = await openPartialFile({ manifest: file.manifest, destDir: await scratch.dir(), logger: silentLogger });
      for (let i = parity; i < file.manifest.pieces.length; i += 2) {
        const { offset, length } = pieceRange(file.manifest, i);
        await partial.writePiece(i, file.data.subarray(offset, offset + length));
      }
      const reg = createPieceRegistry();
      reg.addPartial(partial);
      return startHolder(scratch, { id: `half${parity}`, keys, tls, source: reg });
    });
    const [even, odd] = await Promise.all(halves);
    const partial = await openPartialFile({ manifest: file.manifest, destDir: await scratch.dir(), logger: silentLogger });
    const result = await downloadFile({
      manifest: file.manifest, holders: [even.holder, odd.holder], ticket: ticketFor(keys, file.manifest.sha256), partial, logger: silentLogger,
    });
    assert.equal(sha(await readFile(await partial.finalize())), file.manifest.sha256);
    assert.equal(result.bytesPerHolder.half0, 5 * 16 * 1024);
    assert.equal(result.bytesPerHolder.half1, 5 * 16 * 1024);
  });

  it('lets two receivers of the same file finish from each other', async () => {
    const file = await sampleFile(scratch, 12 * 16 * 1024, 16 * 1024);
    // Seed "even" has only even pieces and serves only A; seed "odd" has only odd pieces and serves only B:
    // each receiver can finish only with what the other one verified meanwhile.
    const seed = async (parity: number, user: string) => {
      const partial = await openPartialFile({ manifest: file.manifest, destDir: await scratch.dir(), logger: silentLogger });
      for (let i = parity; i < file.manifest.pieces.length; i += 2) {
        const { offset, length } = pieceRange(file.manifest, i);
        await partial.writePiece(i, file.data.subarray(offset, offset + length));
      }
      const reg = createPieceRegistry();
      reg.addPartial(partial);
      return startHolder(scratch, { id: `seed${parity}`, keys, tls, source: reg, deps: { authorize: (c) => c.user === user } });
    };
    const receiver = async (user: string) => {
      const partial = await openPartialFile({ manifest: file.manifest, destDir: await scratch.dir(), logger: silentLogger });
      const reg = createPieceRegistry();
      reg.addPartial(partial);
      return { user, partial, server: await startHolder(scratch, { id: user, keys, tls, source: reg }) };
    };
    const [s0, s1, a, b] = await Promise.all([seed(0, 'a'), seed(1, 'b'), receiver('a'), receiver('b')]);
    const run = (me: typeof a, seedHolder: typeof s0, other: typeof a) =>
      downloadFile({
        manifest: file.manifest, holders: [seedHolder.holder, other.server.holder], ticket: ticketFor(keys, file.manifest.sha256, me.user),
        partial: me.partial, logger: silentLogger, haveRefreshMs: 100,
      });
    const [ra, rb] = await Promise.all([run(a, s0, b), run(b, s1, a)]);
    assert.equal(ra.bytesPerHolder.b, 6 * 16 * 1024);
    assert.equal(rb.bytesPerHolder.a, 6 * 16 * 1024);
    assert.equal(sha(await readFile(await a.partial.finalize())), file.manifest.sha256);
    assert.equal(sha(await readFile(await b.partial.finalize())), file.manifest.sha256);
  });

  it('finishes pieces stuck at a holder that stopped answering by asking another one (end game)', { timeout: 25_000 }, async () => {
    const file = await sampleFile(scratch, 10 * 16 * 1024, 16 * 1024);
    const reg = createPieceRegistry();
    reg.addFile(file.manifest, file.path);
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    // Accepts requests and never answers them until the test ends.
    const stuck = await startHolder(scratch, {
      id: 'stuck', keys, tls,
      source: { has: async (sha, i) => (await released, reg.has(sha, i)), open: (sha) => reg.open(sha), bitfield: (sha) => reg.bitfield!(sha) },
    });
    const good = await startHolder(scratch, { id: 'good', keys, tls, file });
    const partial = await openPartialFile({ manifest: file.manifest, destDir: await scratch.dir(), logger: silentLogger });
    try {
      const result = await downloadFile({
        manifest: file.manifest, holders: [stuck.holder, good.holder], ticket: ticketFor(keys, file.manifest.sha256), partial,
        // Only the end game can finish the stuck pieces within the test's time limit: requests are not
        // abandoned for a long time (idle timeout 30 s, request 10 min).
        streams: 2, logger: silentLogger, requestTimeoutMs: 600_000,
      });
      assert.equal(result.bytesPerHolder.stuck, 0);
      assert.ok(stuck.events.length === 0 && result.piecesFetched === file.manifest.pieces.length);
      assert.equal(result.bytesPerHolder.good, file.manifest.size);
      assert.equal(sha(await readFile(await partial.finalize())), file.manifest.sha256);
    } finally {
      release();
    }
  });

  it('keeps at most maxRequests pieces in flight over many holders, and asks every holder', async () => {
    const file = await sampleFile(scratch, 96 * 32 * 1024, 32 * 1024);
    const reg = createPieceRegistry();
    reg.addFile(file.manifest, file.path);
    // Requests are counted from the holders' side: started when a holder looks the piece up, ended when served.
    let live = 0;
    let peak = 0;
    const counting = {
      has: async (s: string, i: number) => {
        peak = Math.max(peak, ++live);
        return reg.has(s, i);
      },
      open: (s: string) => reg.open(s),
      bitfield: (s: string) => reg.bitfield!(s), // so has() is asked once per piece request only
    };
    const servedBy = new Map<string, number>();
    const holders = [];
    for (let k = 0; k < 6; k++) {
      const id = `h${k}`;
      const h = await startHolder(scratch, {
        id, keys, tls, source: counting, options: { uploadBytesPerSecond: 2 * 1024 * 1024 },
        deps: { onServed: () => {
          live--;
          servedBy.set(id, (servedBy.get(id) ?? 0) + 1);
        } },
      });
      holders.push(h.holder);
    }
    const partial = await openPartialFile({ manifest: file.manifest, destDir: await scratch.dir(), logger: silentLogger });
    await downloadFile({
      manifest: file.manifest, holders, ticket: ticketFor(keys, file.manifest.sha256), partial, streams: 4, maxRequests: 6,
      logger: silentLogger,
    });
    assert.equal(sha(await readFile(await partial.finalize())), file.manifest.sha256);
    console.log(`# peak ${peak} requests in flight (limit 6); pieces per holder ${[...servedBy.values()].join('/')}`);
    assert.ok(peak <= 6, `${peak} requests in flight at once, limit 6`);
    assert.equal(servedBy.size, 6, 'every holder was asked');
  });

  it('fetches nothing again for pieces already verified', async () => {
    const file = await sampleFile(scratch, 8 * 16 * 1024, 16 * 1024);
    const h = await startHolder(scratch, { id: 'seed', keys, tls, file });
    const partial = await openPartialFile({ manifest: file.manifest, destDir: await scratch.dir(), logger: silentLogger });
    for (const i of [0, 3, 7]) await partial.writePiece(i, file.data.subarray(i * 16 * 1024, (i + 1) * 16 * 1024));
    const result = await downloadFile({ manifest: file.manifest, holders: [h.holder], ticket: ticketFor(keys, file.manifest.sha256), partial, logger: silentLogger });
    assert.equal(result.piecesResumed, 3);
    assert.equal(result.piecesFetched, 5);
    assert.equal(h.served(), 5 * 16 * 1024);
    assert.equal(sha(await readFile(await partial.finalize())), file.manifest.sha256);
  });

  it('fails with PEER_FAILED when no holder answers, keeping what it has', async () => {
    const file = await sampleFile(scratch, 4 * 16 * 1024, 16 * 1024);
    const h = await startHolder(scratch, { id: 'gone', keys, tls, file });
    const url = h.server.url;
    await h.server.stop();
    const partial = await openPartialFile({ manifest: file.manifest, destDir: await scratch.dir(), logger: silentLogger });
    await assert.rejects(
      downloadFile({
        manifest: file.manifest, holders: [{ ...h.holder, url }], ticket: ticketFor(keys, file.manifest.sha256), partial,
        logger: silentLogger, maxFailures: 2,
      }),
      (e) => isShoalError(e, 'PEER_FAILED'),
    );
    await partial.abort();
  });

  it('fails with TICKET_EXPIRED when every holder refuses an expired ticket', async () => {
    const file = await sampleFile(scratch, 4 * 16 * 1024, 16 * 1024);
    const h = await startHolder(scratch, { id: 'seed', keys, tls, file });
    const partial = await openPartialFile({ manifest: file.manifest, destDir: await scratch.dir(), logger: silentLogger });
    const expired = signTicket(keys.privateKey, { user: 'alice', sha256: file.manifest.sha256, expiresAt: Date.now() - 1000 });
    await assert.rejects(
      downloadFile({ manifest: file.manifest, holders: [h.holder], ticket: expired, partial, logger: silentLogger }),
      (e) => isShoalError(e, 'TICKET_EXPIRED'),
    );
    assert.equal(h.events.length, 0);
    await partial.abort();
  });

  it('asks for a fresh ticket when holders say it expired, and finishes', async () => {
    const file = await sampleFile(scratch, 6 * 16 * 1024, 16 * 1024);
    const h = await startHolder(scratch, { id: 'seed', keys, tls, file });
    const partial = await openPartialFile({ manifest: file.manifest, destDir: await scratch.dir(), logger: silentLogger });
    const expired = signTicket(keys.privateKey, { user: 'alice', sha256: file.manifest.sha256, expiresAt: Date.now() - 1000 });
    let refreshed = 0;
    await downloadFile({
      manifest: file.manifest, holders: [h.holder], ticket: expired, partial, logger: silentLogger,
      refreshTicket: async () => {
        refreshed++;
        return ticketFor(keys, file.manifest.sha256);
      },
    });
    assert.equal(refreshed, 1);
    assert.equal(sha(await readFile(await partial.finalize())), file.manifest.sha256);
  });

  it('fails with FORBIDDEN when the holder no longer lets the user fetch', async () => {
    const file = await sampleFile(scratch, 4 * 16 * 1024, 16 * 1024);
    const h = await startHolder(scratch, { id: 'seed', keys, tls, file, deps: { authorize: (c) => c.user !== 'removed' } });
    const partial = await openPartialFile({ manifest: file.manifest, destDir: await scratch.dir(), logger: silentLogger });
    await assert.rejects(
      downloadFile({ manifest: file.manifest, holders: [h.holder], ticket: ticketFor(keys, file.manifest.sha256, 'removed'), partial, logger: silentLogger }),
      (e) => isShoalError(e, 'FORBIDDEN'),
    );
    assert.equal(h.events.length, 0);
    await partial.abort();
  });

  it('stops with ABORTED when its signal fires', async () => {
    const file = await sampleFile(scratch, 64 * 16 * 1024, 16 * 1024);
    const reg = createPieceRegistry();
    reg.addFile(file.manifest, file.path);
    const slow = { has: async (s: string, i: number) => (await new Promise((r) => setTimeout(r, 20)), reg.has(s, i)), open: (s: string) => reg.open(s) };
    const h = await startHolder(scratch, { id: 'slow', keys, tls, source: slow });
    const partial = await openPartialFile({ manifest: file.manifest, destDir: await scratch.dir(), logger: silentLogger });
    const ac = new AbortController();
    let pieces = 0;
    await assert.rejects(
      downloadFile({
        manifest: file.manifest, holders: [h.holder], ticket: ticketFor(keys, file.manifest.sha256), partial, streams: 2,
        logger: silentLogger, signal: ac.signal, progressIntervalMs: 0,
        onProgress: () => {
          if (++pieces === 3) ac.abort();
        },
      }),
      (e) => isShoalError(e, 'ABORTED'),
    );
    assert.ok(partial.verifiedCount < file.manifest.pieces.length);
    await partial.close();
  });

  it('ends with the local error when the file stops taking bytes mid-piece, not with a holder failure', async () => {
    const file = await sampleFile(scratch, 32 * 64 * 1024, 64 * 1024);
    // A slow holder, so that pieces are mid-way when the file is closed under the download.
    const h = await startHolder(scratch, { id: 'seed', keys, tls, file, options: { uploadBytesPerSecond: 1024 * 1024 } });
    const partial = await openPartialFile({ manifest: file.manifest, destDir: await scratch.dir(), logger: silentLogger });
    let closed = false;
    await assert.rejects(
      downloadFile({
        manifest: file.manifest, holders: [h.holder], ticket: ticketFor(keys, file.manifest.sha256), partial, streams: 4,
        logger: silentLogger, progressIntervalMs: 0,
        onProgress: (p) => {
          if (!closed && p.bytes > 0) {
            closed = true;
            void partial.close();
          }
        },
      }),
      (e) => isShoalError(e, 'ABORTED') && /partial file is closed/.test((e as Error).message),
    );
    assert.equal(closed, true);
    assert.ok(partial.verifiedCount < file.manifest.pieces.length);
  });

  it('writes hostile catalogue names inside the download directory or not at all', async () => {
    const file = await sampleFile(scratch, 20_000, 16 * 1024);
    const h = await startHolder(scratch, { id: 'seed', keys, tls, file });
    const root = await scratch.dir();
    const dest = join(root, 'downloads');
    for (const name of ['../escape.bin', '/etc/passwd', 'a\u0000b', 'CON', '..', 'sub/../../x']) {
      await assert.rejects(
        openPartialFile({ manifest: { ...file.manifest, name }, destDir: dest, logger: silentLogger }),
        (e) => isShoalError(e, 'INVALID_NAME'),
        name,
      );
    }
    const partial = await openPartialFile({ manifest: { ...file.manifest, name: 'nested/dirs/inside.bin' }, destDir: dest, logger: silentLogger });
    await downloadFile({ manifest: file.manifest, holders: [h.holder], ticket: ticketFor(keys, file.manifest.sha256), partial, logger: silentLogger });
    assert.equal(await partial.finalize(), join(dest, 'inside.bin'));
    assert.deepEqual(await readdir(root), ['downloads']);
    assert.deepEqual(await readdir(dest), ['inside.bin']);
  });
});
