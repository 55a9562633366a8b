/** Admin commands on accounts: `user create|list|delete|admin`. */
import type { Command } from 'commander';
import type { User } from '../../protocol/api.ts';
import type { CommandContext } from '../command-context.ts';
import { formatDate } from '../output.ts';
import { readPassword } from '../password.ts';

export function registerUserCommands(program: Command, ctx: CommandContext): void {
  const user = program.command('user').description('manage accounts (admin)');

  user
    .command('create')
    .description('create an account')
    .argument('<username>')
    .option('--admin', 'make the account an admin')
    .option('--password-stdin', "read the new account's password from the first line of stdin")
    .option('--json', 'print JSON')
    .action(async (username: string, opts: { admin?: boolean; passwordStdin?: boolean; json?: boolean }) => {
      const out = ctx.output(opts);
      const s = await ctx.session();
      const password = await readPassword(ctx.io, {
        fromStdin: opts.passwordStdin,
        prompt: `Password for the new user ${username}: `,
        confirm: true,
      });
      const res = await s.api.call(
        'createUser',
        { body: { username, password, isAdmin: Boolean(opts.admin) } },
        { signal: ctx.io.signal },
      );
      out.result(res, () =>
        out.line(`Created user ${res.user.username}${res.user.isAdmin ? ' (admin)' : ''}.`),
      );
    });

  user
    .command('list')
    .description('list accounts')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const out = ctx.output(opts);
      const s = await ctx.session();
      const res = await s.api.call('listUsers', {}, { signal: ctx.io.signal });
      out.result(res, () =>
        out.table(
          ['USER', 'ADMIN', 'CREATED'],
          res.users.map((u: User) => [u.username, u.isAdmin ? 'yes' : '', formatDate(u.createdAt)]),
        ),
      );
    });

  user
    .command('delete')
    .description('delete an account')
    .argument('<username>')
    .option('--json', 'print JSON')
    .action(async (username: string, opts: { json?: boolean }) => {
      const out = ctx.output(opts);
      const s = await ctx.session();
      await s.api.call('deleteUser', { params: { username } }, { signal: ctx.io.signal });
      out.result({ deleted: username }, () => out.line(`Deleted user ${username}.`));
    });

  user
    .command('admin')
    .description('grant (or with --revoke, take away) admin rights')
    .argument('<username>')
    .option('--revoke', 'take admin rights away')
    .option('--json', 'print JSON')
    .action(async (username: string, opts: { revoke?: boolean; json?: boolean }) => {
      const out = ctx.output(opts);
      const s = await ctx.session();
      const res = await s.api.call(
        'updateUser',
        { params: { username }, body: { isAdmin: !opts.revoke } },
        { signal: ctx.io.signal },
      );
      out.result(res, () =>
        out.line(`${res.user.username} is ${res.user.isAdmin ? 'now an admin' : 'no longer an admin'}.`),
      );
    });
}
