/** Self-registration (only when the server has it open), then straight in. */
import { useState, type FormEvent } from 'react';
import { Name, Password } from '../../../src/protocol/api.ts';
import { ErrorCode } from '../../../src/protocol/errors.ts';
import { createApi } from '../api.ts';
import { ErrorNotice, TextField, SubmitButton } from '../components/field.tsx';
import { href } from '../router.ts';
import { useSession } from '../session.tsx';
import { useForm } from '../use-form.ts';
import { useLoad } from '../use-load.ts';

/** Checks a new account's fields with the same schemas the server uses. */
export function checkAccountFields(username: string, password: string, confirm?: string): Record<string, string> {
  const fields: Record<string, string> = {};
  const n = Name.safeParse(username);
  if (!n.success) fields.username = username ? `Username: ${n.error.issues[0]?.message ?? 'invalid'}.` : 'Choose a username.';
  const p = Password.safeParse(password);
  if (!p.success) fields.password = 'At least 8 characters.';
  if (confirm !== undefined && confirm !== password) fields.confirm = 'The passwords do not match.';
  return fields;
}

/** The registration form. */
export function RegisterPage() {
  const { signIn } = useSession();
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [confirm, setConfirm] = useState('');
  const { errors, busy, run } = useForm({ [ErrorCode.USER_EXISTS]: 'username', [ErrorCode.INVALID_NAME]: 'username' }, [
    'username',
    'password',
  ]);
  const info = useLoad((signal) => createApi({ token: null }).call('serverInfo', { signal }), []);

  if (info.data && !info.data.registration) {
    return (
      <section className="card" aria-labelledby="reg-title">
        <h1 id="reg-title">Registration is closed</h1>
        <p>This server does not accept new accounts. Ask an administrator to create one for you.</p>
        <p>
          <a href={href('signin')}>Back to sign in</a>
        </p>
      </section>
    );
  }

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    await run(checkAccountFields(username, password, confirm), async () => {
      const api = createApi({ token: null });
      await api.call('register', { body: { username, password } });
      const res = await api.call('login', { body: { username, password } });
      signIn(res.token, res.user);
    });
  };

  return (
    <section aria-labelledby="reg-title" className="card">
      <h1 id="reg-title">Create an account</h1>
      <form onSubmit={(e) => void submit(e)} noValidate>
        <TextField
          label="Username"
          name="username"
          autoComplete="username"
          autoCapitalize="none"
          hint="Letters, digits, “.”, “_” and “-”."
          value={username}
          onChange={(e) => setUsername(e.target.value)}
          error={errors.fields.username}
        />
        <TextField
          label="Password"
          name="password"
          type="password"
          autoComplete="new-password"
          hint="At least 8 characters."
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          error={errors.fields.password}
        />
        <TextField
          label="Repeat password"
          name="confirm"
          type="password"
          autoComplete="new-password"
          value={confirm}
          onChange={(e) => setConfirm(e.target.value)}
          error={errors.fields.confirm}
        />
        <ErrorNotice error={errors.form} />
        <SubmitButton disabled={busy}>{busy ? 'Creating…' : 'Create account'}</SubmitButton>
      </form>
      <p>
        Already have an account? <a href={href('signin')}>Sign in</a>.
      </p>
    </section>
  );
}
