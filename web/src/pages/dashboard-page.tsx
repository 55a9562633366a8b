/**
 * Dashboard: receivers online now, transfers in progress with a progress bar per receiver, and recent
 * deliveries and failures. Receivers come from the presence route; progress and outcomes also arrive as live
 * events, which update the page without a reload.
 */
import { useRef, useState } from 'react';
import type { ShoalEvent } from '../../../src/protocol/events.ts';
import { ErrorCode } from '../../../src/protocol/errors.ts';
import { errorCode, errorMessage } from '../api.ts';
import { ErrorNotice } from '../components/field.tsx';
import { DataTable } from '../components/data-table.tsx';
import { ProgressBar } from '../components/progress-bar.tsx';
import { knownDirectDeliveries } from '../direct-deliveries.tsx';
import { listPending, listReceivers, type PendingEntry } from '../delivery-routes.ts';
import { formatBytes, formatDate, formatRate } from '../format.ts';
import { useLiveEvents, useLiveRefresh, useLiveStatus } from '../live.tsx';
import { useSession } from '../session.tsx';
import { useLoad } from '../use-load.ts';
import { MulticastTransfers } from './multicast-transfers.tsx';

type RecipientEvent = Extract<ShoalEvent, { kind: 'recipient' }>;

/** One row of "recent deliveries and failures". */
interface Outcome {
  key: string;
  group: string | null;
  file: string;
  username: string;
  state: 'delivered' | 'failed';
  at: string | null;
  detail: string;
}

