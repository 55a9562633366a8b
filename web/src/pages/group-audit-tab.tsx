/** A group's audit log (owners and admins). */
import { errorMessage } from '../api.ts';
import { ErrorNotice } from '../components/field.tsx';
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
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Who</th>
                <th scope="col">Action</th>
                <th scope="col">Target</th>
                <th scope="col">Detail</th>
              </tr>
            </thead>
            <tbody>
              {audit.data.entries.map((e) => (
                <tr key={e.id}>
                  <td>{formatDate(e.at)}</td>
                  <td>{e.actor ?? '–'}</td>
                  <td>{e.action}</td>
                  <td>{e.target ?? '–'}</td>
                  <td className="wrap">{e.detail ?? ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
