/**
 * What every command handler gets from `main`: the io, an Output bound to its `--json` flag, and the saved
 * session (opened on demand and closed by `main` when the command ends).
 */
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
