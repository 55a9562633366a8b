/**
 * Live updates: one WebSocket per signed-in tab to /api/v1/events, authenticated with the
 * `bearer.<token>` subprotocol (browsers cannot set headers on a WebSocket). Pages subscribe to events and
 * reload what they show; when the socket cannot be opened they say "live updates unavailable" and fall back to
 * polling, so nothing depends on it being there.
 */
import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import type { ShoalEvent } from '../../src/protocol/events.ts';
import { apiBase } from './api.ts';

/** One event a viewer receives (the `event` of an EventMsg). */
export type LiveEvent = ShoalEvent;

/** State of the live connection. */
export type LiveStatus = 'connecting' | 'live' | 'unavailable';

interface LiveHub {
  status: LiveStatus;
  subscribe(fn: (e: LiveEvent) => void): () => void;
}

const LiveContext = createContext<LiveHub>({ status: 'unavailable', subscribe: () => () => {} });

/** Delay before reconnect attempt n (ms): 1 s doubling to 30 s. */
const backoffMs = (n: number) => Math.min(30_000, 1000 * 2 ** Math.min(n, 5));

/** Opens and keeps the events socket while a token is given. */
export function LiveProvider({ token, children }: { token: string | null; children: ReactNode }) {
  const [status, setStatus] = useState<LiveStatus>('connecting');
  const subscribers = useRef(new Set<(e: LiveEvent) => void>());

  useEffect(() => {
    if (!token) {
      setStatus('unavailable');
      return;
    }
    let ws: WebSocket | null = null;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let stable: ReturnType<typeof setTimeout> | undefined;
    let attempts = 0;
    let stopped = false;
    const open = () => {
      setStatus((s) => (s === 'live' ? 'connecting' : s));
      const url = new URL(apiBase + '/events', window.location.href);
      url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
      try {
        ws = new WebSocket(url, ['bearer.' + token]);
      } catch {
        setStatus('unavailable');
        return;
      }
      ws.onopen = () => {
        setStatus('live');
        // Back off afresh only after the socket proved stable, so a server that accepts and drops at once is
        // not hammered every second.
        clearTimeout(stable);
        stable = setTimeout(() => (attempts = 0), 10_000);
      };
      ws.onmessage = (m) => {
        let msg: { type?: unknown; event?: { kind?: unknown } };
        try {
          msg = JSON.parse(String(m.data)) as typeof msg;
        } catch {
          return;
        }
        // Viewers only act on events; welcome, errors and agent messages are not for pages.
        if (msg?.type !== 'event' || typeof msg.event?.kind !== 'string') return;
        for (const fn of subscribers.current) fn(msg.event as LiveEvent);
      };
      ws.onclose = () => {
        ws = null;
        clearTimeout(stable);
        if (stopped) return;
        setStatus('unavailable');
        timer = setTimeout(open, backoffMs(attempts++));
      };
    };
    open();
    return () => {
      stopped = true;
      clearTimeout(timer);
      clearTimeout(stable);
      ws?.close();
    };
  }, [token]);

  const subscribe = useCallback((fn: (e: LiveEvent) => void) => {
    subscribers.current.add(fn);
    return () => {
      subscribers.current.delete(fn);
    };
  }, []);
  const value = useMemo<LiveHub>(() => ({ status, subscribe }), [status, subscribe]);
  return <LiveContext.Provider value={value}>{children}</LiveContext.Provider>;
}

/** The live connection's status. */
export function useLiveStatus(): LiveStatus {
  return useContext(LiveContext).status;
}

/**
 * Calls `onChange` (debounced 150 ms) on every event `match` accepts, and every `pollMs` while the socket is not
 * live, so a page stays current either way.
 */
export function useLiveRefresh(onChange: () => void, match: (e: LiveEvent) => boolean = () => true, pollMs = 5000): LiveStatus {
  const { status, subscribe } = useContext(LiveContext);
  const cb = useRef(onChange);
  cb.current = onChange;
  const matchRef = useRef(match);
  matchRef.current = match;
  useEffect(() => {
    let t: ReturnType<typeof setTimeout> | undefined;
    const off = subscribe((e) => {
      if (!matchRef.current(e)) return;
      clearTimeout(t);
      t = setTimeout(() => cb.current(), 150);
    });
    return () => {
      clearTimeout(t);
      off();
    };
  }, [subscribe]);
  useEffect(() => {
    if (status === 'live') return;
    const i = setInterval(() => cb.current(), pollMs);
    return () => clearInterval(i);
  }, [status, pollMs]);
  return status;
}

/** Calls `fn` on every live event while mounted. */
export function useLiveEvents(fn: (e: LiveEvent) => void): void {
  const { subscribe } = useContext(LiveContext);
  const cb = useRef(fn);
  cb.current = fn;
  useEffect(() => subscribe((e) => cb.current(e)), [subscribe]);
}

/** A small badge saying whether updates are live. */
export function LiveBadge() {
  const status = useLiveStatus();
  const text = status === 'live' ? 'Live' : status === 'connecting' ? 'Connecting…' : 'Live updates unavailable';
  return (
    <span className={`badge live-${status}`} role="status" aria-live="polite">
      {text}
    </span>
  );
}
