/** File commands: `file share|list|unshare|download`. */
import path from 'node:path';
import type { Command } from 'commander';
import { ErrorCode, ShoalError } from '../../protocol/errors.ts';
import type { CatalogueFile } from '../../protocol/api.ts';
import { sessionAction, type CommandContext } from '../command-context.ts';
import { downloadToDir, resolveFile } from '../download.ts';
import { statLocalFile, uploadWithProgress } from '../local-file.ts';
import { createProgress, formatBytes, formatDate } from '../output.ts';
import { parseSinceOption, parseSizeOption } from './parse.ts';

type JsonOpt = { json?: boolean };

interface ListOpts extends JsonOpt {
  search?: string;
  type?: string;
  sharer?: string;
  since?: string;
  minSize?: number;
  maxSize?: number;
  sort?: 'name' | 'size' | 'date';
}

export function registerFileCommands(program: Command, ctx: CommandContext): void {
  const file = program.command('file').description("share, find and fetch a group's files");
  const cwd = () => ctx.io.cwd ?? process.cwd();

  file
    .command('share')
    .description('upload a file into a group (streamed; hashed by the coordinator)')
    .argument('<group>')
    .argument('<path>')
    .option('--name <name>', 'the name to share it under (default: its base name)')
    .option('--json', 'print JSON')
    .action(async (group: string, filePath: string, opts: JsonOpt & { name?: string }) => {
      const out = ctx.output(opts);
      const { abs, size } = await statLocalFile(cwd(), filePath);
      const name = opts.name ?? path.basename(abs);
      const s = await ctx.session();
      const res = await uploadWithProgress(out, `share ${name}`, abs, size, ctx.io.signal, (body, o) =>
        s.api.upload('shareFile', { params: { group }, query: { name } }, body, o),
      );
      out.result(res, () => {
        out.line(`Shared ${res.file.name} in ${group}: ${formatBytes(res.file.size)}, id ${res.file.id}`);
        out.line(`SHA-256 ${res.file.sha256}`);
      });
    });

  file
    .command('list')
    .description("list or search a group's files")
    .argument('<group>')
    .option('-s, --search <text>', 'names containing this text')
    .option('-t, --type <ext>', 'only this extension (iso, tar, ...)')
    .option('--sharer <user>', 'only files shared by this user')
    .option('--since <date>', 'shared since a date (2026-01-31) or an age (12h, 7d)')
    .option('--min-size <size>', 'at least this size (1500, 10k, 1.5M, 2G)', parseSizeOption)
    .option('--max-size <size>', 'at most this size', parseSizeOption)
    .option('--sort <key>', 'name, size or date')
    .option('--json', 'print JSON')
    .action(async (group: string, opts: ListOpts) => {
      const out = ctx.output(opts);
      if (opts.sort && !['name', 'size', 'date'].includes(opts.sort)) {
        throw new ShoalError(ErrorCode.BAD_REQUEST, `--sort must be name, size or date, not ${opts.sort}`);
      }
      const s = await ctx.session();
      const query = {
        search: opts.search,
        type: opts.type?.replace(/^\./, '').toLowerCase(),
        sharer: opts.sharer,
        since: opts.since === undefined ? undefined : parseSinceOption(opts.since),
        minSize: opts.minSize,
        maxSize: opts.maxSize,
        sort: opts.sort,
      };
      const res = await s.api.call('listFiles', { params: { group }, query }, { signal: ctx.io.signal });
      out.result(res, () =>
        out.table(
          ['ID', 'NAME', 'SIZE', 'TYPE', 'SHARED BY', 'SHARED'],
          res.files.map((f: CatalogueFile) => [
            f.id,
            f.name,
            formatBytes(f.size),
            f.type,
            f.sharedBy,
            formatDate(f.sharedAt),
          ]),
        ),
      );
    });

  sessionAction<[string, string]>(
    ctx,
    file
      .command('unshare')
      .description('stop sharing a file (its sharer, an owner or an admin)')
      .argument('<group>')
      .argument('<file>', 'file id or exact name'),
    async ({ out, s }, [group, ref]) => {
      const f = await resolveFile(s.api, group, ref, ctx.io.signal);
      await s.api.call('unshareFile', { params: { group, fileId: f.id } }, { signal: ctx.io.signal });
      out.result({ unshared: { id: f.id, name: f.name, group } }, () =>
        out.line(`Stopped sharing ${f.name} (${f.id}) in ${group}.`),
      );
    },
  );

  sessionAction<[string, string], JsonOpt & { out?: string }>(
    ctx,
    file
      .command('download')
      .description('download a file, resuming a partial download and verifying its SHA-256')
      .argument('<group>')
      .argument('<file>', 'file id or exact name')
      .option('-o, --out <dir>', 'directory to save into (default: the current directory)'),
    async ({ out, s }, [group, ref], opts) => {
      const f = await resolveFile(s.api, group, ref, ctx.io.signal);
      let progress: ReturnType<typeof createProgress> | undefined;
      try {
        const res = await downloadToDir({
          api: s.api,
          group,
          file: f,
          outDir: path.resolve(cwd(), opts.out ?? '.'),
          signal: ctx.io.signal,
          onProgress: (p) => {
            progress ??= createProgress(out, `download ${f.name}`, p.total, p.startAt);
            progress.update(p.done);
          },
        });
        progress?.stop();
        out.result({ file: f, ...res }, () => {
          if (res.alreadyPresent)
            out.line(`${res.path} is already there with the same SHA-256; nothing to do.`);
          else {
            const resumed = res.resumedFrom > 0 ? ` (resumed at ${formatBytes(res.resumedFrom)})` : '';
            out.line(`Saved ${res.path}: ${formatBytes(res.size)}, SHA-256 verified${resumed}.`);
          }
        });
      } finally {
        progress?.stop();
      }
    },
  );
}
