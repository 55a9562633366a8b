/**
 * Writes that bypass the page cache (O_DIRECT, Linux) for large received files. A buffered write copies every
 * byte into the page cache, and the kernel later writes it out; where memory is new to the process's machine
 * that copy is dear. Measured on the bed's virtual machine (which hands free memory back to its host): 2 GiB
 * written in 256 KiB writes took 3.4-3.7 s of kernel time buffered, and 0.28-0.32 s with O_DIRECT (dd, twice
 * each). It also keeps a multi-GiB image from pushing everything else out of a receiving machine's cache.
 *
 * O_DIRECT needs the buffer's address, the file offset and the length to be multiples of the block size: the
 * whole pages of an aligned write go through a second handle opened with O_DIRECT, and the rest (a file's
 * unaligned tail, buffers that are not page-aligned) through the ordinary one. The alignment of a buffer is
 * read by build/shoal_mem.node; without it, or with SHOAL_DIRECT_IO=off, or on a file system that refuses
 * O_DIRECT, every write is buffered.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { loadNativeModule } from '../../native-module.ts';

/** Alignment asked of direct writes (the largest logical block size of common disks). */
export const DIRECT_ALIGN = 4096;
/** Files smaller than this are written through the page cache (where a reader will likely find them next). */
export const DIRECT_MIN_FILE_BYTES = 16 * 1024 * 1024;

interface NativeMem {
  addressModulo(view: Uint8Array, n: number): number;
}
const native = (): NativeMem | null => loadNativeModule<NativeMem>('shoal_mem', process.platform !== 'linux');

/** Whether direct writes can be used at all in this process. */
export function directIoAvailable(): boolean {
  return process.env.SHOAL_DIRECT_IO !== 'off' && constants.O_DIRECT !== undefined && native() !== null;
}

/** Bytes at the start of `bytes` that a direct write at `position` can take: its whole pages when the buffer
 * and the position are page-aligned, else 0. */
export function directPrefix(bytes: Uint8Array, position: number): number {
  if (position % DIRECT_ALIGN !== 0 || bytes.length < DIRECT_ALIGN) return 0;
  const mod = native();
  if (!mod || mod.addressModulo(bytes, DIRECT_ALIGN) !== 0) return 0;
  return bytes.length - (bytes.length % DIRECT_ALIGN);
}

/** A second handle on `path`, for direct writes, when it is the same file as `fh` and the file system takes
 * O_DIRECT; else null. */
export async function openDirect(path: string, fh: FileHandle): Promise<FileHandle | null> {
  if (!directIoAvailable()) return null;
  let d: FileHandle;
  try {
    d = await open(path, constants.O_WRONLY | constants.O_DIRECT | constants.O_NOFOLLOW);
  } catch {
    return null; // EINVAL: this file system does not do O_DIRECT
  }
  try {
    const [a, b] = await Promise.all([fh.stat(), d.stat()]);
    if (a.dev === b.dev && a.ino === b.ino) return d;
  } catch {
    /* closed below */
  }
  await d.close().catch(() => undefined);
  return null;
}
