/** Option parsers, multicast specs, config files and exit codes of the CLI. */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { InvalidArgumentError } from 'commander';
import { parseIntOption, parseSinceOption, parseSizeOption } from './commands/parse.ts';
import { parseMulticast } from './commands/group.ts';
import { configHome, loadConfig, normalizeServerUrl, saveConfig } from './config.ts';
import { ExitCode, exitCodeFor } from './exit-codes.ts';
import { ErrorCode, isShoalError } from '../protocol/errors.ts';

describe('option parsers', () => {
  it('reads sizes with binary and decimal units', () => {
    assert.equal(parseSizeOption('1500'), 1500);
    assert.equal(parseSizeOption('10k'), 10240);
    assert.equal(parseSizeOption('1.5M'), 1.5 * 1024 * 1024);
    assert.equal(parseSizeOption('2GiB'), 2 * 1024 ** 3);
    assert.equal(parseSizeOption('3MB'), 3_000_000);
    assert.throws(() => parseSizeOption('lots'), InvalidArgumentError);
    assert.throws(() => parseSizeOption('-1'), InvalidArgumentError);
  });

  it('reads dates and ages for --since', () => {
    const now = Date.parse('2026-03-10T12:00:00Z');
    assert.equal(parseSinceOption('7d', now), '2026-03-03T12:00:00.000Z');
    assert.equal(parseSinceOption('12h', now), '2026-03-10T00:00:00.000Z');
    assert.equal(parseSinceOption('2026-01-31T00:00:00Z', now), '2026-01-31T00:00:00.000Z');
    assert.throws(() => parseSinceOption('yesterday-ish', now), InvalidArgumentError);
  });

  it('reads whole numbers only', () => {
    assert.equal(parseIntOption('8443'), 8443);
    assert.throws(() => parseIntOption('84.5'), InvalidArgumentError);
  });

  it('splits multicast address and port', () => {
    assert.deepEqual(parseMulticast('239.1.2.3:5000'), {
      multicastAddress: '239.1.2.3',
      multicastPort: 5000,
    });
    assert.deepEqual(parseMulticast('239.1.2.3'), { multicastAddress: '239.1.2.3' });
    assert.deepEqual(parseMulticast('[ff15::1]:7000'), { multicastAddress: 'ff15::1', multicastPort: 7000 });
    assert.deepEqual(parseMulticast('ff15::1'), { multicastAddress: 'ff15::1' });
    assert.throws(
      () => parseMulticast('239.1.2.3:80'),
      (e) => isShoalError(e, ErrorCode.INVALID_MULTICAST_ADDRESS),
    );
  });
});

describe('client config', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('lives in SHOAL_HOME, else XDG_CONFIG_HOME/shoal, else ~/.config/shoal', () => {
    assert.equal(configHome({ SHOAL_HOME: '/x/y' }), '/x/y');
    assert.equal(configHome({ XDG_CONFIG_HOME: '/c' }), '/c/shoal');
    assert.equal(configHome({ HOME: '/home/u' }), '/home/u/.config/shoal');
  });

  it('is saved with mode 0600 and read back; a corrupt file is named in the error', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'shoal-cfg-'));
    dirs.push(dir);
    const home = path.join(dir, 'h');
    assert.deepEqual(await loadConfig(home), { knownHosts: {} });
    await saveConfig(home, { url: 'https://a:1', token: 'secret', knownHosts: { 'https://a:1': 'AA' } });
    assert.equal((await stat(path.join(home, 'config.json'))).mode & 0o777, 0o600);
    assert.equal((await stat(home)).mode & 0o777, 0o700);
    assert.equal((await loadConfig(home)).token, 'secret');
    assert.match(await readFile(path.join(home, 'config.json'), 'utf8'), /"url": "https:\/\/a:1"/);
    await writeFile(path.join(home, 'config.json'), '{not json');
    await assert.rejects(
      loadConfig(home),
      (e: unknown) => isShoalError(e) && e.message.includes('config.json'),
    );
  });

  it('accepts only https coordinator URLs and keeps their origin', () => {
    assert.equal(normalizeServerUrl('https://host:8443/some/path'), 'https://host:8443');
    assert.equal(normalizeServerUrl('host:8443'), 'https://host:8443');
    assert.throws(
      () => normalizeServerUrl('http://host:8443'),
      (e) => isShoalError(e, ErrorCode.BAD_REQUEST),
    );
  });
});

describe('exit codes', () => {
  it('gives each kind of failure its own code', () => {
    assert.equal(exitCodeFor(ErrorCode.INVALID_CREDENTIALS), ExitCode.AUTH);
    assert.equal(exitCodeFor(ErrorCode.NOT_A_MEMBER), ExitCode.FORBIDDEN);
    assert.equal(exitCodeFor(ErrorCode.GROUP_NOT_FOUND), ExitCode.NOT_FOUND);
    assert.equal(exitCodeFor(ErrorCode.GROUP_EXISTS), ExitCode.CONFLICT);
    assert.equal(exitCodeFor(ErrorCode.TLS_FINGERPRINT_MISMATCH), ExitCode.NETWORK);
    assert.equal(exitCodeFor(ErrorCode.HASH_MISMATCH), ExitCode.HASH_MISMATCH);
    assert.equal(exitCodeFor(ErrorCode.VALIDATION_FAILED), ExitCode.USAGE);
    const all = Object.values(ErrorCode).map(exitCodeFor);
    assert.ok(all.every((c) => Number.isInteger(c)));
  });
});
