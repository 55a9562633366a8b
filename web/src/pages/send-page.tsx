/** Send one file straight to one user (a delivery with a single recipient). */
import { useState, type FormEvent } from 'react';
import { errorMessage } from '../api.ts';
import { ErrorNotice, TextField } from '../components/field.tsx';
import { ProgressBar } from '../components/progress-bar.tsx';
import { ErrorCode } from '../../../src/protocol/errors.ts';
import { errorCode } from '../api.ts';
import { formatBytes } from '../format.ts';
import { useSession } from '../session.tsx';

/** The send page. */
export function SendPage() {
  const { api } = useSession();
  const [to, setTo] = useState('');
  const [file, setFile] = useState<File | null>(null);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [progress, setProgress] = useState<{ done: number; total: number } | null>(null);
  const [status, setStatus] = useState<string | null>(null);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setStatus(null);
    setFormError(null);
    const errs: Record<string, string> = {};
    if (!to.trim()) errs.to = 'Who should receive it?';
    if (!file) errs.file = 'Choose a file.';
    setErrors(errs);
    if (Object.keys(errs).length || !file) return;
    setProgress({ done: 0, total: file.size });
    try {
      await api.upload('sendDirect', {
        query: { to: to.trim(), name: file.name },
        file,
        onProgress: (d, t) => setProgress({ done: d, total: t }),
      });
      setStatus(`Sending ${file.name} to ${to.trim()}: it arrives as soon as their agent is online.`);
    } catch (err) {
      if (errorCode(err) === ErrorCode.USER_NOT_FOUND) setErrors({ to: errorMessage(err) });
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
        <TextField label="File" name="file" type="file" onChange={(e) => setFile(e.target.files?.[0] ?? null)} error={errors.file} />
        <div className="actions">
          <button type="submit" className="primary" disabled={progress !== null}>
            Send
          </button>
        </div>
        {progress && (
          <ProgressBar label="Upload progress" done={progress.done} total={progress.total} text={`${formatBytes(progress.done)} of ${formatBytes(progress.total)}`} />
        )}
        <ErrorNotice error={formError} />
        {status && (
          <p className="notice notice-ok" role="status">
            {status}
          </p>
        )}
      </form>
    </>
  );
}
