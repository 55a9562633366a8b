/**
 * Names that come from the network are never paths: this reduces a received file name to one safe path
 * segment, or refuses it with INVALID_NAME.
 */
import { ErrorCode, ShoalError } from '../../protocol/errors.ts';
import { Limits } from '../../protocol/limits.ts';

// Windows device names stay reserved whatever the extension ("CON.txt" opens the console there).
const reserved = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]|conin\$|conout\$)(\..*)?$/i;

/** Suffixes of our own temporary files: a received name may not pose as one. */
export const tempSuffixes = ['.shoal-part', '.shoal-bits', '.shoal-tmp'] as const;

/**
 * Returns the last segment of `name` (`a/b.txt` → `b.txt`), with `<>:"|?*` replaced by `_` and trailing dots
 * and spaces removed, after refusing, with INVALID_NAME: empty names, NUL and control characters, absolute
 * paths (`/x`, `\x`, `C:\x`, `C:x`), any `..` segment, `.`, Windows reserved device names, our temp
 * suffixes, and names over 255 UTF-8 bytes.
 */
export function safeBaseName(name: string): string {
  const refuse = (why: string): never => {
    throw new ShoalError(ErrorCode.INVALID_NAME, `file name refused: ${why}`);
  };
  if (typeof name !== 'string' || name.length === 0) refuse('empty');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) refuse('control character or NUL');
  if (/^[/\\]/.test(name) || /^[A-Za-z]:/.test(name)) refuse('absolute path');
  if (/[/\\]$/.test(name)) refuse('names a directory');
  const segments = name.split(/[/\\]+/);
  if (segments.some((s) => s === '..')) refuse('parent directory segment');
  // Characters other systems reserve, and trailing dots and spaces (which Windows drops), are reduced
  // rather than refused: "why?.pdf" is a fine name on the sharer's machine.
  const base = (segments.filter((s) => s.length > 0).pop() ?? '').replace(/[<>:"|?*]/g, '_').replace(/[. ]+$/, '');
  if (base === '' || base === '.') refuse('no base name');
  if (reserved.test(base)) refuse('reserved device name');
  if (tempSuffixes.some((s) => base.toLowerCase().endsWith(s))) refuse('temporary file suffix');
  if (Buffer.byteLength(base, 'utf8') > Limits.fileNameBytes) refuse(`longer than ${Limits.fileNameBytes} bytes`);
  return base;
}

/** `name (n).ext` for the n-th copy of `name` (n ≥ 2); the extension is what follows the last dot. */
export function numberedName(name: string, n: number): string {
  const dot = name.lastIndexOf('.');
  // A leading dot (".bashrc") is part of the stem, not an extension.
  if (dot <= 0) return `${name} (${n})`;
  return `${name.slice(0, dot)} (${n})${name.slice(dot)}`;
}
