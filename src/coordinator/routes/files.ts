/**
 * The file catalogue of a group: share (streamed upload, content-addressed), list with filters, one file
 * with its manifest, download with Range, unshare. Uploads accept any content type as raw bytes and are
 * limited to Limits.uploadBytes on this route only.
 */
import { createReadStream } from 'node:fs';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ErrorCode, ShoalError } from '../../protocol/errors.ts';
import type { FileFilter, FileRow, GroupRow } from '../../store/store.ts';
import type { CoordinatorContext } from '../context.ts';
import { defineRoute, replied } from '../define-route.ts';
import { checkFileName } from '../file-name.ts';
import { createNameCache, fileView, manifestView } from '../views.ts';
import { registerRawBodyRoutes, storeUploadedFile, withUploadedBlob } from './uploaded-blob.ts';

/** Parses a single `bytes=` range against `size`; undefined = serve everything, null = unsatisfiable. */
export function parseRange(header: string, size: number): { start: number; end: number } | undefined | null {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  // Several ranges or other units: RFC 9110 lets a server ignore Range and send the whole.
  if (!m) return undefined;
  const [, a, b] = m;
  if (a === '' && b === '') return undefined;
  if (a === '') {
    const n = Number(b);
    if (n === 0) return null;
    return size === 0 ? null : { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  const end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  if (start >= size || (b !== '' && Number(b) < start)) return null;
  return { start, end };
}

function contentDisposition(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]/g, '_').replace(/["\\]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

export function registerFileRoutes(app: FastifyInstance, ctx: CoordinatorContext): void {
  const { store, blobs, events } = ctx;

  const requireFile = async (group: GroupRow, fileId: string): Promise<FileRow> => {
    const f = await store.getFile(fileId);
    if (!f || f.groupId !== group.id)
      throw new ShoalError(ErrorCode.FILE_NOT_FOUND, `no file ${fileId} in ${group.name}`);
    return f;
  };

  // Uploads live in their own encapsulated context so only this route takes raw bodies.
  registerRawBodyRoutes(app, (upload) => {
    defineRoute(upload, ctx, 'shareFile', async ({ group, query, body, user, req }) => {
      const name = checkFileName(query.name);
      return withUploadedBlob(ctx, req, body, async (blob) => {
        const file = await storeUploadedFile(
          store,
          blob,
          { groupId: group.id, name, sharedBy: user.id },
          { action: 'file.share', groupName: group.name, target: name },
        );
        events.publish({ type: 'catalogue-changed', group: group.name, fileId: file.f.id, change: 'shared' });
        ctx.logger.info('file shared', { group: group.name, fileId: file.f.id, size: blob.size });
        return { file: await fileView(file.f, file.blobRow, group.name, createNameCache(store)) };
      });
    });
  });

  defineRoute(app, ctx, 'listFiles', async ({ group, query }) => {
    const filter: FileFilter = { sort: query.sort };
    if (query.search) filter.search = query.search;
    if (query.type) filter.type = query.type.replace(/^\./, '').toLowerCase();
    if (query.minSize !== undefined) filter.minSize = query.minSize;
    if (query.maxSize !== undefined) filter.maxSize = query.maxSize;
    if (query.since) {
      const t = Date.parse(query.since);
      if (Number.isNaN(t))
        throw new ShoalError(ErrorCode.VALIDATION_FAILED, `since: not a date: ${query.since}`);
      filter.since = t;
    }
    if (query.sharer) {
      const sharer = await store.getUserByName(query.sharer);
      if (!sharer) return { files: [] };
      filter.sharerId = sharer.id;
    }
    const rows = await store.listFiles(group.id, filter);
    const names = createNameCache(store);
    const blobRows = new Map<string, Awaited<ReturnType<typeof store.getBlob>>>();
    for (const r of rows) if (!blobRows.has(r.sha256)) blobRows.set(r.sha256, await store.getBlob(r.sha256));
    return {
      files: await Promise.all(rows.map((r) => fileView(r, blobRows.get(r.sha256), group.name, names))),
    };
  });

  defineRoute(app, ctx, 'getFile', async ({ group, params }) => {
    const f = await requireFile(group, params.fileId);
    const blob = await store.getBlob(f.sha256);
    if (!blob) throw new ShoalError(ErrorCode.FILE_NOT_FOUND, `the bytes of ${f.name} are gone`);
    return {
      file: await fileView(f, blob, group.name, createNameCache(store)),
      manifest: manifestView(f, blob),
    };
  });

  const sendFile = async (f: FileRow, req: FastifyRequest, reply: FastifyReply): Promise<typeof replied> => {
    const etag = `"${f.sha256}"`;
    reply
      .header('etag', etag)
      .header('accept-ranges', 'bytes')
      .header('content-disposition', contentDisposition(f.name));
    reply.header('cache-control', 'private, max-age=0, must-revalidate');
    if (req.headers['if-none-match'] === etag) {
      void reply.code(304).send();
      return replied;
    }
    let range = req.headers.range ? parseRange(req.headers.range, f.size) : undefined;
    const ifRange = req.headers['if-range'];
    if (range !== undefined && ifRange !== undefined && ifRange !== etag) range = undefined;
    if (range === null) {
      reply.header('content-range', `bytes */${f.size}`);
      throw new ShoalError(ErrorCode.RANGE_NOT_SATISFIABLE, `range outside 0-${f.size - 1}`);
    }
    const path = blobs.pathOf(f.sha256);
    if (!(await blobs.has(f.sha256)))
      throw new ShoalError(ErrorCode.FILE_NOT_FOUND, `the bytes of ${f.name} are gone`);
    reply.type('application/octet-stream');
    if (range) {
      reply
        .code(206)
        .header('content-range', `bytes ${range.start}-${range.end}/${f.size}`)
        .header('content-length', String(range.end - range.start + 1));
      void reply.send(
        createReadStream(path, { start: range.start, end: range.end, highWaterMark: 256 * 1024 }),
      );
      return replied;
    }
    reply.header('content-length', String(f.size));
    void reply.send(f.size === 0 ? Buffer.alloc(0) : createReadStream(path, { highWaterMark: 256 * 1024 }));
    return replied;
  };

  defineRoute(app, ctx, 'downloadFile', async ({ group, params, req, reply }) =>
    sendFile(await requireFile(group, params.fileId), req, reply),
  );

  defineRoute(app, ctx, 'unshareFile', async ({ group, params, user, membership }) => {
    const f = await requireFile(group, params.fileId);
    if (f.sharedBy !== user.id && membership?.role !== 'owner' && !user.isAdmin) {
      throw new ShoalError(
        ErrorCode.FORBIDDEN,
        'only the sharer, an owner of the group or an admin may stop sharing this file',
      );
    }
    await store.transaction(async (tx) => {
      await tx.deleteFile(f.id);
      await tx.addAudit({
        at: Date.now(),
        actorId: user.id,
        action: 'file.unshare',
        groupName: group.name,
        target: f.name,
        detail: `${f.id} ${f.sha256}`,
      });
    });
    events.publish({ type: 'catalogue-changed', group: group.name, fileId: f.id, change: 'unshared' });
    await ctx.collectGarbage();
    return undefined;
  });
}
