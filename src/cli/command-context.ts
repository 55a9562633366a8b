/**
 * What every command handler gets from `main`: the io, an Output bound to its `--json` flag, and the saved
 * session (opened on demand and closed by `main` when the command ends).
 */
import type { Command } from 'commander';
import { createOutput, type CliIo, type Output } from './output.ts';
import { openSession, type Session } from './session.ts';

export interface CommandContext {
  readonly io: CliIo;
  /** The Output of the running command; remembers `--json` so errors print in the same mode. */
  output(opts: { json?: boolean }): Output;
  /** The saved session (requires a token unless told otherwise). */
  session(opts?: { requireToken?: boolean }): Promise<Session>;
  /** Registers cleanup to run when the command ends (sessions, temp resources). */
  defer(fn: () => Promise<void> | void): void;
}

/** Builds the context of one `main` invocation; `json` and `cleanup` are read back by `main`. */
export function createCommandContext(
  io: CliIo,
): CommandContext & { json: boolean; cleanup(): Promise<void> } {
  const deferred: (() => Promise<void> | void)[] = [];
  const ctx = {
    io,
    json: false,
    output(opts: { json?: boolean }): Output {
      ctx.json = Boolean(opts.json);
      return createOutput(io, ctx.json);
    },
    async session(opts?: { requireToken?: boolean }): Promise<Session> {
      const s = await openSession(io, opts);
      deferred.push(() => s.close());
      return s;
    },
    defer(fn: () => Promise<void> | void) {
      deferred.push(fn);
    },
    async cleanup() {
      while (deferred.length) {
        try {
          await deferred.pop()!();
        } catch {
          // Cleanup must not hide the command's own outcome.
        }
      }
    },
  };
  return ctx;
}

/** What a `sessionAction` handler gets: the Output bound to `--json` and the saved session. */
export interface SessionRun {
  out: Output;
  s: Session;
}

/**
 * Adds `--json` to `cmd` (after its other options) and an action that opens the command's Output, then the
 * saved session, before calling `fn` with the positional arguments `A` and the options `O`.
 */
export function sessionAction<
  A extends (string | undefined)[],
  O extends { json?: boolean } = { json?: boolean },
>(ctx: CommandContext, cmd: Command, fn: (run: SessionRun, args: A, opts: O) => Promise<void>): Command {
  return cmd.option('--json', 'print JSON').action(async (...argv: unknown[]) => {
    // commander passes the positional arguments, then the options, then the Command itself.
    const opts = argv[argv.length - 2] as O;
    const out = ctx.output(opts);
    const s = await ctx.session();
    await fn({ out, s }, argv.slice(0, -2) as A, opts);
  });
}
