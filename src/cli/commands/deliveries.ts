/**
 * Delivery and presence commands: `receivers`, `check USER|AGENT`, `pending add|list|send|remove`,
 * `push GROUP FILE_OR_PATH` (deliver now, by multicast when several members are online), `transfers`
 * (multicast transfers per receiver), and `send PATH --to USER` (a 1:1 delivery).
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import type { ApiClient } from '../../client/api-client.ts';
import type { DeliveryInfo, MulticastTransfer, PendingEntry, Receiver } from '../../protocol/api.ts';
import { ErrorCode, ShoalError, isShoalError } from '../../protocol/errors.ts';
import { sessionAction, type CommandContext } from '../command-context.ts';
import { resolveFile } from '../download.ts';
import { statLocalFile, uploadWithProgress } from '../local-file.ts';
import { formatBytes, formatDate, type Output } from '../output.ts';
import { parseIntOption } from './parse.ts';

type JsonOpt = { json?: boolean };

/** A positive number of Mbit/s. */
function parseMbit(value: string): number {
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value.trim()) || !(n > 0)) throw new InvalidArgumentError('expected Mbit/s > 0');
  return n;
}

const percent = (x: number) => `${(100 * x).toFixed(1)}%`;
const mbit = (bps: number | null) =>
  bps === null ? '-' : `${(bps / 1e6).toFixed(bps < 1e7 ? 1 : 0)} Mbit/s`;

/** How a delivered entry came: `multicast 6.0 MiB, fetched 0 B`. */
function describeRecord(r: NonNullable<PendingEntry['record']>): string {
  return `${r.how}: multicast ${formatBytes(r.multicastBytes)}, fetched ${formatBytes(r.fetchedBytes)}${r.passes ? `, ${r.passes} pass(es)` : ''}`;
}

function describeEntry(e: PendingEntry): string {
  switch (e.state) {
    case 'pending':
      return e.error ? `waiting (last: ${e.error})` : 'waiting for the agent';
    case 'receiving': {
      const mc =
        e.loss !== null && e.loss !== undefined ? `, loss ${percent(e.loss)}, pass ${e.passes ?? 0}` : '';
      return `${formatBytes(e.bytes)} / ${formatBytes(e.size)} at ${formatBytes(e.rate)}/s via ${e.transport ?? '?'}${mc}`;
    }
    case 'delivered':
      return `${formatDate(e.deliveredAt)} via ${e.record ? describeRecord(e.record) : (e.transport ?? '?')}`;
    case 'failed':
      return e.error ?? 'failed';
  }
}

function receiving(r: Receiver): string {
  if (r.receiving.length === 0) return '-';
  return r.receiving
    .map((x) => `${x.fileName} ${x.size ? Math.floor((100 * x.bytes) / x.size) : 100}%`)
    .join(', ');
}

async function sharePath(ctx: CommandContext, out: Output, group: string, abs: string, size: number) {
  const s = await ctx.session();
  const name = path.basename(abs);
  const res = await uploadWithProgress(out, `share ${name}`, abs, size, ctx.io.signal, (body, o) =>
    s.api.upload('shareFile', { params: { group }, query: { name } }, body, o),
  );
  return res.file;
}

/**
 * The catalogue file `ref` names: a local file at that path (relative to the working directory) is shared into
 * `group` first; anything else is a catalogue id or name.
 */
async function fileOrPath(ctx: CommandContext, out: Output, api: ApiClient, group: string, ref: string) {
  const abs = path.resolve(ctx.io.cwd ?? process.cwd(), ref);
  const st = await stat(abs).catch(() => undefined);
  return st?.isFile()
    ? await sharePath(ctx, out, group, abs, st.size)
    : await resolveFile(api, group, ref, ctx.io.signal);
}

/** One line per receiver of a transfer. */
function transferRows(t: MulticastTransfer): (string | number)[][] {
  return t.receivers.map((r) => [
    t.fileName,
    t.group,
    `${r.username}/${r.name}`,
    r.state,
    `${formatBytes(r.bytes)} / ${formatBytes(t.size)}`,
    percent(r.loss),
    r.passes,
    r.delivery ?? '-',
    t.state === 'done' || t.state === 'failed'
      ? `${t.passes} pass(es), ${mbit(t.currentRateBps)} (ceiling ${mbit(t.rateBps)})`
      : `pass ${t.passes}/${t.maxPasses}, ceiling ${mbit(t.rateBps)}`,
  ]);
}

const transferHead = [
  'FILE',
  'GROUP',
  'RECEIVER',
  'STATE',
  'BYTES',
  'LOSS',
  'PASSES',
  'DELIVERY',
  'TRANSFER',
];

