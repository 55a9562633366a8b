import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { isShoalError } from '../../src/protocol/errors.ts';
import { createPieceClient } from '../../src/transfer/swarm/piece-client.ts';
import { makeTls, type Tls } from './helpers.ts';

/** An HTTPS server on 127.0.0.1 answering with `handler`; counts connections. */
async function serve(tls: Tls, handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; url: string; connections: () => number }> {
  const server = createServer({ cert: tls.cert, key: tls.key }, handler);
  let n = 0;
  server.on('secureConnection', () => n++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { server, url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, connections: () => n };
}

async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
}

describe('piece client', () => {
  let tls: Tls;
  let other: Tls;
  const body = randomBytes(300_000);
  before(() => {
    tls = makeTls();
    other = makeTls();
  });

  it('fetches bodies into the given buffer over one kept-alive connection', async () => {
    const s = await serve(tls, (req, res) => {
      res.setHeader('content-length', String(body.length));
      res.end(body);
    });
    const client = createPieceClient({ url: s.url, fingerprint: tls.fingerprint, connections: 2 });
    try {
      for (let i = 0; i < 3; i++) {
        const into = Buffer.alloc(body.length);
        let seen = 0;
        const r = await client.get(`/pieces/x/${i}`, { authorization: 'Bearer t' }, into, (n) => (seen += n), AbortSignal.timeout(10_000));
        assert.equal(r.status, 200);
        assert.equal(r.length, body.length);
        assert.equal(seen, body.length);
        assert.ok(into.equals(body));
      }
      assert.equal(s.connections(), 1);
    } finally {
      client.close();
      await close(s.server);
    }
  });

  it('returns the text of an error answer', async () => {
    const s = await serve(tls, (req, res) => {
      res.statusCode = 404;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ error: { code: 'PIECE_NOT_FOUND', message: 'no' } }));
    });
    const client = createPieceClient({ url: s.url, fingerprint: tls.fingerprint, connections: 1 });
    try {
      const r = await client.get('/pieces/x/0', {}, Buffer.alloc(16), () => undefined, AbortSignal.timeout(10_000));
      assert.equal(r.status, 404);
      assert.equal(JSON.parse(r.text).error.code, 'PIECE_NOT_FOUND');
    } finally {
      client.close();
      await close(s.server);
    }
  });

  it('returns a 200 body as text when no buffer is given (a bitfield)', async () => {
    const s = await serve(tls, (req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ have: 'AA' }));
    });
    const client = createPieceClient({ url: s.url, fingerprint: tls.fingerprint, connections: 1 });
    try {
      const r = await client.get('/pieces/x', {}, null, () => undefined, AbortSignal.timeout(10_000));
      assert.equal(r.status, 200);
      assert.equal(JSON.parse(r.text).have, 'AA');
    } finally {
      client.close();
      await close(s.server);
    }
  });

  it('asks again on a fresh connection when the holder drops a kept-alive one unanswered', async () => {
    const answered = new WeakSet<Socket>();
    const s = await serve(tls, (req, res) => {
      // Every connection answers once, then drops the next request without a word.
      if (answered.has(req.socket)) {
        req.socket.destroy();
        return;
      }
      answered.add(req.socket);
      res.setHeader('content-length', String(body.length));
      res.end(body);
    });
    const client = createPieceClient({ url: s.url, fingerprint: tls.fingerprint, connections: 1 });
    try {
      for (let i = 0; i < 2; i++) {
        const into = Buffer.alloc(body.length);
        const r = await client.get(`/pieces/x/${i}`, {}, into, () => undefined, AbortSignal.timeout(10_000));
        assert.equal(r.status, 200);
        assert.ok(into.equals(body));
      }
      assert.equal(s.connections(), 2);
    } finally {
      client.close();
      await close(s.server);
    }
  });

  it('refuses a holder whose certificate is not the pinned one, before sending the request', async () => {
    let requests = 0;
    const s = await serve(other, (req, res) => {
      requests++;
      res.end('x');
    });
    const client = createPieceClient({ url: s.url, fingerprint: tls.fingerprint, connections: 1 });
    try {
      await assert.rejects(
        client.get('/pieces/x/0', { authorization: 'Bearer secret' }, Buffer.alloc(16), () => undefined, AbortSignal.timeout(10_000)),
        (err: unknown) => isShoalError(err, 'TLS_FINGERPRINT_MISMATCH'),
      );
      assert.equal(requests, 0);
    } finally {
      client.close();
      await close(s.server);
    }
  });

  it('fails with HASH_MISMATCH when a 200 answer is longer than the piece', async () => {
    const s = await serve(tls, (req, res) => {
      res.setHeader('content-length', String(body.length));
      res.end(body);
    });
    const client = createPieceClient({ url: s.url, fingerprint: tls.fingerprint, connections: 1 });
    try {
      await assert.rejects(
        client.get('/pieces/x/0', {}, Buffer.alloc(1000), () => undefined, AbortSignal.timeout(10_000)),
        (err: unknown) => isShoalError(err, 'HASH_MISMATCH'),
      );
    } finally {
      client.close();
      await close(s.server);
    }
  });

  it('rejects with the signal reason when aborted mid-answer', async () => {
    const s = await serve(tls, (req, res) => {
      res.setHeader('content-length', String(body.length));
      res.write(body.subarray(0, 1000)); // and never the rest
    });
    const client = createPieceClient({ url: s.url, fingerprint: tls.fingerprint, connections: 1 });
    const ac = new AbortController();
    try {
      const p = client.get('/pieces/x/0', {}, Buffer.alloc(body.length), () => ac.abort(new Error('stop')), AbortSignal.any([ac.signal, AbortSignal.timeout(10_000)]));
      await assert.rejects(p, /stop/);
    } finally {
      client.close();
      await close(s.server);
    }
  });
});
