/**
 * Local files the CLI uploads (`file share`, `send`, `pending add` and `push` with a path): checking the path
 * and streaming it with a progress line.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { UploadOptions } from '../client/api-client.ts';
import { ErrorCode, ShoalError } from '../protocol/errors.ts';
import { createProgress, type Output } from './output.ts';

/** Read-ahead of an uploaded file stream, in bytes. */
const uploadChunkBytes = 256 * 1024;

/** Resolves `filePath` against `cwd` and checks it is a regular file; its absolute path and size in bytes. */
export async function statLocalFile(cwd: string, filePath: string): Promise<{ abs: string; size: number }> {
  const abs = path.resolve(cwd, filePath);
  const st = await stat(abs).catch(() => undefined);
  if (!st) throw new ShoalError(ErrorCode.NOT_FOUND, `no such file: ${filePath}`);
  if (!st.isFile()) throw new ShoalError(ErrorCode.BAD_REQUEST, `not a regular file: ${filePath}`);
  return { abs, size: st.size };
}

/**
 * Streams the file at `abs` (`size` bytes) through `send` (an `api.upload` call) with a progress line titled
 * `label`; the progress line is stopped however the upload ends.
 */
export async function uploadWithProgress<T>(
  out: Output,
  label: string,
  abs: string,
  size: number,
  signal: AbortSignal | undefined,
  send: (body: AsyncIterable<Uint8Array>, opts: UploadOptions) => Promise<T>,
): Promise<T> {
  const progress = createProgress(out, label, size);
  try {
    return await send(createReadStream(abs, { highWaterMark: uploadChunkBytes }), {
      size,
      signal,
      onProgress: (sent) => progress.update(sent),
    });
  } finally {
    progress.stop();
  }
}
