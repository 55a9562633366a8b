/** A group's members: list; owners and admins add and remove. */
import { useState, type FormEvent } from 'react';
import { ErrorCode } from '../../../src/protocol/errors.ts';
import { errorMessage } from '../api.ts';
import { ConfirmButton } from '../components/confirm-button.tsx';
import { DataTable } from '../components/data-table.tsx';
import { ErrorNotice, SelectField, TextField, SubmitButton } from '../components/field.tsx';
import { useForm } from '../use-form.ts';
import { formatDate } from '../format.ts';
import { useLiveRefresh } from '../live.tsx';
import { useSession } from '../session.tsx';
import { useLoad } from '../use-load.ts';

/** The members tab. */
export function MembersTab({ group, manage, onChange }: { group: string; manage: boolean; onChange: () => void }) {
  const { api } = useSession();
  const members = useLoad((signal) => api.call('listMembers', { params: { group }, signal }), [api, group]);
  useLiveRefresh(members.reload, (e) => e.kind === 'membership' && e.group === group, 15_000);
  const changed = () => {
    members.reload();
    onChange();
  };
  return (
    <section aria-labelledby="members-title">
      <h2 id="members-title">Members</h2>
      {manage && <AddMemberForm group={group} onAdded={changed} />}
      <ErrorNotice error={members.error ? errorMessage(members.error) : null} />
      {members.data && (
        <DataTable columns={['User', 'Role', 'Joined', manage && { srOnly: 'Actions' }]}>
          {members.data.members.map((m) => (
            <tr key={m.username}>
              <th scope="row">{m.username}</th>
              <td>{m.role}</td>
              <td>{formatDate(m.joinedAt)}</td>
              {manage && (
                <td className="row-actions">
                  <ConfirmButton
                    label="Remove"
                    accessibleLabel={`Remove ${m.username}`}
                    question={`Remove ${m.username} from ${group}? They lose access at once.`}
                    confirmLabel="Remove member"
                    onConfirm={async () => {
                      await api.call('removeMember', { params: { group, username: m.username } });
                      changed();
                    }}
                  />
                </td>
              )}
            </tr>
          ))}
        </DataTable>
      )}
    </section>
  );
}

function AddMemberForm({ group, onAdded }: { group: string; onAdded: () => void }) {
  const { api } = useSession();
  const [username, setUsername] = useState('');
  const [role, setRole] = useState<'member' | 'owner'>('member');
  const { errors, busy, run } = useForm(
    { [ErrorCode.USER_NOT_FOUND]: 'username', [ErrorCode.ALREADY_MEMBER]: 'username' },
    ['username'],
  );
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    await run(username.trim() ? {} : { username: 'Enter a username.' }, async () => {
      await api.call('addMember', { params: { group, username: username.trim() }, body: { role } });
      setUsername('');
      onAdded();
    });
  };
  return (
    <form onSubmit={(e) => void submit(e)} noValidate className="inline-form card">
      <TextField
        label="Add a member (username)"
        name="username"
        autoCapitalize="none"
        value={username}
        onChange={(e) => setUsername(e.target.value)}
        error={errors.fields.username}
      />
      <SelectField label="Role" name="role" value={role} onChange={(e) => setRole(e.target.value as 'member' | 'owner')}>
        <option value="member">member</option>
        <option value="owner">owner</option>
      </SelectField>
      <SubmitButton disabled={busy}>Add member</SubmitButton>
      <ErrorNotice error={errors.form} />
    </form>
  );
}
