/** A group's audit log (owners and admins). */
import { errorMessage } from '../api.ts';
import { ErrorNotice } from '../components/field.tsx';
import { DataTable } from '../components/data-table.tsx';
import { formatDate } from '../format.ts';
import { useSession } from '../session.tsx';
import { useLoad } from '../use-load.ts';

/** The audit tab. */
export function AuditTab({ group }: { group: string }) {
  const { api } = useSession();
  const audit = useLoad((signal) => api.call('audit', { query: { group, limit: 200 }, signal }), [api, group]);
  return (
    <section aria-labelledby="audit-title">
      <h2 id="audit-title">Audit log</h2>
      <ErrorNotice error={audit.error ? errorMessage(audit.error) : null} />
      {audit.data && audit.data.entries.length === 0 && <p className="empty">Nothing recorded yet.</p>}
      {audit.data && audit.data.entries.length > 0 && (
        <DataTable columns={['When', 'Who', 'Action', 'Target', 'Detail']}>
          {audit.data.entries.map((e) => (
            <tr key={e.id}>
              <td>{formatDate(e.at)}</td>
              <td>{e.actor ?? '–'}</td>
              <td>{e.action}</td>
              <td>{e.target ?? '–'}</td>
              <td className="wrap">{e.detail ?? ''}</td>
            </tr>
          ))}
        </DataTable>
      )}
    </section>
  );
}
