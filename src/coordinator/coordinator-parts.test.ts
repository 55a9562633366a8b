import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isShoalError } from '../protocol/errors.ts';
import { parseMulticastAddress, pickMulticastAddress } from './multicast-pool.ts';
import { checkFileName, fileType } from './file-name.ts';
import { createLoginLimiter } from './login-limiter.ts';
import { parseRange } from './routes/files.ts';

describe('multicast pool', () => {
  it('accepts multicast addresses outside the local control block', () => {
    assert.equal(parseMulticastAddress('239.192.0.1'), '239.192.0.1');
    assert.equal(parseMulticastAddress('224.0.1.1'), '224.0.1.1');
  });
  it('refuses unicast, the 224.0.0.0/24 block, and malformed text', () => {
    for (const a of ['10.1.1.1', '240.0.0.1', '224.0.0.251', '239.1.1', '239.01.1.1', '239.1.1.256', '']) {
      assert.throws(
        () => parseMulticastAddress(a),
        (e) => isShoalError(e, 'INVALID_MULTICAST_ADDRESS'),
        a,
      );
    }
  });
  it('picks the lowest free pool address', () => {
    assert.equal(pickMulticastAddress([]), '239.192.0.1');
    assert.equal(pickMulticastAddress(['239.192.0.1', '239.192.0.2']), '239.192.0.3');
  });
});

describe('file names', () => {
  it('keeps ordinary names and reduces nothing silently', () => {
    assert.equal(checkFileName('report 2024.pdf'), 'report 2024.pdf');
    assert.equal(checkFileName('  spaced.txt  '), 'spaced.txt');
  });
  it('refuses paths, dots, control characters, device names and long names', () => {
    for (const n of [
      '..',
      '.',
      'a/b',
      'a\\b',
      'x\u0000y',
      'x\ty',
      'COM1',
      'lpt2.txt',
      'x'.repeat(256),
      'trailing.',
      'rtl\u202etxt.exe',
    ]) {
      assert.throws(
        () => checkFileName(n),
        (e) => isShoalError(e, 'INVALID_NAME'),
        JSON.stringify(n),
      );
    }
  });
  it('derives the type from the extension', () => {
    assert.equal(fileType('A.TAR.GZ'), 'gz');
    assert.equal(fileType('.bashrc'), '');
    assert.equal(fileType('README'), '');
  });
});

describe('login limiter', () => {
  it('limits failures per user and reports when to retry', () => {
    const l = createLoginLimiter({ perUser: 3, perAddress: 100, windowMs: 60_000 });
    for (let i = 0; i < 3; i++) {
      l.check('eve', '10.0.0.1', 1000 + i);
      l.fail('eve', '10.0.0.1', 1000 + i);
    }
    assert.throws(
      () => l.check('eve', '10.0.0.2', 2000),
      (e) => isShoalError(e, 'RATE_LIMITED') && e.details?.retryAfterS === 59,
    );
    l.check('other', '10.0.0.1', 2000);
    l.check('eve', '10.0.0.1', 61_001);
  });
  it('limits failures per address across usernames', () => {
    const l = createLoginLimiter({ perUser: 100, perAddress: 2 });
    l.fail('a', '10.0.0.9', 0);
    l.fail('b', '10.0.0.9', 0);
    assert.throws(
      () => l.check('c', '10.0.0.9', 10),
      (e) => isShoalError(e, 'RATE_LIMITED'),
    );
  });
});

describe('Range parsing', () => {
  it('handles start-end, open ends, suffixes and unsatisfiable ranges', () => {
    assert.deepEqual(parseRange('bytes=0-9', 100), { start: 0, end: 9 });
    assert.deepEqual(parseRange('bytes=90-', 100), { start: 90, end: 99 });
    assert.deepEqual(parseRange('bytes=-10', 100), { start: 90, end: 99 });
    assert.deepEqual(parseRange('bytes=50-500', 100), { start: 50, end: 99 });
    assert.equal(parseRange('bytes=100-', 100), null);
    assert.equal(parseRange('bytes=9-5', 100), null);
    assert.equal(parseRange('bytes=0-1,5-6', 100), undefined);
    assert.equal(parseRange('items=0-1', 100), undefined);
  });
});
