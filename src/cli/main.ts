/**
 * The `shoal` command. `main(argv, io)` parses with commander, runs one command, and resolves to the exit code
 * (see exit-codes.ts) instead of exiting, so tests run commands in-process with their own io. Every failure
 * ends as one line on stderr (and a JSON error object on stdout with --json).
 */
import { Command, CommanderError } from 'commander';
import { ErrorCode, ShoalError, isShoalError } from '../protocol/errors.ts';
import { packageVersion } from '../package-version.ts';
import { createCommandContext, type CommandContext } from './command-context.ts';
import { ExitCode, exitCodeFor } from './exit-codes.ts';
import type { CliIo } from './output.ts';
import { retrustHint } from './session.ts';
import { registerAuthCommands } from './commands/auth.ts';
import { registerUserCommands } from './commands/user.ts';
import { registerGroupCommands } from './commands/group.ts';
import { registerFileCommands } from './commands/file.ts';
import { registerAuditCommands } from './commands/audit.ts';
import { registerServerCommand } from './commands/server.ts';
import { registerAgentCommand } from './commands/agent.ts';
import { registerDeliveryCommands } from './commands/deliveries.ts';

export type { CliIo } from './output.ts';
export type { CommandContext } from './command-context.ts';
export { ExitCode } from './exit-codes.ts';

/**
 * Adds a command family to the program. Each family lives in src/cli/commands/<family>.ts and is listed in
 * `commandFamilies` below; `main` also takes extra ones (tests, embedding).
 */
export type CommandRegistrar = (program: Command, ctx: CommandContext) => void;

/** The built-in command families, in the order `shoal --help` lists them. */
export const commandFamilies: readonly CommandRegistrar[] = [
  registerServerCommand,
  registerAuthCommands,
  registerUserCommands,
  registerGroupCommands,
  registerFileCommands,
  registerAuditCommands,
  registerAgentCommand,
  registerDeliveryCommands,
];

/** Builds the commander program for one invocation. */
export function buildProgram(ctx: CommandContext, extra: readonly CommandRegistrar[] = []): Command {
  const program = new Command('shoal');
  program
    .description('Get files to groups of machines: securely, fast, unattended.')
    .version(packageVersion(), '-V, --version')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => ctx.io.stdout.write(s),
      writeErr: (s) => ctx.io.stderr.write(s),
    })
    .showHelpAfterError('(run with --help for usage)');
  for (const register of [...commandFamilies, ...extra]) register(program, ctx);
  return program;
}

/** A hint printed after the one-line message, for errors a user can act on. */
function hintFor(err: ShoalError): string | undefined {
  switch (err.code) {
    case ErrorCode.UNAUTHENTICATED:
    case ErrorCode.SESSION_EXPIRED:
      return err.message.includes('shoal login')
        ? undefined
        : 'log in again with: shoal login URL --user NAME';
    case ErrorCode.TLS_FINGERPRINT_MISMATCH:
      return err.message.includes('shoal login')
        ? undefined
        : retrustHint(
            String(err.details?.host ? `https://${err.details.host}` : 'URL'),
            err.details?.actual as string | undefined,
          );
    case ErrorCode.RATE_LIMITED: {
      if (/retry|try again/i.test(err.message)) return undefined;
      const secs = err.details?.retryAfterSeconds;
      return typeof secs === 'number' ? `try again in ${secs} s` : 'wait a little and try again';
    }
    default:
      return undefined;
  }
}

/** The process io of a real run: process streams and env, a signal fired by the first SIGINT/SIGTERM. */
export function processIo(): CliIo {
  const ac = new AbortController();
  let count = 0;
  const onSignal = () => {
    count++;
    // A second Ctrl-C means "now": do not wait for a clean stop.
    if (count > 1) process.exit(ExitCode.INTERRUPTED);
    ac.abort(new ShoalError(ErrorCode.ABORTED, 'interrupted'));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    signal: ac.signal,
    cwd: process.cwd(),
  };
}

/**
 * Runs the CLI. `argv` is process.argv-style (`[node, script, ...args]`); `io` defaults to the process;
 * `extra` adds command families. Resolves to the exit code.
 */
export async function main(
  argv: string[],
  io: CliIo = processIo(),
  extra: readonly CommandRegistrar[] = [],
): Promise<number> {
  const ctx = createCommandContext(io);
  const program = buildProgram(ctx, extra);
  try {
    await program.parseAsync(argv, { from: 'node' });
    return ExitCode.OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version end through exitOverride too, with exit code 0.
      return err.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE;
    }
    const shoalErr = isShoalError(err)
      ? err
      : (err as { name?: string })?.name === 'AbortError' || io.signal?.aborted
        ? new ShoalError(ErrorCode.ABORTED, 'interrupted')
        : new ShoalError(ErrorCode.INTERNAL, err instanceof Error ? err.message : String(err), undefined, {
            cause: err,
          });
    const code = isShoalError(err) ? exitCodeFor(shoalErr.code) : localExitCode(err, shoalErr);
    if (ctx.json) {
      io.stdout.write(
        JSON.stringify(
          { error: { code: shoalErr.code, message: shoalErr.message, exitCode: code } },
          null,
          2,
        ) + '\n',
      );
    }
    io.stderr.write(`shoal: ${shoalErr.message}\n`);
    const hint = hintFor(shoalErr);
    if (hint) io.stderr.write(`hint: ${hint}\n`);
    if (shoalErr.code === ErrorCode.INTERNAL && io.env.SHOAL_DEBUG && err instanceof Error)
      io.stderr.write(`${err.stack}\n`);
    return code;
  } finally {
    await ctx.cleanup();
  }
}

/** Exit code for errors that are not ShoalErrors: local file errors are generic failures, aborts are 130. */
function localExitCode(err: unknown, mapped: ShoalError): ExitCode {
  if (mapped.code === ErrorCode.ABORTED) return ExitCode.INTERRUPTED;
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code === 'ENOENT') return ExitCode.NOT_FOUND;
  if (code === 'EACCES' || code === 'EPERM') return ExitCode.FORBIDDEN;
  return ExitCode.GENERIC;
}

/** Runs the CLI with user arguments only (`['group', 'list']`), for tests and embedding. */
export function run(args: string[], io: CliIo): Promise<number> {
  return main(['node', 'shoal', ...args], io);
}
