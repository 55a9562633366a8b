/**
 * `shoal server`: runs a coordinator in this process until SIGINT/SIGTERM, then stops it cleanly. Prints its
 * URL, certificate fingerprint, and (first start only) the generated admin password.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidArgumentError, type Command } from 'commander';
import { createLogger, type LogLevel } from '../../logger.ts';
import { ErrorCode, ShoalError } from '../../protocol/errors.ts';
import type { CommandContext } from '../command-context.ts';
import { parseIntOption } from './parse.ts';

interface ServerOpts {
  data?: string;
  db?: string;
  host: string;
  port: number;
  cert?: string;
  key?: string;
  registration: boolean;
  open?: boolean;
  json?: boolean;
  multicast: boolean;
  multicastRate?: number;
  multicastMinRate?: number;
  multicastInterface?: string;
  multicastTtl?: number;
  multicastMaxPasses?: number;
  heartbeatMs?: number;
}

/** A positive number of Mbit/s. */
function parseMbit(value: string): number {
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value.trim()) || !(n > 0)) throw new InvalidArgumentError('expected Mbit/s > 0');
  return n;
}

/** A whole number in [min, max]. */
const parseBounded = (min: number, max: number) => (value: string) => {
  const n = parseIntOption(value);
  if (n < min || n > max) throw new InvalidArgumentError(`expected ${min}..${max}`);
  return n;
};

/** Where the built web UI lives in a checkout (web/dist). */
const defaultWebRoot = fileURLToPath(new URL('../../../web/dist', import.meta.url));

/** The first `name` executable on PATH, if any. */
function findOnPath(name: string, env: Record<string, string | undefined>): string | undefined {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not in this directory.
    }
  }
  return undefined;
}

/** A URL a browser on this machine can open: a wildcard listener is reachable as localhost. */
function browserUrl(url: string): string {
  const u = new URL(url);
  if (u.hostname === '127.0.0.1' || u.hostname === '[::1]') u.hostname = 'localhost';
  return u.origin + '/';
}

