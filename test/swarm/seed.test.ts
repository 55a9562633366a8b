/** The original sharer as a seed of last resort: receivers that download together take from it only what
 * no one else has, so its uplink carries about one copy and they trade the rest. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { silentLogger } from '../../src/logger.ts';
import { openPartialFile } from '../../src/transfer/pieces/partial-file.ts';
import { createPieceRegistry } from '../../src/transfer/swarm/piece-source.ts';
import { downloadFile } from '../../src/transfer/swarm/downloader.ts';
import { Scratch, generateTicketKeys, makeTls, sampleFile, startHolder, ticketFor, type Tls } from './helpers.ts';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('swarm seed of last resort', () => {
  const scratch = new Scratch();
  const keys = generateTicketKeys();
  let tls: Tls;
  before(() => {
    tls = makeTls();
  });
  after(() => scratch.cleanup());

  it('two receivers downloading at once take about one copy from the seed and the rest from each other', async () => {
    const file = await sampleFile(scratch, 64 * 64 * 1024, 64 * 1024);
    const size = file.manifest.size;
    // The seed's uplink is the scarce one (as a coordinator's is, serving many receivers); the receivers' are
    // not. Like the coordinator's piece route, it gives no `sent` hint: the downloaders alone spread the load.
    const seed = await startHolder(scratch, {
      id: 'coordinator', keys, tls, file, options: { uploadBytesPerSecond: 4 * 1024 * 1024, sendCounter: undefined },
    });
    const ticket = ticketFor(keys, file.manifest.sha256);
    const receivers = await Promise.all(
      ['a', 'b'].map(async (id) => {
        const partial = await openPartialFile({ manifest: file.manifest, destDir: await scratch.dir(), logger: silentLogger });
        const reg = createPieceRegistry();
        reg.addPartial(partial);
        const server = await startHolder(scratch, { id, keys, tls, source: reg });
        return { id, partial, server };
      }),
    );
    const results = await Promise.all(
      receivers.map((r) =>
        downloadFile({
          manifest: file.manifest,
          holders: [seed.holder, ...receivers.filter((o) => o !== r).map((o) => o.server.holder)],
          ticket,
          partial: r.partial,
          streams: 4,
          haveRefreshMs: 100,
          stallTimeoutMs: 20_000,
          logger: silentLogger,
        }),
      ),
    );
    for (const r of receivers) assert.equal(sha(await readFile(await r.partial.finalize())), file.manifest.sha256);
    const fromSeed = results.reduce((n, r) => n + (r.bytesPerHolder.coordinator ?? 0), 0);
    const fromPeers = results.reduce((n, r, i) => n + (r.bytesPerHolder[receivers[1 - i].id] ?? 0), 0);
    // Counted on the servers too: what the seed handed to its sockets.
    const servedBySeed = seed.served();
    const copies = servedBySeed / size;
    console.log(`seed served ${copies.toFixed(2)} copies; receivers got ${(fromSeed / size).toFixed(2)} from the seed, ${(fromPeers / size).toFixed(2)} from each other`);
    assert.ok(copies <= 1.35, `the seed served ${copies.toFixed(2)} copies of the file`);
    assert.ok(fromPeers >= 0.6 * size, `only ${fromPeers} bytes came from the peers`);
    assert.equal(receivers.reduce((n, r) => n + r.server.served(), 0), fromPeers);
  });

  it('a seed alone gets every stream', async () => {
    const file = await sampleFile(scratch, 32 * 64 * 1024, 64 * 1024);
    const seed = await startHolder(scratch, { id: 'coordinator', keys, tls, file });
    const partial = await openPartialFile({ manifest: file.manifest, destDir: await scratch.dir(), logger: silentLogger });
    const result = await downloadFile({
      manifest: file.manifest, holders: [seed.holder], ticket: ticketFor(keys, file.manifest.sha256), partial, streams: 4, logger: silentLogger,
    });
    assert.equal(sha(await readFile(await partial.finalize())), file.manifest.sha256);
    assert.equal(result.bytesPerHolder.coordinator, file.manifest.size);
    assert.ok(new Set(seed.events.map((e) => e.remote)).size > 1, 'several connections to the lone seed');
  });
});