/** The dashboard page. */
export function DashboardPage() {
  const { api, user } = useSession();
  const live = useLiveStatus();
  const receivers = useLoad((signal) => listReceivers(api, signal), [api]);
  // Recent outcomes: what the pending lists of the groups I manage say, and the 1:1 deliveries this session
  // knows of (no route lists a user's direct deliveries; see direct-deliveries.tsx), newest first.
  const outcomes = useLoad(
    async (signal): Promise<Array<PendingEntry & { group: string | null }>> => {
      const { groups } = user?.isAdmin ? await api.call('listGroups', { signal }) : await api.call('myGroups', { signal });
      const managed = groups.filter((g) => user?.isAdmin || g.myRole === 'owner');
      const lists = await Promise.all([
        ...managed.slice(0, 20).map((g) =>
          listPending(api, g.name, signal)
            .then((l) => l.map((e) => ({ ...e, group: g.name as string | null })))
            .catch(() => []),
        ),
        ...(user ? knownDirectDeliveries(user.username) : []).slice(0, 20).map((deliveryId) =>
          api
            .call('getDelivery', { params: { deliveryId }, signal })
            .then(({ delivery }) => (delivery.group === null ? delivery.recipients.map((e) => ({ ...e, group: null })) : []))
            .catch(() => []),
        ),
      ]);
      return lists.flat();
    },
    [api, user?.isAdmin, user?.username],
  );
  const reloadAll = () => {
    receivers.reload();
    outcomes.reload();
  };
  // Reload on presence and outcomes, and when a transfer this page does not list yet starts; plain progress
  // only patches the bars (below), so a fast stream of progress events costs no requests.
  const shown = useRef(new Set<string>());
  useLiveRefresh(
    reloadAll,
    (e) =>
      e.kind === 'presence' ||
      (e.kind === 'delivery' && e.group === null) ||
      (e.kind === 'recipient' && (e.state !== 'receiving' || !shown.current.has(`${e.deliveryId}\u0000${e.username}`))),
    5000,
  );

  // Progress events patch the bars in place between reloads.
  const [progress, setProgress] = useState<Map<string, RecipientEvent>>(new Map());
  useLiveEvents((e) => {
    if (e.kind !== 'recipient') return;
    setProgress((m) => new Map(m).set(`${e.deliveryId}\u0000${e.username}`, e));
  });

  const transfers: Array<{ key: string; deliveryId: string; username: string; receiver: string; file: string; bytes: number; size: number; rate: number; transport: string }> = [];
  for (const r of receivers.data ?? []) {
    for (const t of r.receiving ?? []) {
      const ev = progress.get(`${t.deliveryId}\u0000${r.username}`);
      transfers.push({
        key: `${r.agentId}:${t.deliveryId}`,
        deliveryId: t.deliveryId,
        username: r.username,
        receiver: `${r.name} (${r.username})`,
        file: t.fileName,
        bytes: ev?.bytes ?? t.bytes,
        size: t.size,
        rate: ev?.rate ?? t.rate,
        transport: ev?.transport ?? t.transport,
      });
    }
  }
  for (const e of outcomes.data ?? []) {
    if (e.state !== 'receiving' || transfers.some((t) => t.deliveryId === e.deliveryId && t.username === e.username)) continue;
    const ev = progress.get(`${e.deliveryId}\u0000${e.username}`);
    transfers.push({
      key: `${e.username}:${e.deliveryId}`,
      deliveryId: e.deliveryId,
      username: e.username,
      receiver: e.username,
      file: e.fileName,
      bytes: ev?.bytes ?? e.bytes,
      size: e.size,
      rate: ev?.rate ?? e.rate,
      transport: ev?.transport ?? e.transport ?? '',
    });
  }

  shown.current = new Set(transfers.map((t) => `${t.deliveryId}\u0000${t.username}`));

  const recent: Outcome[] = (outcomes.data ?? [])
    .filter((e) => e.state === 'delivered' || e.state === 'failed')
    .map((e) => ({
      key: `${e.deliveryId}:${e.username}`,
      group: e.group,
      file: e.fileName,
      username: e.username,
      state: e.state as 'delivered' | 'failed',
      at: e.deliveredAt,
      detail: e.state === 'failed' ? (e.error ?? 'unknown reason') : (e.transport ?? ''),
    }))
    .sort((a, b) => String(b.at ?? '').localeCompare(String(a.at ?? '')))
    .slice(0, 20);

  return (
    <>
      <h1>Dashboard</h1>
      {live !== 'live' && (
        <p className="notice" role="status">
          Live updates unavailable{live === 'connecting' ? ' (connecting…)' : ''}: this page refreshes every few seconds instead.
        </p>
      )}
      <div className="grid">
        <section aria-labelledby="receivers-title" className="card wide">
          <h2 id="receivers-title">Active receivers</h2>
          <ErrorNotice error={receivers.error ? errorMessage(receivers.error) : null} />
          {receivers.data && receivers.data.length === 0 && <p className="empty">No receiver is online.</p>}
          {receivers.data && receivers.data.length > 0 && (
            <DataTable columns={['Receiver', 'User', 'Address', 'Since', 'Receiving', { srOnly: 'Check' }]} label="Active receivers">
              {receivers.data.map((r) => (
                <tr key={r.agentId}>
                  <th scope="row">{r.name}</th>
                  <td>{r.username}</td>
                  <td className="mono">{r.address}</td>
                  <td>{formatDate(r.since)}</td>
                  <td>{r.receiving?.length ? r.receiving.map((t) => t.fileName).join(', ') : '–'}</td>
                  <td>
                    <CheckButton agentId={r.agentId} name={r.name} />
                  </td>
                </tr>
              ))}
            </DataTable>
          )}
        </section>

        <section aria-labelledby="transfers-title" className="card wide">
          <h2 id="transfers-title">Transfers in progress</h2>
          {transfers.length === 0 && <p className="empty">Nothing is being transferred right now.</p>}
          {transfers.length > 0 && (
            <ul className="transfers">
              {transfers.map((t) => (
                <li key={t.key}>
                  <div className="transfer-head">
                    <strong>{t.file}</strong> → {t.receiver}
                  </div>
                  <ProgressBar
                    label={`${t.file} to ${t.receiver}`}
                    done={t.bytes}
                    total={t.size}
                    text={`${formatBytes(t.bytes)} of ${formatBytes(t.size)} · ${formatRate(t.rate)}${t.transport ? ` · ${t.transport}` : ''}`}
                  />
                </li>
              ))}
            </ul>
          )}
        </section>

        <MulticastTransfers />

        <section aria-labelledby="recent-title" className="card wide">
          <h2 id="recent-title">Recent deliveries and failures</h2>
          <ErrorNotice error={outcomes.error ? errorMessage(outcomes.error) : null} />
          {outcomes.data && recent.length === 0 && <p className="empty">No delivery has finished yet.</p>}
          {recent.length > 0 && (
            <DataTable columns={['File', 'Group', 'To', 'Outcome', 'When', 'How / why']} label="Recent deliveries and failures">
              {recent.map((o) => (
                <tr key={o.key}>
                  <th scope="row" className="wrap">
                    {o.file}
                  </th>
                  <td>{o.group ?? '1:1'}</td>
                  <td>{o.username}</td>
                  <td className={`state state-${o.state}`}>{o.state}</td>
                  <td>{formatDate(o.at)}</td>
                  <td className="wrap">{o.detail}</td>
                </tr>
              ))}
            </DataTable>
          )}
        </section>
      </div>
    </>
  );
}

/** Round-trip probe to one receiver, showing its time or "not answering". */
function CheckButton({ agentId, name }: { agentId: string; name: string }) {
  const { api } = useSession();
  const [result, setResult] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const check = async () => {
    setBusy(true);
    setResult(null);
    try {
      const r = await api.call('checkReceiver', { params: { agentId } });
      setResult(`answered in ${r.rttMs.toFixed(0)} ms`);
    } catch (err) {
      setResult(errorCode(err) === ErrorCode.NOT_ANSWERING ? 'not answering' : errorMessage(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <span className="check">
      <button type="button" disabled={busy} aria-label={`Check ${name}`} onClick={() => void check()}>
        {busy ? 'Checking…' : 'Check'}
      </button>{' '}
      <span role="status" className="subtle">
        {result}
      </span>
    </span>
  );
}
