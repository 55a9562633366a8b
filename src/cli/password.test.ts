/** Password sources of the CLI: stdin, SHOAL_PASSWORD, and a no-echo prompt on a terminal. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, Readable } from 'node:stream';
import { readPassword } from './password.ts';
import type { CliIo } from './output.ts';
import { ErrorCode, isShoalError } from '../protocol/errors.ts';

function fakeTerminal(): { io: CliIo; type(text: string): void; echoed(): string; rawModes: boolean[] } {
  const stdin = new PassThrough() as PassThrough & { isTTY: boolean; setRawMode(raw: boolean): void };
  const rawModes: boolean[] = [];
  stdin.isTTY = true;
  stdin.setRawMode = (raw) => void rawModes.push(raw);
  let err = '';
  const io: CliIo = {
    stdin,
    stdout: { write: () => true },
    stderr: { write: (s: string) => (err += s) },
    env: {},
  };
  return { io, type: (t) => stdin.write(t), echoed: () => err, rawModes };
}

describe('reading a password', () => {
  it('prompts on a terminal without echoing, handling backspace', async () => {
    const term = fakeTerminal();
    const p = readPassword(term.io, { prompt: 'Password: ' });
    term.type('secrex\u007ft-pass\r');
    assert.equal(await p, 'secret-pass');
    assert.equal(term.echoed(), 'Password: \n');
    assert.deepEqual(term.rawModes, [true, false]);
  });

  it('asks twice for a new password and refuses a mismatch', async () => {
    const term = fakeTerminal();
    const p = readPassword(term.io, { prompt: 'New password: ', confirm: true });
    term.type('first-password\r');
    setImmediate(() => term.type('other-password\r'));
    await assert.rejects(
      p,
      (e) => isShoalError(e, ErrorCode.BAD_REQUEST) && /do not match/.test((e as Error).message),
    );
  });

  it('treats Ctrl-C at the prompt as an interrupt', async () => {
    const term = fakeTerminal();
    const p = readPassword(term.io, { prompt: 'Password: ' });
    term.type('abc\u0003');
    await assert.rejects(p, (e) => isShoalError(e, ErrorCode.ABORTED));
  });

  it('reads the first line of stdin with --password-stdin, then SHOAL_PASSWORD, and refuses when there is no way', async () => {
    const base = { stdout: { write: () => true }, stderr: { write: () => true } };
    const fromStdin = await readPassword(
      {
        ...base,
        stdin: Readable.from([Buffer.from('line-one\nline-two\n')]) as unknown as CliIo['stdin'],
        env: { SHOAL_PASSWORD: 'env' },
      },
      { prompt: '', fromStdin: true },
    );
    assert.equal(fromStdin, 'line-one');
    const fromEnv = await readPassword(
      { ...base, stdin: Readable.from([]) as unknown as CliIo['stdin'], env: { SHOAL_PASSWORD: 'from-env' } },
      { prompt: '' },
    );
    assert.equal(fromEnv, 'from-env');
    await assert.rejects(
      readPassword(
        { ...base, stdin: Readable.from([]) as unknown as CliIo['stdin'], env: {} },
        { prompt: '' },
      ),
      (e) => isShoalError(e, ErrorCode.BAD_REQUEST) && /--password-stdin/.test((e as Error).message),
    );
  });
});
