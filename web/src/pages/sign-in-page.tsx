/** Sign in, with a link to register when the server allows self-registration. */
import { useState, type FormEvent } from 'react';
import { ErrorCode } from '../../../src/protocol/errors.ts';
import { createApi } from '../api.ts';
import { TextField, ErrorNotice, SubmitButton } from '../components/field.tsx';
import { href } from '../router.ts';
import { useSession } from '../session.tsx';
import { useForm } from '../use-form.ts';
import { useLoad } from '../use-load.ts';

/** The sign-in form. */
export function SignInPage() {
  const { signIn, endedBecause } = useSession();
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const { errors, busy, run } = useForm(
    {
      [ErrorCode.INVALID_CREDENTIALS]: 'password',
      [ErrorCode.USER_NOT_FOUND]: 'username',
    },
    ['username', 'password'],
  );
  const info = useLoad((signal) => createApi({ token: null }).call('serverInfo', { signal }), []);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const fields: Record<string, string> = {};
    if (!username.trim()) fields.username = 'Enter your username.';
    if (!password) fields.password = 'Enter your password.';
    await run(fields, async () => {
      const res = await createApi({ token: null }).call('login', { body: { username: username.trim(), password } });
      signIn(res.token, res.user);
    });
  };

  return (
    <section aria-labelledby="signin-title" className="card">
      <h1 id="signin-title">Sign in</h1>
      {endedBecause && (
        <p className="notice" role="status">
          {endedBecause}
        </p>
      )}
      <form onSubmit={(e) => void submit(e)} noValidate>
        <TextField
          label="Username"
          name="username"
          autoComplete="username"
          autoCapitalize="none"
          value={username}
          onChange={(e) => setUsername(e.target.value)}
          error={errors.fields.username}
        />
        <TextField
          label="Password"
          name="password"
          type="password"
          autoComplete="current-password"
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          error={errors.fields.password}
        />
        <ErrorNotice error={errors.form} />
        <SubmitButton disabled={busy}>{busy ? 'Signing in…' : 'Sign in'}</SubmitButton>
      </form>
      {info.data?.registration && (
        <p>
          No account yet? <a href={href('register')}>Create one</a>.
        </p>
      )}
    </section>
  );
}
