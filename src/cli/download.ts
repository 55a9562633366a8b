/**
 * `shoal file download`: streams a catalogue file into `<out>/<name>.part`, resumes an existing .part with a
 * Range request, checks the SHA-256 of the whole against the catalogue, and only then gives the file its final
 * name — never replacing a different file that is already there (`name (2).ext` instead). The name comes from
 * the server, so it is reduced to one safe path segment first: nothing is ever written outside the out dir.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { link, lstat, mkdir, rename, stat, truncate, unlink } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ApiClient } from '../client/api-client.ts';
import type { CatalogueFile } from '../protocol/api.ts';
import { ErrorCode, ShoalError, isShoalError } from '../protocol/errors.ts';
import { numberedName, safeBaseName } from '../transfer/pieces/safe-base-name.ts';

/** Suffix of a download in progress. */
export const partSuffix = '.part';

/** Most `name (n).ext` variants tried before giving up. */
const maxNameVariants = 1000;

/**
 * Reduces a name received from the server to a safe base name: the last path segment, without control or
 * reserved characters; falls back to `download-<sha256 prefix>` when nothing usable is left.
 */
export function reduceFileName(name: string, sha256: string): string {
  const fallback = `download-${sha256.slice(0, 12)}`;
  try {
    return safeBaseName(name);
  } catch {
    // Reduce rather than refuse: the user asked for this file and the bytes are verified by hash anyway.
  }
  const last =
    name
      .split(/[/\\]+/)
      .filter((s) => s !== '')
      .pop() ?? '';
  // eslint-disable-next-line no-control-regex
  let cleaned = last.replace(/[\u0000-\u001f\u007f<>:"|?*]/g, '_').replace(/[. ]+$/, '');
  while (Buffer.byteLength(cleaned, 'utf8') > 200) cleaned = cleaned.slice(0, -1);
  try {
    return safeBaseName(cleaned);
  } catch {
    return fallback;
  }
}

export interface DownloadProgress {
  /** Bytes of the file present so far (resumed prefix included). */
  done: number;
  total: number;
  /** Where this run started (the resumed prefix), in bytes. */
  startAt: number;
}

export interface DownloadToDirOptions {
  api: ApiClient;
  group: string;
  file: CatalogueFile;
  /** Directory that receives the file (created when missing). */
  outDir: string;
  signal?: AbortSignal;
  /** Called once when the transfer starts (with the resumed offset) and as bytes arrive. */
  onProgress?: (p: DownloadProgress) => void;
}

export interface DownloadResult {
  /** Absolute path of the verified file. */
  path: string;
  size: number;
  sha256: string;
  /** Bytes taken from an existing .part. */
  resumedFrom: number;
  /** Bytes fetched over the network in this run. */
  fetchedBytes: number;
  /** True when an identical file was already there and nothing was written. */
  alreadyPresent: boolean;
}

async function exists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

async function sha256OfFile(p: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(p, { signal })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** True when `p` is a regular file with the given size and SHA-256. */
async function sameContent(p: string, size: number, sha256: string, signal?: AbortSignal): Promise<boolean> {
  const st = await lstat(p).catch(() => undefined);
  if (!st || !st.isFile() || st.size !== size) return false;
  return (await sha256OfFile(p, signal)) === sha256;
}

/** Parses `bytes start-end/total` of a 206 answer. */
function rangeStart(contentRange: string | null): number | undefined {
  const m = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(contentRange ?? '');
  return m ? Number(m[1]) : undefined;
}

/** Fetches the rest of the file into `part` from `offset`; returns the SHA-256 of the whole and bytes fetched. */
async function fetchInto(
  opts: DownloadToDirOptions,
  part: string,
  offset: number,
): Promise<{ sha256: string; fetched: number; size: number }> {
  const { api, group, file, signal } = opts;
  const hash = createHash('sha256');
  const start = offset;
  if (start > 0) {
    // Hash the prefix already on disk once, instead of trusting it: a wrong byte fails the final check.
    for await (const chunk of createReadStream(part, { start: 0, end: start - 1, signal }))
      hash.update(chunk as Buffer);
  }
  let fetched = 0;
  if (start < file.size || file.size === 0) {
    const res = await api.download(
      'downloadFile',
      { params: { group, fileId: file.id } },
      { signal, range: start > 0 ? { start } : undefined },
    );
    if (start > 0 && (res.status !== 206 || rangeStart(res.headers.get('content-range')) !== start)) {
      // The server sent the whole file (no Range support): start over rather than append a second copy.
      return fetchWhole(opts, part, res);
    }
    const total = file.size;
    opts.onProgress?.({ done: start, total, startAt: start });
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        fetched += chunk.length;
        if (start + fetched > total) {
          cb(
            new ShoalError(
              ErrorCode.HASH_MISMATCH,
              `the server sent more than the ${total} bytes of ${file.name}`,
            ),
          );
          return;
        }
        hash.update(chunk);
        opts.onProgress?.({ done: start + fetched, total, startAt: start });
        cb(null, chunk);
      },
    });
    if (!res.body) throw new ShoalError(ErrorCode.INTERNAL, 'the download answer has no body');
    await pipeline(
      Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>),
      counter,
      createWriteStream(part, { flags: start > 0 ? 'a' : 'w', mode: 0o644 }),
      { signal },
    );
  }
  return { sha256: hash.digest('hex'), fetched, size: start + fetched };
}

