/**
 * A tiny typed in-process pub/sub. Routes publish what changed (catalogue, membership, join decisions);
 * the WebSocket hub subscribes and forwards events to the browsers and agents allowed to see them.
 * Publishing never throws: a failing subscriber is logged and the others still run.
 */
import type { Logger } from '../logger.ts';

/** Everything the coordinator announces. `group` and `username` are names, not ids. */
export type CoordinatorEvent =
  | { type: 'catalogue-changed'; group: string; fileId: string; change: 'shared' | 'unshared' }
  | {
      type: 'membership-changed';
      group: string;
      username: string;
      change: 'added' | 'removed' | 'left' | 'role';
      role?: 'owner' | 'member';
    }
  | { type: 'join-requested'; group: string; username: string }
  | { type: 'join-decided'; group: string; username: string; state: 'approved' | 'denied' }
  | { type: 'group-created'; group: string }
  | { type: 'group-deleted'; group: string }
  | { type: 'user-deleted'; username: string };

export type CoordinatorEventType = CoordinatorEvent['type'];

export interface EventBus<E = CoordinatorEvent> {
  /** Delivers `event` synchronously to every current subscriber. */
  publish(event: E): void;
  /** Adds a subscriber; returns the function that removes it. */
  subscribe(fn: (event: E) => void): () => void;
}

/** Creates an empty bus; subscriber errors go to `deps.logger`. */
export function createEventBus<E = CoordinatorEvent>(deps: { logger: Logger }): EventBus<E> {
  const subscribers = new Set<(event: E) => void>();
  return {
    publish(event) {
      for (const fn of [...subscribers]) {
        try {
          fn(event);
        } catch (err) {
          deps.logger.error('event subscriber failed', { err });
        }
      }
    },
    subscribe(fn) {
      subscribers.add(fn);
      return () => {
        subscribers.delete(fn);
      };
    },
  };
}
