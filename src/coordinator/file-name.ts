/**
 * File names that come from the network. A shared file's name is stored and later used by agents as a
 * base name on disk, so the coordinator refuses anything that could be a path or a device.
 */
import { Limits } from '../protocol/limits.ts';
import { ErrorCode, ShoalError } from '../protocol/errors.ts';

const reserved = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?$/i;

/**
 * Returns `name` NFC-normalised and trimmed when it is a safe base name; throws INVALID_NAME for empty names,
 * `.`/`..`, `/`, `\`, NUL or other control characters, more than Limits.fileNameBytes UTF-8 bytes, or
 * Windows device names (CON, NUL, COM1…).
 */
export function checkFileName(name: string): string {
  const n = name.normalize('NFC').trim();
  const fail = (why: string): never => {
    throw new ShoalError(ErrorCode.INVALID_NAME, `invalid file name: ${why}`);
  };
  if (n.length === 0) fail('empty');
  if (Buffer.byteLength(n, 'utf8') > Limits.fileNameBytes) fail(`longer than ${Limits.fileNameBytes} bytes`);
  if (n === '.' || n === '..') fail('"." and ".." are not file names');
  if (/[/\\]/.test(n)) fail('contains a path separator');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(n)) fail('contains a control character');
  if (/[\u2028\u2029\u202a-\u202e\u2066-\u2069]/.test(n))
    fail('contains a line or direction control character');
  if (reserved.test(n)) fail('reserved device name');
  if (/[. ]$/.test(n)) fail('ends with a dot or a space');
  return n;
}

/** Lower-case extension without the dot, or '' (for `archive.tar.gz` → `gz`, `.bashrc` → ''). */
export function fileType(name: string): string {
  const dot = name.lastIndexOf('.');
  if (dot <= 0 || dot === name.length - 1) return '';
  return name
    .slice(dot + 1)
    .toLowerCase()
    .slice(0, 32);
}