async function fetchWhole(
  opts: DownloadToDirOptions,
  part: string,
  res: Response,
): Promise<{ sha256: string; fetched: number; size: number }> {
  const hash = createHash('sha256');
  let fetched = 0;
  const total = opts.file.size;
  opts.onProgress?.({ done: 0, total, startAt: 0 });
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      fetched += chunk.length;
      if (fetched > total) {
        cb(
          new ShoalError(
            ErrorCode.HASH_MISMATCH,
            `the server sent more than the ${total} bytes of ${opts.file.name}`,
          ),
        );
        return;
      }
      hash.update(chunk);
      opts.onProgress?.({ done: fetched, total, startAt: 0 });
      cb(null, chunk);
    },
  });
  if (!res.body) throw new ShoalError(ErrorCode.INTERNAL, 'the download answer has no body');
  await pipeline(
    Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>),
    counter,
    createWriteStream(part, { flags: 'w', mode: 0o644 }),
    { signal: opts.signal },
  );
  return { sha256: hash.digest('hex'), fetched, size: fetched };
}

/**
 * Gives the verified `part` its final name in `dir`: `name`, else `name (2).ext`, … — a hard link never
 * replaces an existing file, so a different file already there is left alone. An identical file already there
 * wins and the part is dropped.
 */
async function finalize(
  part: string,
  dir: string,
  name: string,
  size: number,
  sha256: string,
  signal?: AbortSignal,
): Promise<{ path: string; alreadyPresent: boolean }> {
  for (let n = 1; n <= maxNameVariants; n++) {
    const candidate = path.join(dir, n === 1 ? name : numberedName(name, n));
    try {
      await link(part, candidate);
      await unlink(part);
      return { path: candidate, alreadyPresent: false };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') {
        if (await sameContent(candidate, size, sha256, signal)) {
          await unlink(part);
          return { path: candidate, alreadyPresent: true };
        }
        continue;
      }
      if (
        code === 'EPERM' ||
        code === 'ENOTSUP' ||
        code === 'EOPNOTSUPP' ||
        code === 'EXDEV' ||
        code === 'EMLINK'
      ) {
        // Filesystems without hard links: check-then-rename, the best they allow.
        if (await exists(candidate)) {
          if (await sameContent(candidate, size, sha256, signal)) {
            await unlink(part);
            return { path: candidate, alreadyPresent: true };
          }
          continue;
        }
        await rename(part, candidate);
        return { path: candidate, alreadyPresent: false };
      }
      throw err;
    }
  }
  throw new ShoalError(ErrorCode.CONFLICT, `too many files named like ${name} in ${dir}`);
}

