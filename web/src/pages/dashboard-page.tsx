/**
 * Dashboard: receivers online now, transfers in progress with a progress bar per receiver, and recent
 * deliveries and failures. Receivers come from the presence route; progress and outcomes also arrive as live
 * events, which update the page without a reload.
 */
import { useState } from 'react';
import type { ShoalEvent } from '../../../src/protocol/events.ts';
import { errorMessage } from '../api.ts';
import { ErrorNotice } from '../components/field.tsx';
import { ProgressBar } from '../components/progress-bar.tsx';
import { hasRoutes, listPending, listReceivers, type PendingEntry, type Receiver } from '../delivery-routes.ts';
import { formatBytes, formatDate, formatRate } from '../format.ts';
import { useLiveEvents, useLiveRefresh, useLiveStatus } from '../live.tsx';
import { useSession } from '../session.tsx';
import { useLoad } from '../use-load.ts';

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
  const { api } = useSession();
  const live = useLiveStatus();
  const receiversAvailable = hasRoutes(api, 'listReceivers');
  const pendingAvailable = hasRoutes(api, 'listPending');

  const receivers = useLoad(
    (signal) => (receiversAvailable ? listReceivers(api, signal) : Promise.resolve([] as Receiver[])),
    [api, receiversAvailable],
  );
  // Recent outcomes: what the pending lists of my groups say, newest first.
  const outcomes = useLoad(
    async (signal) => {
      if (!pendingAvailable) return [] as Array<PendingEntry & { group: string }>;
      const { groups } = await api.call('myGroups', { signal });
      const lists = await Promise.all(
        groups.slice(0, 20).map((g) =>
          listPending(api, g.name, signal)
            .then((l) => l.map((e) => ({ ...e, group: g.name })))
            .catch(() => []),
        ),
      );
      return lists.flat();
    },
    [api, pendingAvailable],
  );
  const reloadAll = () => {
    receivers.reload();
    outcomes.reload();
  };
  useLiveRefresh(reloadAll, (e) => e.kind === 'presence' || (e.kind === 'recipient' && e.state !== 'receiving'), 5000);

  // Progress events patch the bars in place between reloads.
  const [progress, setProgress] = useState<Map<string, RecipientEvent>>(new Map());
  useLiveEvents((e) => {
    if (e.kind !== 'recipient') return;
    setProgress((m) => new Map(m).set(`${e.deliveryId}\u0000${e.username}`, e));
  });

  const transfers: Array<{ key: string; receiver: string; file: string; bytes: number; size: number; rate: number; transport: string }> = [];
  for (const r of receivers.data ?? []) {
    for (const t of r.receiving ?? []) {
      const ev = progress.get(`${t.deliveryId}\u0000${r.username}`);
      transfers.push({
        key: `${r.agentId}:${t.deliveryId}`,
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
    if (e.state !== 'receiving' || transfers.some((t) => t.key.endsWith(`:${e.deliveryId}`) && t.receiver.includes(`(${e.username})`))) continue;
    const ev = progress.get(`${e.deliveryId}\u0000${e.username}`);
    transfers.push({
      key: `${e.username}:${e.deliveryId}`,
      receiver: e.username,
      file: e.fileName,
      bytes: ev?.bytes ?? e.bytes,
      size: e.size,
      rate: ev?.rate ?? e.rate,
      transport: ev?.transport ?? e.transport ?? '',
    });
  }

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
        <section aria-labelledby="receivers-title" className="card">
          <h2 id="receivers-title">Active receivers</h2>
          {!receiversAvailable && <p className="empty">Receiver presence is not available on this server yet.</p>}
          <ErrorNotice error={receivers.error ? errorMessage(receivers.error) : null} />
          {receivers.data && receiversAvailable && receivers.data.length === 0 && <p className="empty">No receiver is online.</p>}
          {receivers.data && receivers.data.length > 0 && (
            <div className="table-wrap">
              <table aria-label="Active receivers">
                <thead>
                  <tr>
                    <th scope="col">Receiver</th>
                    <th scope="col">User</th>
                    <th scope="col">Address</th>
                    <th scope="col">Since</th>
                    <th scope="col">Receiving</th>
                  </tr>
                </thead>
                <tbody>
                  {receivers.data.map((r) => (
                    <tr key={r.agentId}>
                      <th scope="row">{r.name}</th>
                      <td>{r.username}</td>
                      <td className="mono">{r.address}</td>
                      <td>{formatDate(r.since)}</td>
                      <td>{r.receiving?.length ? r.receiving.map((t) => t.fileName).join(', ') : '–'}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </section>

        <section aria-labelledby="transfers-title" className="card">
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

        <section aria-labelledby="recent-title" className="card wide">
          <h2 id="recent-title">Recent deliveries and failures</h2>
          {!pendingAvailable && <p className="empty">Deliveries are not available on this server yet.</p>}
          <ErrorNotice error={outcomes.error ? errorMessage(outcomes.error) : null} />
          {pendingAvailable && outcomes.data && recent.length === 0 && <p className="empty">No delivery has finished yet.</p>}
          {recent.length > 0 && (
            <div className="table-wrap">
              <table aria-label="Recent deliveries and failures">
                <thead>
                  <tr>
                    <th scope="col">File</th>
                    <th scope="col">Group</th>
                    <th scope="col">To</th>
                    <th scope="col">Outcome</th>
                    <th scope="col">When</th>
                    <th scope="col">How / why</th>
                  </tr>
                </thead>
                <tbody>
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
                </tbody>
              </table>
            </div>
          )}
        </section>
      </div>
    </>
  );
}
