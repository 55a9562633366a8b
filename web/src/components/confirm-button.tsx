/**
 * A button that asks before doing something destructive, in a native modal <dialog> (focus is trapped and Esc
 * cancels without extra code).
 */
import { useRef, useState } from 'react';
import { errorMessage } from '../api.ts';

/** Shows `label`; on confirm runs `onConfirm`, showing its error inside the dialog. */
export function ConfirmButton({
  label,
  question,
  confirmLabel,
  onConfirm,
  className = 'danger',
  accessibleLabel,
}: {
  label: string;
  question: string;
  confirmLabel: string;
  onConfirm: () => Promise<void>;
  className?: string;
  accessibleLabel?: string;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const run = async () => {
    setBusy(true);
    setError(null);
    try {
      await onConfirm();
      ref.current?.close();
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <button type="button" className={className} aria-label={accessibleLabel} onClick={() => ref.current?.showModal()}>
        {label}
      </button>
      <dialog ref={ref} className="dialog" aria-label={question}>
        <p>{question}</p>
        {error && (
          <p className="notice notice-error" role="alert">
            {error}
          </p>
        )}
        <div className="actions">
          <button type="button" className="danger" disabled={busy} onClick={() => void run()}>
            {confirmLabel}
          </button>
          <button type="button" onClick={() => ref.current?.close()}>
            Cancel
          </button>
        </div>
      </dialog>
    </>
  );
}
