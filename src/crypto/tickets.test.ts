import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isShoalError } from '../protocol/errors.ts';
import {
  exportTicketKeys, generateTicketKeys, importTicketKeys, importTicketPublicKey, publicKeyToRaw, signTicket, verifyTicket,
} from './tickets.ts';

const sha = 'a'.repeat(64);
const other = 'b'.repeat(64);

describe('tickets', () => {
  const keys = generateTicketKeys();
  const now = 1_800_000_000_000;

  it('accepts a ticket for its file before it expires', () => {
    const t = signTicket(keys.privateKey, { user: 'alice', sha256: sha, expiresAt: now + 60_000, issuedAt: now });
    assert.deepEqual(verifyTicket(keys.publicKey, t, { sha256: sha, now }), { user: 'alice', sha256: sha, expiresAt: now + 60_000, issuedAt: now });
  });

  it('refuses an expired ticket with TICKET_EXPIRED', () => {
    const t = signTicket(keys.privateKey, { user: 'alice', sha256: sha, expiresAt: now });
    assert.throws(() => verifyTicket(keys.publicKey, t, { sha256: sha, now }), (e) => isShoalError(e, 'TICKET_EXPIRED'));
  });

  it('refuses a ticket for another file', () => {
    const t = signTicket(keys.privateKey, { user: 'alice', sha256: other, expiresAt: now + 60_000 });
    assert.throws(() => verifyTicket(keys.publicKey, t, { sha256: sha, now }), (e) => isShoalError(e, 'TICKET_INVALID'));
  });

  it('refuses a ticket signed by another key', () => {
    const forger = generateTicketKeys();
    const t = signTicket(forger.privateKey, { user: 'mallory', sha256: sha, expiresAt: now + 60_000 });
    assert.throws(() => verifyTicket(keys.publicKey, t, { sha256: sha, now }), (e) => isShoalError(e, 'TICKET_INVALID'));
  });

  it('refuses a ticket whose claims were edited', () => {
    const t = signTicket(keys.privateKey, { user: 'alice', sha256: sha, expiresAt: now + 60_000 });
    const [payload, sig] = t.split('.');
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
    claims.exp = now + 10 * 365 * 24 * 3600_000;
    const edited = `${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${sig}`;
    assert.throws(() => verifyTicket(keys.publicKey, edited, { sha256: sha, now }), (e) => isShoalError(e, 'TICKET_INVALID'));
  });

  for (const bad of ['', 'x', 'a.b.c', '!!.??', `${'A'.repeat(2000)}.x`, 'eyJ2IjoxfQ.' + 'A'.repeat(86)]) {
    it(`refuses the malformed ticket ${JSON.stringify(bad.slice(0, 20))}`, () => {
      assert.throws(() => verifyTicket(keys.publicKey, bad, { sha256: sha, now }), (e) => isShoalError(e, 'TICKET_INVALID'));
    });
  }

  it('exports and imports keys as PEM and raw', () => {
    const { privateKeyPem, publicKeyPem } = exportTicketKeys(keys);
    const loaded = importTicketKeys(privateKeyPem);
    const t = signTicket(loaded.privateKey, { user: 'bob', sha256: sha, expiresAt: now + 1000 });
    assert.equal(verifyTicket(publicKeyPem, t, { sha256: sha, now }).user, 'bob');
    const raw = publicKeyToRaw(keys.publicKey);
    assert.equal(raw.length, 43);
    assert.equal(verifyTicket(importTicketPublicKey(raw), t, { sha256: sha, now }).user, 'bob');
    assert.equal(verifyTicket(raw, t, { sha256: sha, now }).user, 'bob');
  });
});
