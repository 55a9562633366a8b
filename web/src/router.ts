/**
 * Hash routing (`#/groups/ops/files`): works from any URL the coordinator serves, with or without its SPA
 * fallback, and a typed URL never reaches the server.
 */
import { useEffect, useState } from 'react';

/** The current route as path segments (decoded), e.g. ['groups', 'ops', 'files']. */
export function currentSegments(): string[] {
  const raw = window.location.hash.replace(/^#\/?/, '').split('?')[0];
  return raw
    .split('/')
    .filter(Boolean)
    .map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    });
}

/** Re-renders on every hash change; returns the current segments. */
export function useRoute(): string[] {
  const [segments, setSegments] = useState(currentSegments);
  useEffect(() => {
    const on = () => setSegments(currentSegments());
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return segments;
}

/** The href of a route from its segments. */
export function href(...segments: string[]): string {
  return '#/' + segments.map(encodeURIComponent).join('/');
}

/** Goes to a route. */
export function navigate(...segments: string[]): void {
  window.location.hash = href(...segments).slice(1);
}
