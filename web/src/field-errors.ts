/**
 * Puts a server error next to the field that caused it: validation details naming a field, or a code known to
 * belong to one field (a taken name, a wrong password). Anything else is a form-level error.
 */
import { ErrorCode, ShoalError } from '../../src/protocol/errors.ts';
import { errorMessage } from './api.ts';

/** Field name → message, plus a message for the form as a whole. */
export interface FormErrors {
  fields: Record<string, string>;
  form: string | null;
}

/** Which field each error code belongs to, per form. */
export type CodeFields = Partial<Record<ErrorCode, string>>;

/** Splits an error into field errors and a form error. */
export function toFormErrors(err: unknown, byCode: CodeFields = {}, known: string[] = []): FormErrors {
  const fields: Record<string, string> = {};
  if (err instanceof ShoalError) {
    const field = byCode[err.code];
    if (field) return { fields: { [field]: err.message }, form: null };
    // Validation answers may list issues with a path (zod style) or name a field.
    const d = err.details ?? {};
    const issues = Array.isArray(d.issues) ? (d.issues as Array<{ path?: unknown[]; message?: string }>) : [];
    for (const issue of issues) {
      const name = String(issue.path?.[issue.path.length - 1] ?? '');
      if (known.includes(name) && issue.message && !fields[name]) fields[name] = issue.message;
    }
    if (typeof d.field === 'string' && known.includes(d.field)) fields[d.field] = err.message;
    if (Object.keys(fields).length > 0) return { fields, form: null };
    if (err.code === ErrorCode.RATE_LIMITED) {
      const retry = typeof d.retryAfterSeconds === 'number' ? ` Try again in ${Math.ceil(d.retryAfterSeconds)} s.` : '';
      return { fields, form: `Too many attempts.${retry}` };
    }
  }
  return { fields, form: errorMessage(err) };
}

/** No errors. */
export const noErrors: FormErrors = { fields: {}, form: null };
