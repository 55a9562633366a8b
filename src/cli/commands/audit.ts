/** `shoal audit [--group G] [--limit N]`: the audit log (admins see all, owners their groups). */
import type { Command } from 'commander';
import type { CommandContext } from '../command-context.ts';
import { formatDate } from '../output.ts';
import { parseIntOption } from './parse.ts';

export function registerAuditCommands(program: Command, ctx: CommandContext): void {
  program
    .command('audit')
    .description('show the audit log (admin; owners for their groups)')
    .option('-g, --group <name>', 'only this group')
    .option('-n, --limit <count>', 'at most this many entries (1-1000)', parseIntOption)
    .option('--json', 'print JSON')
    .action(async (opts: { group?: string; limit?: number; json?: boolean }) => {
      const out = ctx.output(opts);
      const s = await ctx.session();
      const res = await s.api.call(
        'audit',
        { query: { group: opts.group, limit: opts.limit } },
        { signal: ctx.io.signal },
      );
      out.result(res, () =>
        out.table(
          ['WHEN', 'WHO', 'ACTION', 'GROUP', 'TARGET', 'DETAIL'],
          res.entries.map((e) => [
            formatDate(e.at),
            e.actor ?? '',
            e.action,
            e.group ?? '',
            e.target ?? '',
            e.detail ?? '',
          ]),
        ),
      );
    });
}
