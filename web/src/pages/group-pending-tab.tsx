/**
 * A group's pending list: add a catalogue file (or upload one and add it), send now, and a table of
 * file × member with each status, redrawn live as recipients' states change.
 */
import { useMemo, useState, type FormEvent } from 'react';
import { errorMessage } from '../api.ts';
import { ErrorNotice, SelectField, OkNotice, SubmitButton } from '../components/field.tsx';
import { DataTable } from '../components/data-table.tsx';
import { ProgressBar } from '../components/progress-bar.tsx';
import { addPending, listPending, sendPending, type PendingEntry } from '../delivery-routes.ts';
import { ConfirmButton } from '../components/confirm-button.tsx';
import { formatBytes, formatDate, formatRate } from '../format.ts';
import { useLiveRefresh } from '../live.tsx';
import { useSession } from '../session.tsx';
import { useLoad } from '../use-load.ts';
import { UploadForm } from './group-files-tab.tsx';

/** The pending tab. */
export function PendingTab({ group, manage }: { group: string; manage: boolean }) {
  const { api } = useSession();
  const pending = useLoad(
    (signal) => (manage ? listPending(api, group, signal) : Promise.resolve([] as PendingEntry[])),
    [api, group, manage],
  );
  useLiveRefresh(
    pending.reload,
    (e) => (e.kind === 'recipient' || e.kind === 'delivery' || e.kind === 'membership') && e.group === group,
    5000,
  );
  if (!manage) {
    return (
      <section aria-labelledby="pending-title">
        <h2 id="pending-title">Pending</h2>
        <p className="notice">The pending list is managed by the group's owners; files sent to the group reach your agent by themselves.</p>
      </section>
    );
  }
  return (
    <section aria-labelledby="pending-title">
      <h2 id="pending-title">Pending</h2>
      {manage && <PendingActions group={group} onChange={pending.reload} />}
      <ErrorNotice error={pending.error ? errorMessage(pending.error) : null} />
      {pending.data && pending.data.length === 0 && <p className="empty">Nothing pending in this group.</p>}
      {pending.data && pending.data.length > 0 && <PendingTable group={group} entries={pending.data} onChange={pending.reload} />}
    </section>
  );
}

function PendingActions({ group, onChange }: { group: string; onChange: () => void }) {
  const { api } = useSession();
  const files = useLoad((signal) => api.call('listFiles', { params: { group }, query: { sort: 'date' }, signal }), [api, group]);
  const [fileId, setFileId] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [fieldError, setFieldError] = useState<string | null>(null);
  const [status, setStatus] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const add = async (id: string, name?: string) => {
    setBusy(true);
    setError(null);
    setFieldError(null);
    setStatus(null);
    try {
      await addPending(api, group, id);
      setStatus(`Added ${name ?? 'the file'} to the pending list.`);
      onChange();
    } catch (err) {
      setFieldError(errorMessage(err));
    } finally {
      setBusy(false);
    }
  };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const chosen = fileId || files.data?.files[0]?.id || '';
    if (!chosen) {
      setFieldError('Choose a file (share one first).');
      return;
    }
    void add(chosen, files.data?.files.find((f) => f.id === chosen)?.name);
  };
  const sendNow = async () => {
    setBusy(true);
    setError(null);
    setStatus(null);
    try {
      const results = await sendPending(api, group);
      const by = new Map<string, number>();
      for (const r of results) by.set(r.outcome, (by.get(r.outcome) ?? 0) + 1);
      const summary = [...by].map(([k, n]) => `${n} ${k}`).join(', ');
      setStatus(results.length ? `Sent: ${summary}.` : 'Nothing to send.');
      onChange();
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="pending-actions">
      <form className="card inline-form" onSubmit={submit} noValidate>
        <SelectField label="Add a shared file" name="fileId" value={fileId} onChange={(e) => setFileId(e.target.value)} error={fieldError}>
          {files.data?.files.length === 0 && <option value="">No files shared yet</option>}
          {files.data?.files.map((f) => (
            <option key={f.id} value={f.id}>
              {f.name} ({formatBytes(f.size)})
            </option>
          ))}
        </SelectField>
        <SubmitButton disabled={busy}>Add to pending</SubmitButton>
      </form>
      <UploadForm
        group={group}
        label="Or upload a new file to the pending list"
        onUploaded={(f) => {
          files.reload();
          void add(f.id, f.name);
        }}
      />
      <div className="card send-now">
        <p>Deliver every pending file now to the members that are online; the others get it when their agent connects.</p>
        <button type="button" className="primary" disabled={busy} onClick={() => void sendNow()}>
          Send now
        </button>
      </div>
      <ErrorNotice error={error} />
      <OkNotice message={status} />
    </div>
  );
}

