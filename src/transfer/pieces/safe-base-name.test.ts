import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isShoalError } from '../../protocol/errors.ts';
import { numberedName, safeBaseName } from './safe-base-name.ts';

describe('safeBaseName', () => {
  it('keeps ordinary names and reduces relative paths to their last segment', () => {
    assert.equal(safeBaseName('report.pdf'), 'report.pdf');
    assert.equal(safeBaseName('dir/sub/report.pdf'), 'report.pdf');
    assert.equal(safeBaseName('dir\\report.pdf'), 'report.pdf');
    assert.equal(safeBaseName('.bashrc'), '.bashrc');
    assert.equal(safeBaseName('été 2026.txt'), 'été 2026.txt');
    assert.equal(safeBaseName('why?.pdf'), 'why_.pdf');
    assert.equal(safeBaseName('ab:c'), 'ab_c');
    assert.equal(safeBaseName('trailing. .'), 'trailing');
  });
  for (const hostile of [
    '', '.', '..', '../x', 'a/../b', '..\\..\\x', '/etc/passwd', '\\\\server\\share', 'C:\\x', 'c:x', 'a\u0000b',
    'line\nbreak', 'CON', 'nul.txt', 'Com1.log', 'LPT9', 'CON.', '...', '. .',
    '.x.shoal-part', 'y.SHOAL-BITS', 'x'.repeat(256), 'dir/',
  ]) {
    it(`refuses ${JSON.stringify(hostile.slice(0, 40))}`, () => {
      assert.throws(() => safeBaseName(hostile), (e) => isShoalError(e, 'INVALID_NAME'));
    });
  }
});

describe('numberedName', () => {
  it('puts the number before the extension', () => {
    assert.equal(numberedName('report.pdf', 2), 'report (2).pdf');
    assert.equal(numberedName('archive.tar.gz', 3), 'archive.tar (3).gz');
    assert.equal(numberedName('README', 2), 'README (2)');
    assert.equal(numberedName('.bashrc', 2), '.bashrc (2)');
  });
});