/** Registers receivers, check, pending, push, transfers and send. */
export function registerDeliveryCommands(program: Command, ctx: CommandContext): void {
  const cwd = () => ctx.io.cwd ?? process.cwd();

  sessionAction<[], JsonOpt & { group?: string }>(
    ctx,
    program
      .command('receivers')
      .description('agents connected now: since when, from where, version, what they receive')
      .option('-g, --group <group>', "only that group's members (owners and admins)"),
    async ({ out, s }, _args, opts) => {
      const res = await s.api.call(
        'listReceivers',
        { query: { group: opts.group } },
        { signal: ctx.io.signal },
      );
      out.result(res, () =>
        out.table(
          ['AGENT', 'USER', 'NAME', 'ADDRESS', 'VERSION', 'SINCE', 'RECEIVING'],
          res.receivers.map((r) => [
            r.agentId,
            r.username,
            r.name,
            r.address,
            r.version,
            formatDate(r.since),
            receiving(r),
          ]),
        ),
      );
    },
  );

  sessionAction<[string]>(
    ctx,
    program
      .command('check')
      .description("round-trip probe to a user's agents or to one agent")
      .argument('<user-or-agent>', 'a username, an agent name or an agent id'),
    async ({ out, s }, [ref]) => {
      const { receivers } = await s.api.call('listReceivers', {}, { signal: ctx.io.signal });
      const byId = receivers.filter((r) => r.agentId === ref);
      const targets = byId.length ? byId : receivers.filter((r) => r.username === ref || r.name === ref);
      if (targets.length === 0)
        throw new ShoalError(ErrorCode.AGENT_NOT_FOUND, `no connected receiver matches ${ref}`);
      const results: Array<{
        agentId: string;
        name: string;
        username: string;
        rttMs: number | null;
        error: string | null;
      }> = [];
      for (const r of targets) {
        try {
          const { rttMs } = await s.api.call(
            'checkReceiver',
            { params: { agentId: r.agentId } },
            { signal: ctx.io.signal },
          );
          results.push({ agentId: r.agentId, name: r.name, username: r.username, rttMs, error: null });
        } catch (err) {
          if (!isShoalError(err, ErrorCode.NOT_ANSWERING) && !isShoalError(err, ErrorCode.AGENT_NOT_FOUND))
            throw err;
          results.push({
            agentId: r.agentId,
            name: r.name,
            username: r.username,
            rttMs: null,
            error: err.code,
          });
        }
      }
      out.result({ results }, () => {
        for (const r of results) {
          out.line(
            r.rttMs !== null
              ? `${r.name} (${r.username}): answered in ${r.rttMs.toFixed(1)} ms`
              : `${r.name} (${r.username}): not answering`,
          );
        }
      });
      const silent = results.filter((r) => r.rttMs === null);
      if (silent.length)
        throw new ShoalError(
          ErrorCode.NOT_ANSWERING,
          `${silent.map((r) => r.name).join(', ')} not answering`,
        );
    },
  );

  const pending = program
    .command('pending')
    .description("a group's pending list: files delivered to every member's machines");

  sessionAction<[string, string]>(
    ctx,
    pending
      .command('add')
      .description(
        'add a catalogue file (id or name), or a local file shared on the way, to the pending list',
      )
      .argument('<group>')
      .argument('<file-or-path>'),
    async ({ out, s }, [group, ref]) => {
      const file = await fileOrPath(ctx, out, s.api, group, ref);
      const res = await s.api.call(
        'addPending',
        { params: { group }, body: { fileId: file.id } },
        { signal: ctx.io.signal },
      );
      out.result(res, () => {
        const r = res.delivery.recipients;
        out.line(
          `Added ${file.name} to ${group}'s pending list (delivery ${res.delivery.id}) for ${r.length} member(s).`,
        );
      });
    },
  );

  sessionAction<[string]>(
    ctx,
    pending
      .command('list')
      .description('each pending file × each member: waiting, receiving, delivered or failed')
      .argument('<group>'),
    async ({ out, s }, [group]) => {
      const res = await s.api.call('listPending', { params: { group } }, { signal: ctx.io.signal });
      out.result(res, () =>
        out.table(
          ['FILE', 'MEMBER', 'STATUS', 'DETAIL', 'DELIVERY'],
          res.entries.map((e) => [e.fileName, e.username, e.state, describeEntry(e), e.deliveryId]),
        ),
      );
    },
  );

  sessionAction<[string]>(
    ctx,
    pending
      .command('send')
      .description('deliver every pending file now to every member online (failed ones are retried)')
      .argument('<group>'),
    async ({ out, s }, [group]) => {
      const res = await s.api.call('sendPending', { params: { group } }, { signal: ctx.io.signal });
      out.result(res, () => {
        const offered = res.results.filter((r) => r.outcome === 'offered').length;
        const offline = res.results.filter((r) => r.outcome === 'offline').length;
        out.line(
          `Offered to ${offered} member(s) online; ${offline} offline will get it when their agent connects.`,
        );
      });
    },
  );

  sessionAction<[string, string]>(
    ctx,
    pending
      .command('remove')
      .description('take a file off the pending list (receivers stop)')
      .argument('<group>')
      .argument('<delivery-id>'),
    async ({ out, s }, [group, deliveryId]) => {
      await s.api.call('cancelPending', { params: { group, deliveryId } }, { signal: ctx.io.signal });
      out.result({ cancelled: deliveryId }, () =>
        out.line(`Removed delivery ${deliveryId} from ${group}'s pending list.`),
      );
    },
  );

  program
    .command('push')
    .description(
      'deliver a file now to every online member (by multicast when several are online); offline ones get it later',
    )
    .argument('<group>')
    .argument('<file-or-path>', 'a catalogue file (id or name) or a local file, shared on the way')
    .option('--rate <mbit>', 'multicast rate ceiling for this transfer, Mbit/s on the wire', parseMbit)
    .option('--min-rate <mbit>', 'floor of the adaptive rate, Mbit/s (default ceiling / 8)', parseMbit)
    .option('--no-wait', 'return once the delivery started')
    .option('--timeout <seconds>', 'stop waiting after this long (default 3600)', parseIntOption)
    .option('--json', 'print JSON')
    .action(
      async (
        group: string,
        ref: string,
        opts: JsonOpt & { rate?: number; minRate?: number; wait: boolean; timeout?: number },
      ) => {
        const out = ctx.output(opts);
        if (opts.rate !== undefined && opts.minRate !== undefined && opts.minRate > opts.rate)
          throw new ShoalError(ErrorCode.BAD_REQUEST, '--min-rate is above --rate');
        const s = await ctx.session();
        const file = await fileOrPath(ctx, out, s.api, group, ref);
        const res = await s.api.call(
          'pushFile',
          { params: { group }, body: { fileId: file.id, rateMbit: opts.rate, minRateMbit: opts.minRate } },
          { signal: ctx.io.signal },
        );
        const reached = new Set(res.results.filter((r) => r.outcome === 'offered').map((r) => r.username));
        const offline = res.results.filter((r) => r.outcome === 'offline').map((r) => r.username);
        out.note(
          `Pushing ${file.name} (${formatBytes(file.size)}) to ${reached.size} member(s) online` +
            (res.transferId ? ` by multicast (transfer ${res.transferId})` : '') +
            (offline.length ? `; offline, later: ${offline.join(', ')}` : '') +
            '.',
        );
        let delivery: DeliveryInfo = res.delivery;
        let transfer: MulticastTransfer | undefined;
        const finished = (e: PendingEntry) => e.state === 'delivered' || e.state === 'failed';
        if (opts.wait && reached.size > 0) {
          const deadline = Date.now() + (opts.timeout ?? 3600) * 1000;
          const lastLine = new Map<string, string>();
          while (!ctx.io.signal?.aborted && Date.now() < deadline) {
            delivery = (
              await s.api.call(
                'getDelivery',
                { params: { deliveryId: delivery.id } },
                { signal: ctx.io.signal },
              )
            ).delivery;
            if (res.transferId) {
              const { transfers } = await s.api.call(
                'listTransfers',
                { query: { group } },
                { signal: ctx.io.signal },
              );
              transfer = transfers.find((t) => t.transferId === res.transferId) ?? transfer;
            }
            for (const e of delivery.recipients) {
              if (!reached.has(e.username)) continue;
              const mc = transfer?.receivers.find((r) => r.username === e.username);
              const line =
                `  ${e.username}: ${e.state} ${describeEntry(e)}` +
                (mc && transfer && e.state !== 'delivered'
                  ? ` [multicast ${mc.state}, pass ${transfer.passes}/${transfer.maxPasses}]`
                  : '');
              if (lastLine.get(e.username) !== line) out.note(line);
              lastLine.set(e.username, line);
            }
            const mine = delivery.recipients.filter((e) => reached.has(e.username));
            if (mine.every(finished)) break;
            await new Promise((r) => setTimeout(r, 1000));
          }
        }
        const summary = delivery.recipients.map((e) => ({
          username: e.username,
          state: e.state,
          how: e.record?.how ?? e.transport,
          multicastBytes: e.record?.multicastBytes ?? null,
          fetchedBytes: e.record?.fetchedBytes ?? null,
          error: e.error,
        }));
        out.result(
          { delivery, transferId: res.transferId, results: res.results, transfer: transfer ?? null, summary },
          () => {
            out.table(
              ['MEMBER', 'STATUS', 'HOW', 'MULTICAST', 'FETCHED', 'NOTE'],
              summary.map((x) => [
                x.username,
                x.state,
                x.how ?? '-',
                x.multicastBytes === null ? '-' : formatBytes(x.multicastBytes),
                x.fetchedBytes === null ? '-' : formatBytes(x.fetchedBytes),
                x.error ?? (x.state === 'pending' ? 'when their agent connects' : ''),
              ]),
            );
            if (transfer)
              out.line(
                `Multicast: ${transfer.passes} pass(es), ceiling ${mbit(transfer.rateBps)}, floor ${mbit(transfer.minRateBps)}` +
                  (transfer.wireBytes !== null ? `, ${formatBytes(transfer.wireBytes)} on the wire` : ''),
              );
          },
        );
        const failed = delivery.recipients.filter((e) => reached.has(e.username) && e.state === 'failed');
        if (opts.wait && failed.length)
          throw new ShoalError(
            ErrorCode.PEER_FAILED,
            `not delivered to ${failed.map((e) => `${e.username} (${e.error ?? 'failed'})`).join(', ')}`,
          );
      },
    );

  sessionAction<[], JsonOpt & { group?: string; watch?: boolean }>(
    ctx,
    program
      .command('transfers')
      .description(
        'multicast transfers running or recently finished: per receiver bytes, loss, passes, state',
      )
      .option('-g, --group <group>', "only that group's transfers")
      .option('--watch', 'redraw every second until interrupted'),
    async ({ out, s }, _args, opts) => {
      for (let i = 0; ; i++) {
        const res = await s.api.call(
          'listTransfers',
          { query: { group: opts.group } },
          { signal: ctx.io.signal },
        );
        if (opts.watch && !out.json && i > 0 && ctx.io.stdout.isTTY) ctx.io.stdout.write('\x1b[2J\x1b[H');
        if (opts.watch && out.json) ctx.io.stdout.write(JSON.stringify(res) + '\n');
        else out.result(res, () => out.table(transferHead, res.transfers.flatMap(transferRows)));
        if (!opts.watch || ctx.io.signal?.aborted) break;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 1000);
          ctx.io.signal?.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
        });
        if (ctx.io.signal?.aborted) break;
      }
    },
  );

  program
    .command('send')
    .description('send one file straight to another user (delivered to their agents)')
    .argument('<path>')
    .requiredOption('--to <user>', 'the recipient')
    .option('--name <name>', 'the name it arrives under (default: its base name)')
    .option('--wait', 'wait until it is delivered (or failed)')
    .option('--json', 'print JSON')
    .action(async (filePath: string, opts: JsonOpt & { to: string; name?: string; wait?: boolean }) => {
      const out = ctx.output(opts);
      const { abs, size } = await statLocalFile(cwd(), filePath);
      const name = opts.name ?? path.basename(abs);
      const s = await ctx.session();
      const res = await uploadWithProgress(out, `send ${name}`, abs, size, ctx.io.signal, (body, o) =>
        s.api.upload('sendDirect', { query: { to: opts.to, name } }, body, o),
      );
      let delivery = res.delivery;
      if (opts.wait) {
        // Bounded by the user's patience: Ctrl-C aborts the signal.
        for (;;) {
          const state = delivery.recipients[0]?.state;
          if (state === 'delivered' || state === 'failed' || ctx.io.signal?.aborted) break;
          await new Promise((r) => setTimeout(r, 1000));
          delivery = (
            await s.api.call(
              'getDelivery',
              { params: { deliveryId: delivery.id } },
              { signal: ctx.io.signal },
            )
          ).delivery;
        }
      }
      out.result({ delivery, file: res.file }, () => {
        const r = delivery.recipients[0];
        out.line(
          `Sent ${name} (${formatBytes(res.file.size)}) to ${opts.to}: ${r ? `${r.state} ${describeEntry(r)}` : 'queued'} (delivery ${delivery.id}).`,
        );
      });
      if (delivery.recipients[0]?.state === 'failed')
        throw new ShoalError(ErrorCode.PEER_FAILED, delivery.recipients[0].error ?? 'delivery failed');
    });
}
