import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { hashPassword, verifyPassword } from './password.ts';
import { createToken, hashToken, isWellFormedToken } from './token.ts';

describe('password hashing', () => {
  it('verifies the right password and refuses a wrong one', async () => {
    const h = await hashPassword('correct horse battery');
    assert.match(h, /^scrypt\$32768\$8\$1\$/);
    assert.equal(await verifyPassword('correct horse battery', h), true);
    assert.equal(await verifyPassword('correct horse battery!', h), false);
  });

  it('salts: the same password hashes differently each time', async () => {
    assert.notEqual(await hashPassword('same-password'), await hashPassword('same-password'));
  });

  it('refuses malformed or tampered hashes without throwing', async () => {
    for (const bad of [
      '',
      'plain',
      'scrypt$1$8$1$AAAA$AAAA',
      'scrypt$1073741824$8$1$AAAA$' + 'A'.repeat(44),
      'bcrypt$x$y$z$a$b',
    ]) {
      assert.equal(await verifyPassword('x', bad), false, bad);
    }
  });
});

describe('session tokens', () => {
  it('are 32 random bytes in base64url, stored as their SHA-256, expiring after the TTL', () => {
    const t = createToken(1000, 5000);
    assert.ok(isWellFormedToken(t.token));
    assert.equal(Buffer.from(t.token, 'base64url').length, 32);
    assert.equal(t.tokenHash, hashToken(t.token));
    assert.match(t.tokenHash, /^[0-9a-f]{64}$/);
    assert.equal(t.expiresAt, 6000);
    assert.notEqual(createToken().token, createToken().token);
  });
});
