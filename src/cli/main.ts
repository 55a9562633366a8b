/**
 * The `shoal` command. `main(argv, io)` parses with commander, runs one command, and resolves to the exit code
 * (see exit-codes.ts) instead of exiting, so tests run commands in-process with their own io. Every failure
 * ends as one line on stderr (and a JSON error object on stdout with --json).
 */
import { Command, CommanderError } from 'commander';
import { ErrorCode, ShoalError, isShoalError } from '../protocol/errors.ts';
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

export type { CliIo } from './output.ts';
export type { CommandContext } from './command-context.ts';
export { ExitCode } from './exit-codes.ts';

/** Adds more commands to the program (the agent commands register through this). */
export type CommandRegistrar = (program: Command, ctx: CommandContext) => void;

const extraRegistrars: CommandRegistrar[] = [];

/**
 * Registers a command family defined outside src/cli/commands (call before `main`). Prefer adding a file under
 * src/cli/commands/ and a line in buildProgram; this hook exists for commands that live with their subsystem.
 */
export function addCommands(registrar: CommandRegistrar): void {
  extraRegistrars.push(registrar);
}

function readVersion(): string {
  return process.env.npm_package_version ?? '0.1.0';
}

/** Builds the commander program for one invocation. */
export function buildProgram(ctx: CommandContext): Command {
  const program = new Command('shoal');
  program
    .description('Get files to groups of machines: securely, fast, unattended.')
    .version(readVersion(), '-V, --version')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => ctx.io.stdout.write(s),
      writeErr: (s) => ctx.io.stderr.write(s),
    })
    .showHelpAfterError('(run with --help for usage)');
  registerServerCommand(program, ctx);
  registerAuthCommands(program, ctx);
  registerUserCommands(program, ctx);
  registerGroupCommands(program, ctx);
  registerFileCommands(program, ctx);
  registerAuditCommands(program, ctx);
  for (const r of extraRegistrars) r(program, ctx);
  return program;
}

/** A hint printed after the one-line message, for errors a user can act on. */
function hintFor(err: ShoalError, ctx: CommandContext): string | undefined {
  switch (err.code) {
    case ErrorCode.UNAUTHENTICATED:
    case ErrorCode.SESSION_EXPIRED:
      return err.message.includes('shoal login') ? undefined : 'log in again with: shoal login URL --user NAME';
    case ErrorCode.TLS_FINGERPRINT_MISMATCH:
      return err.message.includes('shoal login') ? undefined : retrustHint(String(err.details?.host ? `https://${err.details.host}` : 'URL'), err.details?.actual as string | undefined);
    case ErrorCode.RATE_LIMITED: {
      if (/retry|try again/i.test(err.message)) return undefined;
      const secs = err.details?.retryAfterSeconds;
      return typeof secs === 'number' ? `try again in ${secs} s` : 'wait a little and try again';
    }
    default:
      void ctx;
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
  return { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env, signal: ac.signal, cwd: process.cwd() };
}

/**
 * Runs the CLI. `argv` is process.argv-style (`[node, script, ...args]`); `io` defaults to the process.
 * Resolves to the exit code.
 */
export async function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  const ctx = createCommandContext(io);
  const program = buildProgram(ctx);
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
        : new ShoalError(ErrorCode.INTERNAL, err instanceof Error ? err.message : String(err), undefined, { cause: err });
    const code = isShoalError(err) ? exitCodeFor(shoalErr.code) : localExitCode(err, shoalErr);
    if (ctx.json) {
      io.stdout.write(JSON.stringify({ error: { code: shoalErr.code, message: shoalErr.message, exitCode: code } }, null, 2) + '\n');
    }
    io.stderr.write(`shoal: ${shoalErr.message}\n`);
    const hint = hintFor(shoalErr, ctx);
    if (hint) io.stderr.write(`hint: ${hint}\n`);
    if (shoalErr.code === ErrorCode.INTERNAL && io.env.SHOAL_DEBUG && err instanceof Error) io.stderr.write(`${err.stack}\n`);
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
