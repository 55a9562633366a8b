/**
 * Account commands: `register`, `login` (trust on first use of the coordinator's certificate), `logout`,
 * `whoami`.
 */
import type { Command } from 'commander';
import { ErrorCode, isShoalError } from '../../protocol/errors.ts';
import type { User } from '../../protocol/api.ts';
import { sessionAction, type CommandContext } from '../command-context.ts';
import { configHome, loadConfig, saveConfig } from '../config.ts';
import type { Output } from '../output.ts';
import { readPassword } from '../password.ts';
import { connect, trustServer } from '../session.ts';

interface LoginOpts {
  user: string;
  fingerprint?: string;
  passwordStdin?: boolean;
  json?: boolean;
  login?: boolean;
}

function describeUser(u: User): string {
  return `${u.username}${u.isAdmin ? ' (admin)' : ''}`;
}

/** Logs in to a trusted URL and saves url, fingerprint, token and username. */
async function doLogin(
  ctx: CommandContext,
  out: Output,
  url: string,
  fingerprint: string,
  username: string,
  password: string,
) {
  const home = configHome(ctx.io.env);
  const { api, close } = connect(url, fingerprint);
  ctx.defer(close);
  const res = await api.call('login', { body: { username, password } }, { signal: ctx.io.signal });
  const config = await loadConfig(home);
  config.knownHosts[url] = fingerprint;
  await saveConfig(home, {
    ...config,
    url,
    fingerprint,
    token: res.token,
    username: res.user.username,
    expiresAt: res.expiresAt,
  });
  return res;
}

/** Adds what `register` and `login` both take: the coordinator URL, the user, the fingerprint, --password-stdin. */
function loginArguments(cmd: Command, userHelp: string): Command {
  return cmd
    .argument('<url>', 'coordinator URL, https://host:port')
    .requiredOption('-u, --user <name>', userHelp)
    .option(
      '--fingerprint <sha256>',
      'the SHA-256 fingerprint of the coordinator certificate (else trusted on first use)',
    )
    .option('--password-stdin', 'read the password from the first line of stdin');
}

/** Trusts the coordinator at `rawUrl` (by --fingerprint or on first use); the config it was checked against. */
async function trustCoordinator(ctx: CommandContext, out: Output, rawUrl: string, opts: LoginOpts) {
  const home = configHome(ctx.io.env);
  const config = await loadConfig(home);
  const trusted = await trustServer(out, home, config, rawUrl, opts.fingerprint, ctx.io.signal);
  return { home, config, ...trusted };
}

export function registerAuthCommands(program: Command, ctx: CommandContext): void {
  loginArguments(
    program.command('register').description('create an account on a coordinator, then log in'),
    'the username to create',
  )
    .option('--no-login', 'only create the account')
    .option('--json', 'print JSON')
    .action(async (rawUrl: string, opts: LoginOpts) => {
      const out = ctx.output(opts);
      const { home, config, url, fingerprint } = await trustCoordinator(ctx, out, rawUrl, opts);
      const password = await readPassword(ctx.io, {
        fromStdin: opts.passwordStdin,
        prompt: `New password for ${opts.user}: `,
        confirm: true,
      });
      const { api, close } = connect(url, fingerprint);
      ctx.defer(close);
      const reg = await api.call(
        'register',
        { body: { username: opts.user, password } },
        { signal: ctx.io.signal },
      );
      config.knownHosts[url] = fingerprint;
      await saveConfig(home, config);
      if (opts.login === false) {
        out.result({ user: reg.user, url, fingerprint }, () =>
          out.line(`Created account ${describeUser(reg.user)} on ${url}.`),
        );
        return;
      }
      const res = await doLogin(ctx, out, url, fingerprint, opts.user, password);
      out.result({ user: res.user, url, fingerprint, expiresAt: res.expiresAt }, () =>
        out.line(`Created account ${describeUser(res.user)} on ${url} and logged in.`),
      );
    });

  loginArguments(
    program.command('login').description('log in to a coordinator and save the session'),
    'username',
  )
    .option('--json', 'print JSON')
    .action(async (rawUrl: string, opts: LoginOpts) => {
      const out = ctx.output(opts);
      const { url, fingerprint } = await trustCoordinator(ctx, out, rawUrl, opts);
      const password = await readPassword(ctx.io, {
        fromStdin: opts.passwordStdin,
        prompt: `Password for ${opts.user}: `,
      });
      const res = await doLogin(ctx, out, url, fingerprint, opts.user, password);
      out.result({ user: res.user, url, fingerprint, expiresAt: res.expiresAt }, () =>
        out.line(`Logged in to ${url} as ${describeUser(res.user)}.`),
      );
    });

  program
    .command('logout')
    .description('end the session and forget its token')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const out = ctx.output(opts);
      const home = configHome(ctx.io.env);
      const config = await loadConfig(home);
      if (!config.token || !config.url) {
        out.result({ loggedOut: false }, () => out.line('Not logged in.'));
        return;
      }
      const s = await ctx.session();
      try {
        await s.api.call('logout', {}, { signal: ctx.io.signal });
      } catch (err) {
        // An expired or unknown session is already over; anything else still ends it locally.
        if (!isShoalError(err)) throw err;
        if (err.code !== ErrorCode.SESSION_EXPIRED && err.code !== ErrorCode.UNAUTHENTICATED) {
          out.note(
            `Note: the coordinator could not be told (${err.message}); the token is forgotten here anyway.`,
          );
        }
      }
      const { token: _t, expiresAt: _e, ...rest } = config;
      await saveConfig(home, rest as typeof config);
      out.result({ loggedOut: true, url: config.url, username: config.username }, () =>
        out.line(`Logged out of ${config.url}${config.username ? ' (' + config.username + ')' : ''}.`),
      );
    });

  sessionAction<[]>(
    ctx,
    program.command('whoami').description('show the logged-in user'),
    async ({ out, s }) => {
      const { user } = await s.api.call('whoami', {}, { signal: ctx.io.signal });
      out.result({ user, url: s.url, fingerprint: s.fingerprint }, () => {
        out.line(`${describeUser(user)} on ${s.url}`);
      });
    },
  );
}
