/** Admin commands on accounts: `user create|list|delete|admin`. */
import type { Command } from 'commander';
import type { User } from '../../protocol/api.ts';
import { sessionAction, type CommandContext } from '../command-context.ts';
import { formatDate } from '../output.ts';
import { readPassword } from '../password.ts';

export function registerUserCommands(program: Command, ctx: CommandContext): void {
  const user = program.command('user').description('manage accounts (admin)');

  sessionAction<[string], { admin?: boolean; passwordStdin?: boolean; json?: boolean }>(
    ctx,
    user
      .command('create')
      .description('create an account')
      .argument('<username>')
      .option('--admin', 'make the account an admin')
      .option('--password-stdin', "read the new account's password from the first line of stdin"),
    async ({ out, s }, [username], opts) => {
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
    },
  );

  sessionAction<[]>(ctx, user.command('list').description('list accounts'), async ({ out, s }) => {
    const res = await s.api.call('listUsers', {}, { signal: ctx.io.signal });
    out.result(res, () =>
      out.table(
        ['USER', 'ADMIN', 'CREATED'],
        res.users.map((u: User) => [u.username, u.isAdmin ? 'yes' : '', formatDate(u.createdAt)]),
      ),
    );
  });

  sessionAction<[string]>(
    ctx,
    user.command('delete').description('delete an account').argument('<username>'),
    async ({ out, s }, [username]) => {
      await s.api.call('deleteUser', { params: { username } }, { signal: ctx.io.signal });
      out.result({ deleted: username }, () => out.line(`Deleted user ${username}.`));
    },
  );

  sessionAction<[string], { revoke?: boolean; json?: boolean }>(
    ctx,
    user
      .command('admin')
      .description('grant (or with --revoke, take away) admin rights')
      .argument('<username>')
      .option('--revoke', 'take admin rights away'),
    async ({ out, s }, [username], opts) => {
      const res = await s.api.call(
        'updateUser',
        { params: { username }, body: { isAdmin: !opts.revoke } },
        { signal: ctx.io.signal },
      );
      out.result(res, () =>
        out.line(`${res.user.username} is ${res.user.isAdmin ? 'now an admin' : 'no longer an admin'}.`),
      );
    },
  );
}
