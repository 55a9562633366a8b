/** My groups (leave), and every group with "request to join" and the state of my requests. */
import { useState } from 'react';
import type { Group } from '../../../src/protocol/api.ts';
import { errorMessage } from '../api.ts';
import { ConfirmButton } from '../components/confirm-button.tsx';
import { ErrorNotice, OkNotice } from '../components/field.tsx';
import { DataTable } from '../components/data-table.tsx';
import { useLiveRefresh } from '../live.tsx';
import { href } from '../router.ts';
import { useSession } from '../session.tsx';
import { useLoad } from '../use-load.ts';

/** The "My groups" page. */
export function MyGroupsPage() {
  const { api, user } = useSession();
  const mine = useLoad((signal) => api.call('myGroups', { signal }), [api]);
  const all = useLoad((signal) => api.call('listGroups', { signal }), [api]);
  const reload = () => {
    mine.reload();
    all.reload();
  };
  useLiveRefresh(
    reload,
    (e) => (e.kind === 'join-decision' || e.kind === 'membership') && e.username === user?.username,
    15_000,
  );
  const [error, setError] = useState<string | null>(null);
  const [status, setStatus] = useState<string | null>(null);
  const join = async (g: Group) => {
    setError(null);
    setStatus(null);
    try {
      await api.call('joinGroup', { params: { group: g.name } });
      setStatus(`Asked to join ${g.name}. An owner or an admin will decide.`);
      reload();
    } catch (err) {
      setError(`${g.name}: ${errorMessage(err)}`);
    }
  };
  const others = all.data?.groups.filter((g) => g.myRole === null) ?? [];
  return (
    <>
      <h1>My groups</h1>
      <ErrorNotice error={error} />
      <OkNotice message={status} />
      <section aria-labelledby="mine-title">
        <h2 id="mine-title">Groups I belong to</h2>
        <ErrorNotice error={mine.error ? errorMessage(mine.error) : null} />
        {mine.data && mine.data.groups.length === 0 && <p className="empty">You are not in any group yet.</p>}
        {mine.data && mine.data.groups.length > 0 && (
          <ul className="cards">
            {mine.data.groups.map((g) => (
              <li key={g.id} className="card">
                <h3>
                  <a href={href('groups', g.name)}>{g.name}</a>
                </h3>
                <p className="subtle">
                  {g.myRole} · {g.memberCount} member{g.memberCount === 1 ? '' : 's'}
                </p>
                <div className="actions">
                  <a className="button" href={href('groups', g.name, 'files')}>
                    Files
                  </a>
                  <ConfirmButton
                    label="Leave"
                    accessibleLabel={`Leave ${g.name}`}
                    question={`Leave ${g.name}? You lose access to its files.`}
                    confirmLabel="Leave group"
                    onConfirm={async () => {
                      await api.call('leaveGroup', { params: { group: g.name } });
                      reload();
                    }}
                  />
                </div>
              </li>
            ))}
          </ul>
        )}
      </section>
      <section aria-labelledby="others-title">
        <h2 id="others-title">Other groups</h2>
        <ErrorNotice error={all.error ? errorMessage(all.error) : null} />
        {all.data && others.length === 0 && <p className="empty">No other groups.</p>}
        {others.length > 0 && (
          <DataTable columns={['Group', 'Members', 'My request', { srOnly: 'Actions' }]}>
            {others.map((g) => (
              <tr key={g.id}>
                <th scope="row">{g.name}</th>
                <td>{g.memberCount}</td>
                <td data-request={g.myRequest ?? 'none'}>{g.myRequest ?? '–'}</td>
                <td className="row-actions">
                  {g.myRequest === 'pending' ? (
                    <span className="subtle">waiting for a decision</span>
                  ) : (
                    <button type="button" aria-label={`Request to join ${g.name}`} onClick={() => void join(g)}>
                      {g.myRequest === 'denied' ? 'Ask again' : 'Request to join'}
                    </button>
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
