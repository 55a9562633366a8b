/**
 * The submit sequence every form follows: client-side checks shown beside their fields, then the call with the
 * submit button disabled, and a server error put beside the field it belongs to (or on the form).
 */
import { useState } from 'react';
import { noErrors, toFormErrors, type CodeFields, type FormErrors } from './field-errors.ts';

/** State of one form. */
export interface FormState {
  errors: FormErrors;
  busy: boolean;
  /**
   * Shows `fields` (field name → message from client-side checks) and stops if there are any; else clears the
   * errors and runs `action` while busy, turning what it throws into field or form errors.
   */
  run(fields: Record<string, string>, action: () => Promise<void>): Promise<void>;
}

/** Errors and busy flag of one form; `byCode` and `known` are passed to toFormErrors. */
export function useForm(byCode: CodeFields, known: string[]): FormState {
  const [errors, setErrors] = useState<FormErrors>(noErrors);
  const [busy, setBusy] = useState(false);
  const run = async (fields: Record<string, string>, action: () => Promise<void>) => {
    if (Object.keys(fields).length) {
      setErrors({ fields, form: null });
      return;
    }
    setBusy(true);
    setErrors(noErrors);
    try {
      await action();
    } catch (err) {
      setErrors(toFormErrors(err, byCode, known));
    } finally {
      setBusy(false);
    }
  };
  return { errors, busy, run };
}
