/**
 * Form controls with a visible label, an optional hint and an error shown right under the control (and tied to
 * it with aria-describedby / aria-invalid so screen readers announce it).
 */
import { useId, type InputHTMLAttributes, type ReactNode, type Ref, type SelectHTMLAttributes } from 'react';

interface FieldShellProps {
  label: string;
  error?: string | null;
  hint?: string;
  children: (ids: { id: string; describedBy: string | undefined }) => ReactNode;
}

function FieldShell({ label, error, hint, children }: FieldShellProps) {
  const id = useId();
  const hintId = hint ? `${id}-hint` : undefined;
  const errId = error ? `${id}-err` : undefined;
  const describedBy = [hintId, errId].filter(Boolean).join(' ') || undefined;
  return (
    <div className={`field${error ? ' has-error' : ''}`}>
      <label htmlFor={id}>{label}</label>
      {children({ id, describedBy })}
      {hint && (
        <p className="hint" id={hintId}>
          {hint}
        </p>
      )}
      {error && (
        <p className="field-error" id={errId} role="alert">
          {error}
        </p>
      )}
    </div>
  );
}

/** A labelled input. */
export function TextField({
  label,
  error,
  hint,
  ref,
  ...input
}: { label: string; error?: string | null; hint?: string; ref?: Ref<HTMLInputElement> } & InputHTMLAttributes<HTMLInputElement>) {
  return (
    <FieldShell label={label} error={error} hint={hint}>
      {({ id, describedBy }) => (
        <input ref={ref} id={id} aria-invalid={error ? true : undefined} aria-describedby={describedBy} {...input} />
      )}
    </FieldShell>
  );
}

/** A labelled select. */
export function SelectField({
  label,
  error,
  hint,
  children,
  ...select
}: { label: string; error?: string | null; hint?: string; children: ReactNode } & SelectHTMLAttributes<HTMLSelectElement>) {
  return (
    <FieldShell label={label} error={error} hint={hint}>
      {({ id, describedBy }) => (
        <select id={id} aria-invalid={error ? true : undefined} aria-describedby={describedBy} {...select}>
          {children}
        </select>
      )}
    </FieldShell>
  );
}

/** An error for a whole form or section (not tied to one field). */
export function ErrorNotice({ error }: { error: string | null | undefined }) {
  if (!error) return null;
  return (
    <p className="notice notice-error" role="alert">
      {error}
    </p>
  );
}

/** A success message for a whole form or section, announced politely; nothing when empty. */
export function OkNotice({ message }: { message: string | null | undefined }) {
  if (!message) return null;
  return (
    <p className="notice notice-ok" role="status">
      {message}
    </p>
  );
}

/** A form's primary submit button in its actions row. */
export function SubmitButton({ disabled, children }: { disabled: boolean; children: ReactNode }) {
  return (
    <div className="actions">
      <button type="submit" className="primary" disabled={disabled}>
        {children}
      </button>
    </div>
  );
}
