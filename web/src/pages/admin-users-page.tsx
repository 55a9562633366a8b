/** Admin: users — create, delete, make admin (or take it back). */
import { useState, type FormEvent } from 'react';
import type { User } from '../../../src/protocol/api.ts';
import { ErrorCode } from '../../../src/protocol/errors.ts';
import { errorMessage } from '../api.ts';
import { ConfirmButton } from '../components/confirm-button.tsx';
import { ErrorNotice, TextField, OkNotice, SubmitButton } from '../components/field.tsx';
import { DataTable } from '../components/data-table.tsx';
import { useForm } from '../use-form.ts';
import { formatDate } from '../format.ts';
import { useSession } from '../session.tsx';
import { useLoad } from '../use-load.ts';
import { checkAccountFields } from './register-page.tsx';

/** The users page. */
export function AdminUsersPage() {
  const { api, user: me } = useSession();
  const users = useLoad((signal) => api.call('listUsers', { signal }), [api]);
  const [error, setError] = useState<string | null>(null);
  const setAdmin = async (u: User, isAdmin: boolean) => {
    setError(null);
    try {
      await api.call('updateUser', { params: { username: u.username }, body: { isAdmin } });
      users.reload();
    } catch (err) {
      setError(`${u.username}: ${errorMessage(err)}`);
    }
  };
  return (
    <>
      <h1>Users</h1>
      <CreateUserForm onCreated={users.reload} />
      <section aria-labelledby="users-title">
        <h2 id="users-title">All users</h2>
        <ErrorNotice error={error ?? (users.error ? errorMessage(users.error) : null)} />
        {users.data && (
          <DataTable columns={['User', 'Admin', 'Created', { srOnly: 'Actions' }]}>
            {users.data.users.map((u) => (
              <tr key={u.id}>
                <th scope="row">{u.username}</th>
                <td>{u.isAdmin ? 'yes' : 'no'}</td>
                <td>{formatDate(u.createdAt)}</td>
                <td className="row-actions">
                  {u.username !== me?.username && (
                    <>
                      <button type="button" onClick={() => void setAdmin(u, !u.isAdmin)} aria-label={`${u.isAdmin ? 'Remove admin from' : 'Make admin'} ${u.username}`}>
                        {u.isAdmin ? 'Remove admin' : 'Make admin'}
                      </button>
                      <ConfirmButton
                        label="Delete"
                        accessibleLabel={`Delete user ${u.username}`}
                        question={`Delete the account ${u.username}? Their sessions end at once.`}
                        confirmLabel="Delete user"
                        onConfirm={async () => {
                          await api.call('deleteUser', { params: { username: u.username } });
                          users.reload();
                        }}
                      />
                    </>
                  )}
                </td>
              </tr>
            ))}
          </DataTable>
        )}
      </section>
    </>
  );
}

function CreateUserForm({ onCreated }: { onCreated: () => void }) {
  const { api } = useSession();
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [isAdmin, setIsAdmin] = useState(false);
  const { errors, busy, run } = useForm({ [ErrorCode.USER_EXISTS]: 'username', [ErrorCode.INVALID_NAME]: 'username' }, [
    'username',
    'password',
  ]);
  const [status, setStatus] = useState<string | null>(null);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setStatus(null);
    await run(checkAccountFields(username, password), async () => {
      const res = await api.call('createUser', { body: { username, password, isAdmin } });
      setStatus(`Created ${res.user.username}${res.user.isAdmin ? ' (admin)' : ''}.`);
      setUsername('');
      setPassword('');
      setIsAdmin(false);
      onCreated();
    });
  };
  return (
    <section className="card" aria-labelledby="create-user">
      <h2 id="create-user">Create a user</h2>
      <form className="inline-form" onSubmit={(e) => void submit(e)} noValidate>
        <TextField label="Username" name="username" autoComplete="off" autoCapitalize="none" value={username} onChange={(e) => setUsername(e.target.value)} error={errors.fields.username} />
        <TextField label="Password" name="password" type="password" autoComplete="new-password" hint="At least 8 characters." value={password} onChange={(e) => setPassword(e.target.value)} error={errors.fields.password} />
        <div className="field checkbox">
          <input id="new-user-admin" type="checkbox" checked={isAdmin} onChange={(e) => setIsAdmin(e.target.checked)} />
          <label htmlFor="new-user-admin">Administrator</label>
        </div>
        <SubmitButton disabled={busy}>Create user</SubmitButton>
      </form>
      <ErrorNotice error={errors.form} />
      <OkNotice message={status} />
    </section>
  );
}
