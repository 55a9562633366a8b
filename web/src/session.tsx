/**
 * The signed-in session: token and user, kept in sessionStorage. sessionStorage rather than localStorage because
 * a bearer token is a full credential: it then lives only as long as the tab, is not shared with other tabs or
 * left behind on a shared machine after the browser closes, and the coordinator's session expiry still applies.
 */
import { createContext, useCallback, useContext, useMemo, useState, type ReactNode } from 'react';
import type { User } from '../../src/protocol/api.ts';
import { createApi, type Api } from './api.ts';

const storageKey = 'shoal.session';

interface Stored {
  token: string;
  user: User;
}

/** What pages get from the session. */
export interface Session {
  user: User | null;
  token: string | null;
  api: Api;
  signIn(token: string, user: User): void;
  signOut(): void;
  /** Why the last session ended, when the server ended it (shown on the sign-in page). */
  endedBecause: string | null;
  /** Replaces the cached user (after whoami). */
  setUser(user: User): void;
}

const SessionContext = createContext<Session | null>(null);

function load(): Stored | null {
  try {
    const raw = sessionStorage.getItem(storageKey);
    return raw ? (JSON.parse(raw) as Stored) : null;
  } catch {
    return null;
  }
}

/** Provides the session to the app. */
export function SessionProvider({ children }: { children: ReactNode }) {
  const [stored, setStored] = useState<Stored | null>(load);
  const [endedBecause, setEndedBecause] = useState<string | null>(null);
  const save = useCallback((s: Stored | null) => {
    if (s) sessionStorage.setItem(storageKey, JSON.stringify(s));
    else sessionStorage.removeItem(storageKey);
    setStored(s);
  }, []);
  const api = useMemo(
    () =>
      createApi({
        token: stored?.token ?? null,
        onUnauthenticated: () => {
          setEndedBecause('Your session has ended. Sign in again.');
          save(null);
        },
      }),
    [stored?.token, save],
  );
  const value = useMemo<Session>(
    () => ({
      user: stored?.user ?? null,
      token: stored?.token ?? null,
      api,
      endedBecause,
      signIn: (token, user) => {
        setEndedBecause(null);
        save({ token, user });
      },
      signOut: () => save(null),
      setUser: (user) => stored && save({ ...stored, user }),
    }),
    [stored, api, save, endedBecause],
  );
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

/** The current session (inside SessionProvider). */
export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error('useSession outside SessionProvider');
  return s;
}
