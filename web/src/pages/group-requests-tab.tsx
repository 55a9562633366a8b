/** Pending join requests of a group: approve or deny (owners and admins). */
import { useState } from 'react';
import { errorMessage } from '../api.ts';
import { ErrorNotice, OkNotice } from '../components/field.tsx';
import { DataTable } from '../components/data-table.tsx';
import { formatDate } from '../format.ts';
import { useLiveRefresh } from '../live.tsx';
import { useSession } from '../session.tsx';
import { useLoad } from '../use-load.ts';

/** The join requests tab. */
export function RequestsTab({ group, onChange }: { group: string; onChange: () => void }) {
  const { api } = useSession();
  const requests = useLoad((signal) => api.call('listRequests', { query: { group }, signal }), [api, group]);
  useLiveRefresh(requests.reload, (e) => (e.kind === 'join-decision' || e.kind === 'membership') && e.group === group, 10_000);
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const decide = async (username: string, approve: boolean) => {
    setError(null);
    try {
      await api.call(approve ? 'approveRequest' : 'denyRequest', { params: { group, username } });
      setDone(`${approve ? 'Approved' : 'Denied'} ${username}.`);
      requests.reload();
      onChange();
    } catch (err) {
      setError(errorMessage(err));
    }
  };
  const pending = requests.data?.requests.filter((r) => r.state === 'pending' && r.group === group) ?? [];
  return (
    <section aria-labelledby="requests-title">
      <h2 id="requests-title">Join requests</h2>
      <ErrorNotice error={error ?? (requests.error ? errorMessage(requests.error) : null)} />
      <OkNotice message={done} />
      {requests.data && pending.length === 0 && <p className="empty">No pending requests.</p>}
      {pending.length > 0 && (
        <DataTable columns={['User', 'Asked', { srOnly: 'Decision' }]}>
          {pending.map((r) => (
            <tr key={r.username}>
              <th scope="row">{r.username}</th>
              <td>{formatDate(r.createdAt)}</td>
              <td className="row-actions">
                <button type="button" className="primary" aria-label={`Approve ${r.username}`} onClick={() => void decide(r.username, true)}>
                  Approve
                </button>
                <button type="button" className="danger" aria-label={`Deny ${r.username}`} onClick={() => void decide(r.username, false)}>
                  Deny
                </button>
              </td>
            </tr>
          ))}
        </DataTable>
      )}
    </section>
  );
}
