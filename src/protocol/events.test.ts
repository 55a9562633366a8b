import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeClientMessage, decodeServerMessage, encodeMessage, WsClose, type HelloMsg } from './events.ts';
import { Limits } from './limits.ts';

describe('WebSocket message codec', () => {
  it('round-trips a hello', () => {
    const hello = {
      type: 'hello',
      agentId: 'a1',
      name: 'box',
      version: '0.1.0',
      listenUrl: null,
      fingerprint: null,
      holdings: ['a'.repeat(64)],
    } satisfies HelloMsg;
    const r = decodeClientMessage(encodeMessage(hello));
    assert.deepEqual(r, { ok: true, msg: hello });
  });

  it('refuses a message that is not JSON with the malformed close code', () => {
    const r = decodeClientMessage('{nope');
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.close, WsClose.MALFORMED);
  });

  it('refuses an unknown type and a wrong field', () => {
    assert.equal(decodeClientMessage(JSON.stringify({ type: 'rm -rf' })).ok, false);
    assert.equal(
      decodeClientMessage(
        JSON.stringify({ type: 'progress', deliveryId: 'd', bytes: -1, rate: 0, transport: 'swarm' }),
      ).ok,
      false,
    );
  });

  it('refuses a message over the size limit before parsing it', () => {
    const big = JSON.stringify({ type: 'heartbeat', pad: 'x'.repeat(Limits.wsMessageBytes) });
    const r = decodeClientMessage(big);
    assert.equal(!r.ok && r.close, WsClose.TOO_LARGE);
  });

  it('decodes a probe sent by the coordinator', () => {
    assert.deepEqual(decodeServerMessage(JSON.stringify({ type: 'probe', probeId: 'p' })), {
      ok: true,
      msg: { type: 'probe', probeId: 'p' },
    });
  });
});
