/**
 * `shoal agent`: runs the receiver daemon in the foreground with the login saved by `shoal login` (or
 * `--token`), until interrupted. Its state (id, deliveries, held files, piece-server certificate) lives in
 * `$SHOAL_HOME/agent`. Logs are JSON lines on stderr; see docs/shoal-agent.service for a systemd unit.
 */
import { homedir, hostname } from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { createAgent } from '../../agent/agent.ts';
import { createLogger, type LogLevel } from '../../logger.ts';
import { ErrorCode, ShoalError } from '../../protocol/errors.ts';
import type { CommandContext } from '../command-context.ts';
import { configHome, loadConfig } from '../config.ts';

interface AgentOpts {
  downloadDir?: string;
  name?: string;
  listen?: string;
  token?: string;
  streams?: string;
  stateDir?: string;
  multicastInterface?: string;
  interface?: string;
}

/** Registers `shoal agent`. */
export function registerAgentCommand(program: Command, ctx: CommandContext): void {
  program
    .command('agent')
    .description('receive what your groups are sent, and serve it to other members (runs until stopped)')
    .option('-d, --download-dir <dir>', 'where received files go (default ~/shoal-downloads)')
    .option('--name <name>', 'name shown in `shoal receivers` (default: host name)')
    .option('--listen <host:port>', 'address of the piece server for other members', '0.0.0.0:0')
    .option('--token <token>', 'bearer token (default: the one saved by `shoal login`)')
    .option('--streams <n>', 'parallel connections per holder', '4')
    .option('--state-dir <dir>', 'agent state (default $SHOAL_HOME/agent)')
    .option('--multicast-interface <addr>', 'local address to join multicast groups on (multi-homed hosts)')
    .option('--interface <addr>', 'same as --multicast-interface')
    .action(async (opts: AgentOpts) => {
      const env = ctx.io.env;
      const home = configHome(env);
      const config = await loadConfig(home);
      const token = opts.token ?? env.SHOAL_TOKEN ?? config.token;
      if (!config.url || !token)
        throw new ShoalError(
          ErrorCode.UNAUTHENTICATED,
          'not logged in: run `shoal login URL --user NAME` first',
        );
      const streams = Number(opts.streams);
      if (!Number.isInteger(streams) || streams < 1 || streams > 64)
        throw new ShoalError(ErrorCode.BAD_REQUEST, '--streams must be 1..64');
      const cwd = ctx.io.cwd ?? process.cwd();
      const downloadDir = path.resolve(
        cwd,
        opts.downloadDir ?? path.join(env.HOME || homedir(), 'shoal-downloads'),
      );
      const stateDir = path.resolve(cwd, opts.stateDir ?? path.join(home, 'agent'));
      const logger = createLogger({
        level: (env.SHOAL_LOG as LogLevel | undefined) ?? 'info',
        write: (l) => ctx.io.stderr.write(l),
      });
      const agent = createAgent(
        { logger },
        {
          serverUrl: config.url,
          fingerprint: config.fingerprint ?? config.knownHosts[config.url],
          token,
          downloadDir,
          stateDir,
          name: opts.name ?? hostname(),
          listen: opts.listen,
          streams,
          multicastInterface: opts.multicastInterface ?? opts.interface,
        },
      );
      await agent.start();
      ctx.io.stderr.write(`shoal agent ${agent.agentId} receiving into ${downloadDir} (Ctrl-C to stop)\n`);
      await new Promise<void>((resolve) => {
        if (!ctx.io.signal) return; // no signal: runs until the process is killed
        if (ctx.io.signal.aborted) resolve();
        ctx.io.signal.addEventListener('abort', () => resolve(), { once: true });
      });
      await agent.stop();
    });
}
