/**
 * Where the CLI gets a password: `--password-stdin` (the first line of stdin), SHOAL_PASSWORD, or an
 * interactive prompt on a terminal that does not echo. Never from a command-line argument (it would show in
 * `ps` and shell history).
 */
import { ErrorCode, ShoalError } from '../protocol/errors.ts';
import type { CliIo } from './output.ts';

export interface PasswordOptions {
  /** Read the first line of stdin. */
  fromStdin?: boolean;
  /** Prompt text, e.g. `Password for ann: `. */
  prompt: string;
  /** Ask twice on a terminal (new passwords). */
  confirm?: boolean;
}

/** Most bytes read from stdin for a password; a password is a line, not a file. */
const stdinLimitBytes = 64 * 1024;

async function readStdinLine(stdin: CliIo['stdin']): Promise<string> {
  let text = '';
  for await (const chunk of stdin as AsyncIterable<Buffer | string>) {
    text += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    if (text.includes('\n') || text.length > stdinLimitBytes) break;
  }
  return text.split(/\r?\n/)[0];
}

/** Prompts on the terminal without echo; Ctrl-C aborts with ABORTED. */
function promptHidden(io: CliIo, prompt: string): Promise<string> {
  const { stdin } = io;
  return new Promise((resolve, reject) => {
    io.stderr.write(prompt);
    let value = '';
    stdin.setRawMode?.(true);
    stdin.resume();
    const finish = (err: Error | null) => {
      stdin.removeListener('data', onData);
      stdin.setRawMode?.(false);
      stdin.pause();
      io.stderr.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (chunk: Buffer | string) => {
      for (const ch of typeof chunk === 'string' ? chunk : chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return finish(null);
        if (ch === '\u0003') return finish(new ShoalError(ErrorCode.ABORTED, 'interrupted'));
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    };
    stdin.on('data', onData);
  });
}

/** Gets a password as PasswordOptions says, or fails with a usage error naming the ways to give one. */
export async function readPassword(io: CliIo, opts: PasswordOptions): Promise<string> {
  if (opts.fromStdin) {
    const pw = await readStdinLine(io.stdin);
    if (!pw) throw new ShoalError(ErrorCode.BAD_REQUEST, 'no password on stdin');
    return pw;
  }
  if (io.env.SHOAL_PASSWORD) return io.env.SHOAL_PASSWORD;
  if (!io.stdin.isTTY || !io.stdin.setRawMode) {
    throw new ShoalError(
      ErrorCode.BAD_REQUEST,
      'a password is needed: run in a terminal to be prompted, or use --password-stdin, or set SHOAL_PASSWORD',
    );
  }
  const pw = await promptHidden(io, opts.prompt);
  if (opts.confirm) {
    const again = await promptHidden(io, 'Repeat the password: ');
    if (again !== pw) throw new ShoalError(ErrorCode.BAD_REQUEST, 'the passwords do not match');
  }
  if (!pw) throw new ShoalError(ErrorCode.BAD_REQUEST, 'empty password');
  return pw;
}
