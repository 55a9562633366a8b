import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { signTicket } from '../../src/crypto/tickets.ts';
import { createPinnedDispatcher } from '../../src/transfer/swarm/pinned-dispatcher.ts';
import { Bitfield } from '../../src/transfer/pieces/bitfield.ts';
import { createPieceRegistry } from '../../src/transfer/swarm/piece-source.ts';
import { createPieceServer } from '../../src/transfer/swarm/piece-server.ts';
import { openPartialFile } from '../../src/transfer/pieces/partial-file.ts';
import { silentLogger } from '../../src/logger.ts';
import { isShoalError } from '../../src/protocol/errors.ts';
import { Scratch, generateTicketKeys, makeTls, sampleFile, startHolder, ticketFor, type TestHolder, type Tls } from './helpers.ts';

describe('piece server', () => {
  const scratch = new Scratch();
  const keys = generateTicketKeys();
  let tls: Tls;
  let file: Awaited<ReturnType<typeof sampleFile>>;
  let h: TestHolder;
  let get: (path: string, headers?: Record<string, string>, method?: 'GET' | 'HEAD') => Promise<{ status: number; body: Buffer; headers: Record<string, unknown> }>;

  before(async () => {
    tls = makeTls();
    file = await sampleFile(scratch, 100_000, 32 * 1024);
    h = await startHolder(scratch, { id: 'seed', keys, tls, file });
    const dispatcher = createPinnedDispatcher({ fingerprint: tls.fingerprint, connections: 2 });
    scratch.closers.push(() => dispatcher.destroy());
    get = async (path, headers = {}, method = 'GET') => {
      const r = await request(`${h.server.url}${path}`, { dispatcher, headers, method });
      return { status: r.statusCode, body: Buffer.from(await r.body.arrayBuffer()), headers: r.headers };
    };
  });
  after(() => scratch.cleanup());

  const auth = (ticket: string) => ({ authorization: `Bearer ${ticket}` });
  const code = (body: Buffer) => (JSON.parse(body.toString()) as { error: { code: string } }).error.code;

  it('serves a piece to a valid ticket', async () => {
    const r = await get(`/pieces/${file.manifest.sha256}/1`, auth(ticketFor(keys, file.manifest.sha256)));
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, file.data.subarray(32 * 1024, 64 * 1024));
  });

  it('serves the short last piece whole', async () => {
    const r = await get(`/pieces/${file.manifest.sha256}/3`, auth(ticketFor(keys, file.manifest.sha256)));
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, file.data.subarray(3 * 32 * 1024));
  });

  it('answers a Range within a piece with 206', async () => {
    const r = await get(`/pieces/${file.manifest.sha256}/2`, { ...auth(ticketFor(keys, file.manifest.sha256)), range: 'bytes=100-199' });
    assert.equal(r.status, 206);
    assert.equal(r.headers['content-range'], `bytes 100-199/${32 * 1024}`);
    assert.deepEqual(r.body, file.data.subarray(2 * 32 * 1024 + 100, 2 * 32 * 1024 + 200));
  });

  it('refuses a range outside the piece with 416', async () => {
    const r = await get(`/pieces/${file.manifest.sha256}/2`, { ...auth(ticketFor(keys, file.manifest.sha256)), range: 'bytes=40000-' });
    assert.equal(r.status, 416);
    assert.equal(code(r.body), 'RANGE_NOT_SATISFIABLE');
  });

  it('lists the pieces it holds', async () => {
    const r = await get(`/pieces/${file.manifest.sha256}`, auth(ticketFor(keys, file.manifest.sha256)));
    assert.equal(r.status, 200);
    const body = JSON.parse(r.body.toString());
    assert.equal(body.pieceCount, 4);
    assert.equal(Bitfield.fromBase64Url(4, body.have).count, 4);
    // Pieces 1 and 3 were sent whole above; the range request into piece 2 does not count as a send.
    assert.deepEqual([...Buffer.from(body.sent, 'base64url')], [0, 1, 0, 1]);
  });

  it('refuses a request without a ticket', async () => {
    const r = await get(`/pieces/${file.manifest.sha256}/0`);
    assert.equal(r.status, 401);
    assert.equal(code(r.body), 'TICKET_INVALID');
  });

  it('refuses an expired ticket', async () => {
    const t = signTicket(keys.privateKey, { user: 'alice', sha256: file.manifest.sha256, expiresAt: Date.now() - 1 });
    const r = await get(`/pieces/${file.manifest.sha256}/0`, auth(t));
    assert.equal(r.status, 401);
    assert.equal(code(r.body), 'TICKET_EXPIRED');
  });

  it('refuses a forged ticket', async () => {
    const forger = generateTicketKeys();
    const r = await get(`/pieces/${file.manifest.sha256}/0`, auth(ticketFor(forger, file.manifest.sha256)));
    assert.equal(r.status, 401);
    assert.equal(code(r.body), 'TICKET_INVALID');
  });

  it('refuses a ticket for another file', async () => {
    const r = await get(`/pieces/${file.manifest.sha256}/0`, auth(ticketFor(keys, 'c'.repeat(64))));
    assert.equal(r.status, 401);
    assert.equal(code(r.body), 'TICKET_INVALID');
  });

  it('answers 404 for a file or a piece it does not hold', async () => {
    const other = 'd'.repeat(64);
    const r1 = await get(`/pieces/${other}/0`, auth(ticketFor(keys, other)));
    assert.equal(r1.status, 404);
    assert.equal(code(r1.body), 'FILE_NOT_FOUND');
    const r2 = await get(`/pieces/${file.manifest.sha256}/4`, auth(ticketFor(keys, file.manifest.sha256)));
    assert.equal(r2.status, 404);
    assert.equal(code(r2.body), 'PIECE_NOT_FOUND');
  });

  it('sends nothing to a holder whose certificate is not the pinned one', async () => {
    const served = h.events.length;
    const wrong = createPinnedDispatcher({ fingerprint: makeTls().fingerprint, connections: 1 });
    scratch.closers.push(() => wrong.destroy());
    await assert.rejects(
      request(`${h.server.url}/pieces/${file.manifest.sha256}/0`, { dispatcher: wrong, headers: auth(ticketFor(keys, file.manifest.sha256)) }),
      (e) => isShoalError(e, 'TLS_FINGERPRINT_MISMATCH'),
    );
    assert.equal(h.events.length, served);
  });

  it('serves the same bytes under an upload cap', async () => {
    const capped = createPieceServer(
      { logger: silentLogger, source: (() => { const r = createPieceRegistry(); r.addFile(file.manifest, file.path); return r; })(), publicKey: keys.publicKey },
      { tls, uploadBytesPerSecond: 4 * 1024 * 1024 },
    );
    await capped.start();
    scratch.closers.push(() => capped.stop());
    const dispatcher = createPinnedDispatcher({ fingerprint: tls.fingerprint, connections: 2 });
    scratch.closers.push(() => dispatcher.destroy());
    const r = await request(`${capped.url}/pieces/${file.manifest.sha256}/0`, { dispatcher, headers: auth(ticketFor(keys, file.manifest.sha256)) });
    assert.equal(r.statusCode, 200);
    assert.deepEqual(Buffer.from(await r.body.arrayBuffer()), file.data.subarray(0, 32 * 1024));
  });

  it('stops serving a file removed from its registry', async () => {
    const reg = createPieceRegistry();
    reg.addFile(file.manifest, file.path);
    const p = await startHolder(scratch, { id: 'removable', keys, tls, source: reg });
    const dispatcher = createPinnedDispatcher({ fingerprint: tls.fingerprint.toLowerCase().replaceAll(':', ''), connections: 1 });
    scratch.closers.push(() => dispatcher.destroy());
    const t = auth(ticketFor(keys, file.manifest.sha256));
    const held = await request(`${p.server.url}/pieces/${file.manifest.sha256}/0`, { dispatcher, headers: t });
    assert.equal(held.statusCode, 200);
    await held.body.dump();
    reg.remove(file.manifest.sha256);
    const gone = await request(`${p.server.url}/pieces/${file.manifest.sha256}/0`, { dispatcher, headers: t });
    assert.equal(gone.statusCode, 404);
    assert.equal(code(Buffer.from(await gone.body.arrayBuffer())), 'FILE_NOT_FOUND');
  });

  it('serves only the verified pieces of a partial file', async () => {
    const dest = await scratch.dir();
    const partial = await openPartialFile({ manifest: file.manifest, destDir: dest, logger: silentLogger });
    scratch.closers.push(() => partial.abort());
    await partial.writePiece(2, file.data.subarray(2 * 32 * 1024, 3 * 32 * 1024));
    const reg = createPieceRegistry();
    reg.addPartial(partial);
    const p = await startHolder(scratch, { id: 'partial', keys, tls, source: reg });
    const dispatcher = createPinnedDispatcher({ fingerprint: tls.fingerprint, connections: 1 });
    scratch.closers.push(() => dispatcher.destroy());
    const t = auth(ticketFor(keys, file.manifest.sha256));
    const ok = await request(`${p.server.url}/pieces/${file.manifest.sha256}/2`, { dispatcher, headers: t });
    assert.equal(ok.statusCode, 200);
    assert.deepEqual(Buffer.from(await ok.body.arrayBuffer()), file.data.subarray(2 * 32 * 1024, 3 * 32 * 1024));
    const missing = await request(`${p.server.url}/pieces/${file.manifest.sha256}/1`, { dispatcher, headers: t });
    assert.equal(missing.statusCode, 404);
    await missing.body.dump();
    const have = await request(`${p.server.url}/pieces/${file.manifest.sha256}`, { dispatcher, headers: t });
    const body = (await have.body.json()) as { have: string };
    assert.deepEqual(Bitfield.fromBase64Url(4, body.have).indexes(), [2]);
  });

  it('still refuses a ticket it verified before once it expired or for another file', async () => {
    let clock = Date.now();
    const c = await startHolder(scratch, { id: 'clocked', keys, tls, file, options: { now: () => clock } });
    const other = await sampleFile(scratch, 10_000, 32 * 1024);
    const dispatcher = createPinnedDispatcher({ fingerprint: tls.fingerprint, connections: 1 });
    scratch.closers.push(() => dispatcher.destroy());
    const ticket = signTicket(keys.privateKey, { user: 'alice', sha256: file.manifest.sha256, expiresAt: clock + 60_000 });
    const fetch = async (sha256: string) => {
      const r = await request(`${c.server.url}/pieces/${sha256}/0`, { dispatcher, headers: auth(ticket) });
      return { status: r.statusCode, body: Buffer.from(await r.body.arrayBuffer()) };
    };
    const first = await fetch(file.manifest.sha256);
    assert.equal(first.status, 200);
    assert.deepEqual(first.body, file.data.subarray(0, 32 * 1024));
    assert.equal((await fetch(file.manifest.sha256)).status, 200);
    const wrong = await fetch(other.manifest.sha256);
    assert.equal(wrong.status, 401);
    assert.equal(code(wrong.body), 'TICKET_INVALID');
    clock += 61_000;
    const late = await fetch(file.manifest.sha256);
    assert.equal(late.status, 401);
    assert.equal(code(late.body), 'TICKET_EXPIRED');
  });
});
