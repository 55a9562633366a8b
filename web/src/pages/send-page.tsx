/**
 * Send one file straight to one user (a delivery with a single recipient), then follow its status live:
 * pending until their agent is online, receiving with a progress bar, delivered or failed.
 */
import { useState, type FormEvent } from 'react';
import { ErrorCode } from '../../../src/protocol/errors.ts';
import { errorCode, errorMessage } from '../api.ts';
import { ErrorNotice, TextField, SubmitButton } from '../components/field.tsx';
import { ProgressBar } from '../components/progress-bar.tsx';
import { formatBytes } from '../format.ts';
import { useLiveRefresh } from '../live.tsx';
import { rememberDirectDelivery } from '../direct-deliveries.tsx';
import { useSession } from '../session.tsx';
import { useLoad } from '../use-load.ts';
import { statusText } from './group-pending-tab.tsx';

/** The send page. */
export function SendPage() {
  const { api, user } = useSession();
  const [to, setTo] = useState('');
  const [file, setFile] = useState<File | null>(null);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [progress, setProgress] = useState<{ done: number; total: number } | null>(null);
  const [sent, setSent] = useState<{ deliveryId: string; name: string; to: string } | null>(null);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setFormError(null);
    const errs: Record<string, string> = {};
    if (!to.trim()) errs.to = 'Who should receive it?';
    if (!file) errs.file = 'Choose a file.';
    setErrors(errs);
    if (Object.keys(errs).length || !file) return;
    setSent(null);
    setProgress({ done: 0, total: file.size });
    try {
      const res = await api.upload('sendDirect', {
        query: { to: to.trim(), name: file.name },
        file,
        onProgress: (d, t) => setProgress({ done: d, total: t }),
      });
      if (user) rememberDirectDelivery(user.username, res.delivery.id);
      setSent({ deliveryId: res.delivery.id, name: res.file.name, to: to.trim() });
    } catch (err) {
      const code = errorCode(err);
      if (code === ErrorCode.USER_NOT_FOUND) setErrors({ to: errorMessage(err) });
      else if (code === ErrorCode.PAYLOAD_TOO_LARGE || code === ErrorCode.VALIDATION_FAILED) setErrors({ file: errorMessage(err) });
      else setFormError(errorMessage(err));
    } finally {
      setProgress(null);
    }
  };

  return (
    <>
      <h1>Send a file to one user</h1>
      <form className="card" onSubmit={(e) => void submit(e)} noValidate>
        <TextField label="To (username)" name="to" autoCapitalize="none" value={to} onChange={(e) => setTo(e.target.value)} error={errors.to} />
        <TextField label="File to send" name="file" type="file" onChange={(e) => setFile(e.target.files?.[0] ?? null)} error={errors.file} />
        <SubmitButton disabled={progress !== null}>Send</SubmitButton>
        {progress && (
          <ProgressBar label="Upload progress" done={progress.done} total={progress.total} text={`${formatBytes(progress.done)} of ${formatBytes(progress.total)}`} />
        )}
        <ErrorNotice error={formError} />
      </form>
      {sent && <DeliveryStatus key={sent.deliveryId} {...sent} />}
    </>
  );
}

/** Live status of one 1:1 delivery. */
function DeliveryStatus({ deliveryId, name, to }: { deliveryId: string; name: string; to: string }) {
  const { api } = useSession();
  const delivery = useLoad((signal) => api.call('getDelivery', { params: { deliveryId }, signal }), [api, deliveryId]);
  useLiveRefresh(delivery.reload, (e) => (e.kind === 'recipient' || e.kind === 'delivery') && e.deliveryId === deliveryId, 5000);
  const r = delivery.data?.delivery.recipients[0];
  return (
    <section className="card" aria-labelledby="sent-title">
      <h2 id="sent-title">
        {name} → {to}
      </h2>
      <ErrorNotice error={delivery.error ? errorMessage(delivery.error) : null} />
      {r && (
        <p className={`state state-${r.state}`} data-state={r.state} role="status">
          <span className="state-label">{r.state === 'pending' ? 'pending: it arrives as soon as their agent is online' : statusText(r)}</span>
        </p>
      )}
      {r?.state === 'receiving' && <ProgressBar label={`${name} to ${to}`} done={r.bytes} total={r.size} />}
    </section>
  );
}
