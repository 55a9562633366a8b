/**
 * Raw-body uploads shared by the share route (files.ts) and the 1:1 send route (deliveries.ts): an
 * encapsulated context that takes any content type as a byte stream, ingestion into the blob store bounded
 * by Limits.uploadBytes and aborted when the client goes away, and the blob row written once per content.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import { ErrorCode, ShoalError } from '../../protocol/errors.ts';
import { Limits } from '../../protocol/limits.ts';
import type { AuditRow, BlobRow, FileRow, Store } from '../../store/store.ts';
import type { IngestedBlob } from '../blob-store.ts';
import type { CoordinatorContext } from '../context.ts';
import { fileType } from '../file-name.ts';

/**
 * Registers the routes `define` adds in their own encapsulated context, so only they take raw bodies (the
 * request stream, whatever its content type) and every other route keeps JSON parsing.
 */
export function registerRawBodyRoutes(app: FastifyInstance, define: (upload: FastifyInstance) => void): void {
  app.register(async (upload) => {
    upload.removeAllContentTypeParsers();
    upload.addContentTypeParser(
      '*',
      (_req: FastifyRequest, payload: Readable, done: (err: Error | null, body?: unknown) => void) =>
        done(null, payload),
    );
    define(upload);
  });
}

/**
 * Streams an upload body into the blob store and runs `use` on the result; the blob is released however
 * `use` ends. Refuses a declared Content-Length above Limits.uploadBytes before reading, a missing body, and
 * a body shorter than its Content-Length; aborts the ingest when the client closes the connection early.
 */
export async function withUploadedBlob<T>(
  ctx: CoordinatorContext,
  req: FastifyRequest,
  body: unknown,
  use: (blob: IngestedBlob) => Promise<T>,
): Promise<T> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > Limits.uploadBytes) {
    throw new ShoalError(
      ErrorCode.PAYLOAD_TOO_LARGE,
      `files larger than ${Limits.uploadBytes} bytes are refused`,
    );
  }
  if (!body) throw new ShoalError(ErrorCode.BAD_REQUEST, 'the request body must be the file bytes');
  const abort = new AbortController();
  const onClose = () => {
    if (!req.raw.complete) abort.abort();
  };
  req.raw.once('close', onClose);
  let blob;
  try {
    blob = await ctx.blobs.ingest(body as Readable, {
      pieceSize: ctx.options.pieceSize,
      maxBytes: Limits.uploadBytes,
      signal: abort.signal,
    });
  } finally {
    req.raw.off('close', onClose);
  }
  try {
    if (Number.isFinite(declared) && declared !== blob.size)
      throw new ShoalError(ErrorCode.ABORTED, 'upload shorter than its Content-Length');
    return await use(blob);
  } finally {
    blob.release();
  }
}

/** The blob row of `blob` inside transaction `tx`: the stored one, or a new one written now. */
export async function ensureBlobRow(tx: Store, blob: IngestedBlob): Promise<BlobRow> {
  const known = await tx.getBlob(blob.sha256);
  if (known) return known;
  const row: BlobRow = {
    sha256: blob.sha256,
    size: blob.size,
    pieceSize: blob.pieceSize,
    pieces: blob.pieces,
    createdAt: Date.now(),
  };
  await tx.putBlob(row);
  return row;
}

/**
 * Records an uploaded blob as file `name` in one transaction: its blob row (when new), the file row (in
 * `groupId`, or none for a 1:1 send) and an audit entry whose detail is `<file id> <sha256> <size>`.
 */
export async function storeUploadedFile(
  store: Store,
  blob: IngestedBlob,
  file: { groupId: string | null; name: string; sharedBy: string },
  audit: Pick<AuditRow, 'action' | 'groupName' | 'target'>,
): Promise<{ f: FileRow; blobRow: BlobRow }> {
  return store.transaction(async (tx) => {
    const blobRow = await ensureBlobRow(tx, blob);
    const f = await tx.createFile({
      groupId: file.groupId,
      name: file.name,
      type: fileType(file.name),
      sha256: blob.sha256,
      size: blob.size,
      sharedBy: file.sharedBy,
      sharedAt: Date.now(),
    });
    await tx.addAudit({
      at: Date.now(),
      actorId: file.sharedBy,
      ...audit,
      detail: `${f.id} ${blob.sha256} ${blob.size}`,
    });
    return { f, blobRow };
  });
}
