/**
 * Group commands: create, delete, list, show, members, add, remove, join, leave, mine, of, requests,
 * approve, deny.
 */
import type { Command } from 'commander';
import { ErrorCode, ShoalError } from '../../protocol/errors.ts';
import type { Group, JoinRequest } from '../../protocol/api.ts';
import { sessionAction, type CommandContext } from '../command-context.ts';
import { formatDate, type Output } from '../output.ts';

type JsonOpt = { json?: boolean };

/** Splits `ADDR[:PORT]` (IPv6 as `[ADDR]:PORT`) for `group create --multicast`. */
export function parseMulticast(value: string): { multicastAddress: string; multicastPort?: number } {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(value);
  const v4 = /^([^:[\]]+)(?::(\d+))?$/.exec(value);
  const m = v6 ?? v4;
  if (!m) {
    // A bare IPv6 address has colons of its own and no port.
    if (value.includes(':')) return { multicastAddress: value };
    throw new ShoalError(ErrorCode.INVALID_MULTICAST_ADDRESS, `not a multicast address: ${value}`);
  }
  const port = m[2] === undefined ? undefined : Number(m[2]);
  if (port !== undefined && (!Number.isInteger(port) || port < 1024 || port > 65535)) {
    throw new ShoalError(ErrorCode.INVALID_MULTICAST_ADDRESS, `multicast port must be 1024-65535: ${m[2]}`);
  }
  return port === undefined ? { multicastAddress: m[1] } : { multicastAddress: m[1], multicastPort: port };
}

function groupTable(out: Output, groups: Group[]): void {
  out.table(
    ['GROUP', 'MULTICAST', 'MEMBERS', 'MY ROLE', 'CREATED'],
    groups.map((g) => [
      g.name,
      `${g.multicastAddress}:${g.multicastPort}`,
      g.memberCount,
      g.myRole ?? (g.myRequest === 'pending' ? '(requested)' : ''),
      formatDate(g.createdAt),
    ]),
  );
}

function requestTable(out: Output, requests: JoinRequest[]): void {
  out.table(
    ['GROUP', 'USER', 'STATE', 'ASKED', 'DECIDED BY'],
    requests.map((r) => [r.group, r.username, r.state, formatDate(r.createdAt), r.decidedBy ?? '']),
  );
}

