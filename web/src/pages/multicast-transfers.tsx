/**
 * The dashboard's multicast transfers: running and recently finished sends on a group's multicast address, from
 * GET /transfers, with per receiver its bytes, loss, passes answered and state. The sender's per-pass status is
 * not an event, so the list is polled about once a second while a transfer runs, and reloaded when deliveries
 * start or finish.
 */
import { useEffect } from 'react';
import type { MulticastTransfer } from '../../../src/protocol/api.ts';
import { errorMessage } from '../api.ts';
import { ErrorNotice } from '../components/field.tsx';
import { DataTable } from '../components/data-table.tsx';
import { ProgressBar } from '../components/progress-bar.tsx';
import { formatBytes, formatDate } from '../format.ts';
import { useLiveRefresh } from '../live.tsx';
import { useSession } from '../session.tsx';
import { useLoad } from '../use-load.ts';

/** Poll period while a transfer runs, ms. */
const runningPollMs = 1000;

const running = (t: MulticastTransfer) => t.state === 'joining' || t.state === 'sending';

/** Bits/s as Mbit/s text. */
function formatMbit(bps: number | null): string {
  return bps === null || !Number.isFinite(bps) ? '–' : `${(bps / 1e6).toFixed(bps < 10e6 ? 1 : 0)} Mbit/s`;
}

/** A loss rate 0..1 as a percentage. */
function formatLoss(loss: number): string {
  return Number.isFinite(loss) ? `${(loss * 100).toFixed(loss > 0 && loss < 0.01 ? 2 : 1)} %` : '–';
}

/** The multicast transfers card. */
export function MulticastTransfers() {
  const { api } = useSession();
  const transfers = useLoad(async (signal) => (await api.call('listTransfers', { query: {}, signal })).transfers, [api]);
  // A delivery created or sent, or a recipient finishing, may start or end a transfer.
  useLiveRefresh(
    transfers.reload,
    (e) => (e.kind === 'delivery' && e.group !== null) || (e.kind === 'recipient' && e.group !== null && e.state !== 'receiving'),
    5000,
  );
  const anyRunning = (transfers.data ?? []).some(running);
  useEffect(() => {
    if (!anyRunning) return;
    const i = setInterval(transfers.reload, runningPollMs);
    return () => clearInterval(i);
  }, [anyRunning, transfers.reload]);

  const list = [...(transfers.data ?? [])].sort((a, b) => Number(running(b)) - Number(running(a)) || b.startedAt.localeCompare(a.startedAt)).slice(0, 10);
  return (
    <section aria-labelledby="multicast-title" className="card wide">
      <h2 id="multicast-title">Multicast transfers</h2>
      <ErrorNotice error={transfers.error ? errorMessage(transfers.error) : null} />
      {transfers.data && list.length === 0 && <p className="empty">No multicast transfer yet.</p>}
      {list.map((t) => (
        <article key={t.transferId} className="multicast-transfer" aria-label={`Multicast transfer of ${t.fileName} to ${t.group}`} data-state={t.state}>
          <h3>
            {t.fileName} <span className="subtle">→ {t.group}</span>
          </h3>
          <p className="subtle">
            <span className={`state state-${t.state}`}>{t.state}</span> · {formatBytes(t.size)} · pass {t.passes} of at most {t.maxPasses} · rate{' '}
            {formatMbit(t.currentRateBps ?? t.rateBps)} (ceiling {formatMbit(t.rateBps)}, floor {formatMbit(t.minRateBps)}) · started{' '}
            {formatDate(t.startedAt)}
            {t.finishedAt ? ` · finished ${formatDate(t.finishedAt)}` : ''}
            {t.wireBytes !== null ? ` · ${formatBytes(t.wireBytes)} on the wire` : ''}
          </p>
          <DataTable columns={['Receiver', 'Bytes', 'Loss', 'Passes', 'State']} label={`Receivers of ${t.fileName} by multicast`}>
            {t.receivers.map((r) => (
              <tr key={r.agentId} data-receiver={r.username} data-state={r.state}>
                <th scope="row">
                  {r.name} <span className="subtle">({r.username})</span>
                </th>
                <td>
                  <ProgressBar
                    label={`${t.fileName} to ${r.name} by multicast`}
                    done={r.bytes}
                    total={t.size}
                    text={`${formatBytes(r.bytes)} of ${formatBytes(t.size)}`}
                  />
                </td>
                <td>{formatLoss(r.loss)}</td>
                <td>{r.passes}</td>
                <td className={`state state-${r.delivery ?? r.state}`}>
                  {r.state}
                  {r.delivery && r.delivery !== r.state ? ` · ${r.delivery}${r.transport ? ` via ${r.transport}` : ''}` : ''}
                </td>
              </tr>
            ))}
          </DataTable>
        </article>
      ))}
    </section>
  );
}