export function registerServerCommand(program: Command, ctx: CommandContext): void {
  program
    .command('server')
    .description('run a coordinator (HTTPS API, WebSocket, web UI) until interrupted')
    .option(
      '--data <dir>',
      'data directory: certificate, keys, files, SQLite database (default $SHOAL_DATA or ./.shoal-data)',
    )
    .option(
      '--db <url>',
      'database: sqlite:/path/file.db (default: shoal.db in the data directory) or postgres://…',
    )
    .option('--host <host>', 'listen address', '0.0.0.0')
    .option('--port <port>', 'listen port (0 = any free port)', parseIntOption, 8443)
    .option('--cert <file>', 'PEM certificate to use instead of the self-signed one (with --key)')
    .option('--key <file>', 'PEM private key of --cert')
    .option('--no-registration', 'refuse self-registration (admins create accounts)')
    .option('--open', 'open the web UI in a browser (xdg-open)')
    .option('--multicast-rate <mbit>', 'multicast rate ceiling, Mbit/s on the wire (default 200)', parseMbit)
    .option(
      '--multicast-min-rate <mbit>',
      'floor of the adaptive multicast rate, Mbit/s (default ceiling / 8)',
      parseMbit,
    )
    .option('--multicast-interface <addr>', 'local address to send multicast from (multi-homed hosts)')
    .option(
      '--multicast-ttl <n>',
      'multicast TTL: 1 keeps it on the local link (default 1)',
      parseBounded(1, 255),
    )
    .option(
      '--multicast-max-passes <n>',
      'most multicast passes before the swarm repairs the rest (default 8)',
      parseBounded(1, 100),
    )
    .option('--no-multicast', 'deliver by the swarm only')
    .option(
      '--heartbeat-ms <ms>',
      'agent heartbeat interval, ms (an agent silent for 3 intervals is gone)',
      parseBounded(100, 600_000),
    )
    .option('--json', 'print JSON')
    .action(async (opts: ServerOpts) => {
      const out = ctx.output(opts);
      const { io } = ctx;
      if (
        opts.multicastRate !== undefined &&
        opts.multicastMinRate !== undefined &&
        opts.multicastMinRate > opts.multicastRate
      )
        throw new ShoalError(ErrorCode.BAD_REQUEST, '--multicast-min-rate is above --multicast-rate');
      if (Boolean(opts.cert) !== Boolean(opts.key)) {
        throw new ShoalError(ErrorCode.BAD_REQUEST, '--cert and --key go together');
      }
      const cwd = io.cwd ?? process.cwd();
      const dataDir = path.resolve(cwd, opts.data ?? io.env.SHOAL_DATA ?? '.shoal-data');
      const dbUrl = opts.db ?? `sqlite:${path.join(dataDir, 'shoal.db')}`;
      const tls =
        opts.cert && opts.key
          ? {
              cert: await readFile(path.resolve(cwd, opts.cert), 'utf8'),
              key: await readFile(path.resolve(cwd, opts.key), 'utf8'),
            }
          : undefined;
      const logger = createLogger({
        level: (io.env.SHOAL_LOG as LogLevel | undefined) ?? 'info',
        write: (line) => io.stderr.write(line),
      });
      // Loaded here so that client commands do not pay for Fastify, Kysely and the database drivers.
      const [{ createStore }, { createCoordinator }] = await Promise.all([
        import('../../store/create-store.ts'),
        import('../../coordinator/coordinator.ts'),
      ]);
      const { mkdir } = await import('node:fs/promises');
      await mkdir(dataDir, { recursive: true, mode: 0o700 });
      const store = await createStore({ url: dbUrl, logger: logger.child('store') });
      ctx.defer(() => store.close());
      const coordinator = createCoordinator(
        { store, logger },
        {
          dataDir,
          host: opts.host,
          port: opts.port,
          tls,
          registration: opts.registration,
          adminPassword: io.env.SHOAL_ADMIN_PASSWORD,
          webRoot: io.env.SHOAL_WEB_ROOT ?? defaultWebRoot,
          heartbeatMs: opts.heartbeatMs,
          multicast: {
            // Without the flag the environment (SHOAL_MULTICAST=off) still decides.
            enabled: opts.multicast ? undefined : false,
            rateBps: opts.multicastRate !== undefined ? opts.multicastRate * 1_000_000 : undefined,
            minRateBps: opts.multicastMinRate !== undefined ? opts.multicastMinRate * 1_000_000 : undefined,
            interface: opts.multicastInterface,
            ttl: opts.multicastTtl,
            maxPasses: opts.multicastMaxPasses,
          },
        },
      );
      ctx.defer(() => coordinator.stop());
      const started = await coordinator.start();
      const wildcard = opts.host === '0.0.0.0' || opts.host === '::';
      const shownUrl = wildcard ? browserUrl(started.url).replace(/\/$/, '') : started.url;
      out.result(
        {
          url: shownUrl,
          fingerprint: started.fingerprint,
          adminPassword: started.adminPassword,
          dataDir,
          db: dbUrl.startsWith('postgres') ? 'postgres' : dbUrl,
        },
        () => {
          out.line(
            `Shoal coordinator listening on ${shownUrl}${wildcard ? ` (all interfaces, port ${new URL(started.url).port})` : ''}`,
          );
          out.line(`Certificate SHA-256 fingerprint: ${started.fingerprint}`);
          out.line(`Data directory: ${dataDir}`);
          if (started.adminPassword) {
            out.line('');
            out.line(
              `Created the admin account. Its password, shown only this once: ${started.adminPassword}`,
            );
            out.line(
              `Log in with: shoal login ${shownUrl} --user admin --fingerprint ${started.fingerprint}`,
            );
          }
          out.line('');
          out.line('Press Ctrl-C to stop.');
        },
      );
      if (opts.open) {
        const opener = findOnPath('xdg-open', io.env);
        if (opener) {
          const child = spawn(opener, [browserUrl(shownUrl)], { detached: true, stdio: 'ignore' });
          child.on('error', () => out.note('Could not start xdg-open; open the URL above in a browser.'));
          child.unref();
        } else {
          out.note(`No xdg-open here; open ${browserUrl(shownUrl)} in a browser.`);
        }
      }
      const signal = io.signal;
      if (!signal) return;
      await new Promise<void>((resolve) => {
        if (signal.aborted) resolve();
        else signal.addEventListener('abort', () => resolve(), { once: true });
      });
      out.note('Stopping the coordinator...');
      await coordinator.stop();
      await store.close();
      out.note('Stopped.');
    });
}