export function registerGroupCommands(program: Command, ctx: CommandContext): void {
  const group = program.command('group').description('groups, members and join requests');
  const signal = () => ({ signal: ctx.io.signal });

  sessionAction<[string], JsonOpt & { multicast?: string }>(
    ctx,
    group
      .command('create')
      .description('create a group (admin); you own it')
      .argument('<name>')
      .option('--multicast <addr[:port]>', 'its multicast address and port (else taken from the pool)'),
    async ({ out, s }, [name], opts) => {
      const body = { name, ...(opts.multicast ? parseMulticast(opts.multicast) : {}) };
      const res = await s.api.call('createGroup', { body }, signal());
      out.result(res, () =>
        out.line(
          `Created group ${res.group.name} (multicast ${res.group.multicastAddress}:${res.group.multicastPort}).`,
        ),
      );
    },
  );

  sessionAction<[string]>(
    ctx,
    group
      .command('delete')
      .description('delete a group (owner or admin); its deliveries are cancelled')
      .argument('<name>'),
    async ({ out, s }, [name]) => {
      await s.api.call('deleteGroup', { params: { group: name } }, signal());
      out.result({ deleted: name }, () => out.line(`Deleted group ${name}.`));
    },
  );

  sessionAction<[]>(ctx, group.command('list').description('list all groups'), async ({ out, s }) => {
    const res = await s.api.call('listGroups', {}, signal());
    out.result(res, () => groupTable(out, res.groups));
  });

  sessionAction<[string]>(
    ctx,
    group.command('show').description('show one group').argument('<name>'),
    async ({ out, s }, [name]) => {
      const { group: g } = await s.api.call('getGroup', { params: { group: name } }, signal());
      out.result({ group: g }, () => {
        out.line(`Group:      ${g.name}`);
        out.line(`Multicast:  ${g.multicastAddress}:${g.multicastPort}`);
        out.line(`Members:    ${g.memberCount}`);
        out.line(`Created:    ${formatDate(g.createdAt)} by ${g.createdBy}`);
        out.line(
          `My role:    ${g.myRole ?? 'not a member'}${g.myRequest ? ` (request ${g.myRequest})` : ''}`,
        );
      });
    },
  );

  sessionAction<[string]>(
    ctx,
    group.command('members').description("list a group's members").argument('<name>'),
    async ({ out, s }, [name]) => {
      const res = await s.api.call('listMembers', { params: { group: name } }, signal());
      out.result(res, () =>
        out.table(
          ['USER', 'ROLE', 'JOINED'],
          res.members.map((m) => [m.username, m.role, formatDate(m.joinedAt)]),
        ),
      );
    },
  );

  sessionAction<[string, string], JsonOpt & { owner?: boolean }>(
    ctx,
    group
      .command('add')
      .description('add a member (owner or admin)')
      .argument('<name>')
      .argument('<user>')
      .option('--owner', 'as an owner'),
    async ({ out, s }, [name, username], opts) => {
      const res = await s.api.call(
        'addMember',
        { params: { group: name, username }, body: opts.owner ? { role: 'owner' } : {} },
        signal(),
      );
      out.result(res, () => out.line(`Added ${res.member.username} to ${name} as ${res.member.role}.`));
    },
  );

  sessionAction<[string, string]>(
    ctx,
    group
      .command('remove')
      .description('remove a member (owner or admin); takes effect at once')
      .argument('<name>')
      .argument('<user>'),
    async ({ out, s }, [name, username]) => {
      await s.api.call('removeMember', { params: { group: name, username } }, signal());
      out.result({ removed: username, group: name }, () => out.line(`Removed ${username} from ${name}.`));
    },
  );

  sessionAction<[string]>(
    ctx,
    group.command('join').description('ask to join a group; an owner or admin decides').argument('<name>'),
    async ({ out, s }, [name]) => {
      const res = await s.api.call('joinGroup', { params: { group: name } }, signal());
      out.result(res, () =>
        out.line(
          res.request.state === 'pending'
            ? `Asked to join ${name}; an owner or admin will decide.`
            : `Join request for ${name}: ${res.request.state}.`,
        ),
      );
    },
  );

  sessionAction<[string]>(
    ctx,
    group.command('leave').description('leave a group').argument('<name>'),
    async ({ out, s }, [name]) => {
      await s.api.call('leaveGroup', { params: { group: name } }, signal());
      out.result({ left: name }, () => out.line(`Left ${name}.`));
    },
  );

  sessionAction<[]>(ctx, group.command('mine').description('the groups I belong to'), async ({ out, s }) => {
    const res = await s.api.call('myGroups', {}, signal());
    out.result(res, () => groupTable(out, res.groups));
  });

  sessionAction<[string]>(
    ctx,
    group.command('of').description("a user's groups (admin)").argument('<user>'),
    async ({ out, s }, [username]) => {
      const res = await s.api.call('userGroups', { params: { username } }, signal());
      out.result(res, () => groupTable(out, res.groups));
    },
  );

  sessionAction<[string | undefined], JsonOpt & { mine?: boolean }>(
    ctx,
    group
      .command('requests')
      .description('pending join requests of the groups I own (all groups for an admin)')
      .argument('[name]', 'only this group')
      .option('--mine', 'my own join requests instead'),
    async ({ out, s }, [name], opts) => {
      const res = opts.mine
        ? await s.api.call('myRequests', {}, signal())
        : await s.api.call('listRequests', { query: { group: name } }, signal());
      const requests = name ? res.requests.filter((r) => r.group === name) : res.requests;
      out.result({ requests }, () => requestTable(out, requests));
    },
  );

  for (const [verb, route, past] of [
    ['approve', 'approveRequest', 'Approved'],
    ['deny', 'denyRequest', 'Denied'],
  ] as const) {
    sessionAction<[string, string]>(
      ctx,
      group
        .command(verb)
        .description(`${verb} a join request (owner or admin)`)
        .argument('<name>')
        .argument('<user>'),
      async ({ out, s }, [name, username]) => {
        const res = await s.api.call(route, { params: { group: name, username } }, signal());
        out.result(res, () => out.line(`${past} ${username}'s request to join ${name}.`));
      },
    );
  }
}
