/** All groups: list, create (admins, with an optional multicast address and port), delete with confirmation. */
import { useState, type FormEvent } from 'react';
import { Name, type Group } from '../../../src/protocol/api.ts';
import { ErrorCode } from '../../../src/protocol/errors.ts';
import { errorMessage } from '../api.ts';
import { ConfirmButton } from '../components/confirm-button.tsx';
import { ErrorNotice, TextField, OkNotice, SubmitButton } from '../components/field.tsx';
import { DataTable } from '../components/data-table.tsx';
import { useForm } from '../use-form.ts';
import { useLiveRefresh } from '../live.tsx';
import { href } from '../router.ts';
import { useSession } from '../session.tsx';
import { useLoad } from '../use-load.ts';

/** The groups page. */
export function GroupsPage() {
  const { api, user } = useSession();
  const groups = useLoad((signal) => api.call('listGroups', { signal }), [api]);
  useLiveRefresh(groups.reload, (e) => e.kind === 'group' || e.kind === 'membership', 15_000);
  return (
    <>
      <h1>Groups</h1>
      {user?.isAdmin && <CreateGroupForm onCreated={groups.reload} />}
      <section aria-labelledby="all-groups">
        <h2 id="all-groups">All groups</h2>
        <ErrorNotice error={groups.error ? errorMessage(groups.error) : null} />
        {groups.data && groups.data.groups.length === 0 && <p className="empty">No groups yet.</p>}
        {groups.data && groups.data.groups.length > 0 && (
          <DataTable columns={['Name', 'Multicast', 'Members', 'My role', { srOnly: 'Actions' }]}>
            {groups.data.groups.map((g) => (
              <GroupRow key={g.id} group={g} onDeleted={groups.reload} />
            ))}
          </DataTable>
        )}
      </section>
    </>
  );
}

function GroupRow({ group, onDeleted }: { group: Group; onDeleted: () => void }) {
  const { api, user } = useSession();
  const canDelete = user?.isAdmin || group.myRole === 'owner';
  const canOpen = user?.isAdmin || group.myRole !== null;
  return (
    <tr>
      <th scope="row">{canOpen ? <a href={href('groups', group.name)}>{group.name}</a> : group.name}</th>
      <td className="mono">
        {group.multicastAddress}:{group.multicastPort}
      </td>
      <td>{group.memberCount}</td>
      <td>{group.myRole ?? '–'}</td>
      <td className="row-actions">
        {canDelete && (
          <ConfirmButton
            label="Delete"
            accessibleLabel={`Delete group ${group.name}`}
            question={`Delete the group “${group.name}”? Its deliveries are cancelled and its members lose access.`}
            confirmLabel="Delete group"
            onConfirm={async () => {
              await api.call('deleteGroup', { params: { group: group.name } });
              onDeleted();
            }}
          />
        )}
      </td>
    </tr>
  );
}

/** Parses "ADDR" / "PORT" inputs of the create form. */
function CreateGroupForm({ onCreated }: { onCreated: () => void }) {
  const { api } = useSession();
  const [name, setName] = useState('');
  const [address, setAddress] = useState('');
  const [port, setPort] = useState('');
  const { errors, busy, run } = useForm(
    {
      [ErrorCode.GROUP_EXISTS]: 'name',
      [ErrorCode.INVALID_NAME]: 'name',
      [ErrorCode.INVALID_MULTICAST_ADDRESS]: 'multicastAddress',
      [ErrorCode.MULTICAST_ADDRESS_TAKEN]: 'multicastAddress',
    },
    ['name', 'multicastAddress', 'multicastPort'],
  );
  const [done, setDone] = useState<string | null>(null);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setDone(null);
    const fields: Record<string, string> = {};
    const n = Name.safeParse(name);
    if (!n.success) fields.name = name ? `Name: ${n.error.issues[0]?.message ?? 'invalid'}.` : 'Give the group a name.';
    const portNum = port.trim() ? Number(port) : undefined;
    if (portNum !== undefined && (!Number.isInteger(portNum) || portNum < 1024 || portNum > 65535)) {
      fields.multicastPort = 'A port from 1024 to 65535.';
    }
    if (address.trim() && !/^\d{1,3}(\.\d{1,3}){3}$/.test(address.trim())) {
      fields.multicastAddress = 'An IPv4 multicast address, e.g. 239.1.2.3.';
    }
    await run(fields, async () => {
      const res = await api.call('createGroup', {
        body: {
          name,
          ...(address.trim() ? { multicastAddress: address.trim() } : {}),
          ...(portNum !== undefined ? { multicastPort: portNum } : {}),
        },
      });
      setDone(`Group ${res.group.name} created on ${res.group.multicastAddress}:${res.group.multicastPort}.`);
      setName('');
      setAddress('');
      setPort('');
      onCreated();
    });
  };

  return (
    <section aria-labelledby="create-group" className="card">
      <h2 id="create-group">Create a group</h2>
      <form onSubmit={(e) => void submit(e)} noValidate className="inline-form">
        <TextField label="Group name" name="name" value={name} onChange={(e) => setName(e.target.value)} error={errors.fields.name} />
        <TextField
          label="Multicast address (optional)"
          name="multicastAddress"
          placeholder="picked from the pool"
          inputMode="decimal"
          value={address}
          onChange={(e) => setAddress(e.target.value)}
          error={errors.fields.multicastAddress}
        />
        <TextField
          label="Multicast port (optional)"
          name="multicastPort"
          inputMode="numeric"
          value={port}
          onChange={(e) => setPort(e.target.value)}
          error={errors.fields.multicastPort}
        />
        <SubmitButton disabled={busy}>Create group</SubmitButton>
      </form>
      <ErrorNotice error={errors.form} />
      <OkNotice message={done} />
    </section>
  );
}
