/** The web UI's pure helpers: sizes typed in filters, human formats, and where a server error is shown. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatBytes, parseSize, percent } from '../../web/src/format.ts';
import { toFormErrors } from '../../web/src/field-errors.ts';
import { ErrorCode, ShoalError } from '../../src/protocol/errors.ts';

describe('parseSize', () => {
  it('reads bytes, K, M, G with or without "iB"', () => {
    assert.equal(parseSize('1500'), 1500);
    assert.equal(parseSize('200K'), 200 * 1024);
    assert.equal(parseSize('1.5 MiB'), 1.5 * 1024 * 1024);
    assert.equal(parseSize('2g'), 2 * 1024 ** 3);
    assert.equal(parseSize('10mb'), 10 * 1024 * 1024);
  });
  it('says empty is no filter and rubbish is NaN', () => {
    assert.equal(parseSize('  '), undefined);
    assert.ok(Number.isNaN(parseSize('lots')));
    assert.ok(Number.isNaN(parseSize('-5')));
  });
});

describe('formats', () => {
  it('prints sizes in binary units', () => {
    assert.equal(formatBytes(0), '0 B');
    assert.equal(formatBytes(1536), '1.5 KiB');
    assert.equal(formatBytes(5 * 1024 * 1024 + 12345), '5.0 MiB');
    assert.equal(formatBytes(-1), '–');
  });
  it('bounds percentages', () => {
    assert.equal(percent(5, 10), 50);
    assert.equal(percent(20, 10), 100);
    assert.equal(percent(1, 0), 0);
  });
});

describe('toFormErrors', () => {
  it('puts a code that belongs to a field next to that field', () => {
    const e = toFormErrors(new ShoalError(ErrorCode.INVALID_CREDENTIALS, 'wrong username or password'), {
      [ErrorCode.INVALID_CREDENTIALS]: 'password',
    });
    assert.deepEqual(e, { fields: { password: 'wrong username or password' }, form: null });
  });
  it('places validation issues by their path', () => {
    const err = new ShoalError(ErrorCode.VALIDATION_FAILED, 'invalid body', {
      issues: [{ path: ['body', 'name'], message: 'too short' }],
    });
    assert.deepEqual(toFormErrors(err, {}, ['name']), { fields: { name: 'too short' }, form: null });
  });
  it('says when to retry after too many attempts, and keeps other errors for the form', () => {
    const limited = toFormErrors(new ShoalError(ErrorCode.RATE_LIMITED, 'slow down', { retryAfterSeconds: 42 }));
    assert.equal(limited.form, 'Too many attempts. Try again in 42 s.');
    assert.deepEqual(toFormErrors(new Error('boom')), { fields: {}, form: 'boom' });
  });
});