/** Downloads one catalogue file into `outDir`, resuming and verifying as described at the top of this module. */
export async function downloadToDir(opts: DownloadToDirOptions): Promise<DownloadResult> {
  const { file, signal } = opts;
  const dir = path.resolve(opts.outDir);
  await mkdir(dir, { recursive: true });
  const name = reduceFileName(file.name, file.sha256);
  const target = path.join(dir, name);
  const part = target + partSuffix;
  // Defence in depth: whatever reduceFileName returned must stay one segment inside dir.
  if (path.dirname(target) !== dir || path.dirname(part) !== dir) {
    throw new ShoalError(
      ErrorCode.INVALID_NAME,
      `refusing to write ${JSON.stringify(file.name)} outside ${dir}`,
    );
  }

  if (await sameContent(target, file.size, file.sha256, signal)) {
    return {
      path: target,
      size: file.size,
      sha256: file.sha256,
      resumedFrom: 0,
      fetchedBytes: 0,
      alreadyPresent: true,
    };
  }

  let offset = 0;
  const partStat = await lstat(part).catch(() => undefined);
  if (partStat) {
    if (!partStat.isFile())
      throw new ShoalError(ErrorCode.CONFLICT, `${part} exists and is not a regular file`);
    offset = partStat.size;
    if (offset > file.size) {
      await truncate(part, 0);
      offset = 0;
    }
  }

  const fetchOrDrop = async (from: number) => {
    try {
      return await fetchInto(opts, part, from);
    } catch (err) {
      // Bytes that cannot be right are not worth resuming from.
      if (isShoalError(err, ErrorCode.HASH_MISMATCH)) await unlink(part).catch(() => undefined);
      const kept = await lstat(part)
        .then((st) => st.size)
        .catch(() => 0);
      const again = `${kept} bytes are kept in ${part}; run the same command again to resume`;
      if (signal?.aborted)
        throw new ShoalError(ErrorCode.ABORTED, `interrupted: ${again}`, undefined, { cause: err });
      if (isShoalError(err) || (err as NodeJS.ErrnoException)?.syscall) throw err;
      // Anything else came from the connection (reset, closed early): resumable.
      throw new ShoalError(
        ErrorCode.UNREACHABLE,
        `the download of ${file.name} broke off (${(err as Error)?.message ?? err}): ${again}`,
        undefined,
        { cause: err },
      );
    }
  };
  let result = await fetchOrDrop(offset);
  let resumedFrom = offset;
  if (result.size < file.size) {
    throw new ShoalError(
      ErrorCode.UNREACHABLE,
      `the download of ${file.name} stopped at ${result.size} of ${file.size} bytes; run the same command again to resume`,
    );
  }
  if (result.sha256 !== file.sha256 && offset > 0) {
    // The old .part may belong to another file of the same name: fetch everything once more.
    await unlink(part).catch(() => undefined);
    resumedFrom = 0;
    const fetchedBefore = result.fetched;
    result = await fetchOrDrop(0);
    result.fetched += fetchedBefore;
  }
  if (result.sha256 !== file.sha256 || result.size !== file.size) {
    await unlink(part).catch(() => undefined);
    throw new ShoalError(
      ErrorCode.HASH_MISMATCH,
      `${file.name}: the downloaded bytes do not match the catalogue's SHA-256 (expected ${file.sha256}, got ${result.sha256}); nothing was kept`,
    );
  }
  const st = await stat(part);
  if (st.size !== file.size) {
    throw new ShoalError(ErrorCode.HASH_MISMATCH, `${part} has ${st.size} bytes, expected ${file.size}`);
  }
  const placed = await finalize(part, dir, name, file.size, file.sha256, signal);
  return {
    path: placed.path,
    size: file.size,
    sha256: file.sha256,
    resumedFrom,
    fetchedBytes: result.fetched,
    alreadyPresent: placed.alreadyPresent,
  };
}

/** Finds a file of `group` by id, or else by exact name (refusing an ambiguous name). */
export async function resolveFile(
  api: ApiClient,
  group: string,
  ref: string,
  signal?: AbortSignal,
): Promise<CatalogueFile> {
  try {
    const { file } = await api.call('getFile', { params: { group, fileId: ref } }, { signal });
    return file;
  } catch (err) {
    const notAnId =
      isShoalError(err, ErrorCode.FILE_NOT_FOUND) ||
      isShoalError(err, ErrorCode.NOT_FOUND) ||
      isShoalError(err, ErrorCode.BAD_REQUEST) ||
      isShoalError(err, ErrorCode.VALIDATION_FAILED);
    if (!notAnId) throw err;
  }
  const { files } = await api.call('listFiles', { params: { group }, query: { search: ref } }, { signal });
  const matches = files.filter((f) => f.name === ref);
  if (matches.length === 1) return matches[0];
  if (matches.length > 1) {
    throw new ShoalError(
      ErrorCode.CONFLICT,
      `${matches.length} files in ${group} are named ${ref}; give an id instead: ${matches.map((f) => f.id).join(', ')}`,
    );
  }
  throw new ShoalError(ErrorCode.FILE_NOT_FOUND, `no file ${ref} in ${group} (by id or name)`);
}