/** Status text of one cell (used in the cell and for its accessible label). */
export function statusText(e: PendingEntry): string {
  switch (e.state) {
    case 'delivered':
      return `delivered ${formatDate(e.deliveredAt)}${e.transport ? ` via ${e.transport}` : ''}`;
    case 'failed':
      return `failed: ${e.error ?? 'unknown reason'}`;
    case 'receiving':
      return `receiving ${formatBytes(e.bytes)} of ${formatBytes(e.size)}, ${formatRate(e.rate)}${e.transport ? ` (${e.transport})` : ''}`;
    default:
      return 'pending';
  }
}

/** The file × member table. */
export function PendingTable({ group, entries, onChange }: { group: string; entries: PendingEntry[]; onChange: () => void }) {
  const { api } = useSession();
  const { files, members, cell } = useMemo(() => {
    const files = new Map<string, { deliveryId: string; name: string; size: number }>();
    const members = new Set<string>();
    const cell = new Map<string, PendingEntry>();
    for (const e of entries) {
      if (!files.has(e.deliveryId)) files.set(e.deliveryId, { deliveryId: e.deliveryId, name: e.fileName, size: e.size });
      members.add(e.username);
      cell.set(`${e.deliveryId}\u0000${e.username}`, e);
    }
    return { files: [...files.values()], members: [...members].sort(), cell };
  }, [entries]);
  return (
    <DataTable
      columns={['File', ...members, { srOnly: 'Actions' }]}
      className="pending-table"
      label="Pending files by member"
    >
      {files.map((f) => (
        <tr key={f.deliveryId}>
          <th scope="row" className="wrap">
            {f.name} <span className="subtle">{formatBytes(f.size)}</span>
          </th>
          {members.map((m) => {
            const e = cell.get(`${f.deliveryId}\u0000${m}`);
            if (!e) return <td key={m} className="subtle">–</td>;
            return (
              <td key={m} data-member={m} data-state={e.state} className={`state state-${e.state}`}>
                <span className="state-label">{e.state}</span>
                {e.state === 'receiving' && (
                  <ProgressBar label={`${f.name} to ${m}`} done={e.bytes} total={e.size} text={`${formatBytes(e.bytes)} of ${formatBytes(e.size)} · ${formatRate(e.rate)}${e.transport ? ` · ${e.transport}` : ''}`} />
                )}
                {e.state === 'receiving' && e.loss != null && (
                  <span className="state-detail">
                    loss {(e.loss * 100).toFixed(1)} %{e.passes != null ? ` · ${e.passes} ${e.passes === 1 ? 'pass' : 'passes'}` : ''}
                  </span>
                )}
                {e.state === 'delivered' && (
                  <span className="state-detail">
                    {formatDate(e.deliveredAt)}
                    {e.transport ? ` · ${e.transport}` : ''}
                    {e.record && e.record.how !== 'swarm' ? ` · ${formatBytes(e.record.multicastBytes)} multicast, ${formatBytes(e.record.fetchedBytes)} fetched` : ''}
                  </span>
                )}
                {e.state === 'failed' && <span className="state-detail">{e.error ?? 'unknown reason'}</span>}
              </td>
            );
          })}
          <td className="row-actions">
            <ConfirmButton
              label="Remove"
              accessibleLabel={`Remove ${f.name} from the pending list`}
              question={`Remove “${f.name}” from the pending list? Receivers still fetching it stop.`}
              confirmLabel="Remove from pending"
              onConfirm={async () => {
                await api.call('cancelPending', { params: { group, deliveryId: f.deliveryId } });
                onChange();
              }}
            />
          </td>
        </tr>
      ))}
    </DataTable>
  );
}
