/**
 * The web UI's handle on the coordinator: the shared typed client (src/client/api-client.ts) bound to the
 * page's origin and the session token, with a hook that ends the session when the server answers 401.
 * Errors are ShoalError with the server's stable code, so pages can put a message next to the right field.
 */
import type { z } from 'zod';
import type { RouteName, Routes } from '../../src/protocol/api.ts';
import { ErrorCode, ShoalError } from '../../src/protocol/errors.ts';
import {
  apiPrefix,
  createApiClient,
  type ApiClient,
  type RawRouteName,
  type RouteInput,
  type StreamRouteName,
} from '../../src/client/api-client.ts';

type Schema<R, K extends string> = R extends { [P in K]: infer S extends z.ZodType } ? z.input<S> : undefined;
type Output<R> = R extends { response: infer S extends z.ZodType } ? z.output<S> : void;

/** What a call sends: path parameters, query and JSON body, each typed from the route table. */
export interface CallInput<N extends RouteName> {
  params?: Schema<Routes[N], 'params'>;
  query?: Schema<Routes[N], 'query'>;
  body?: Schema<Routes[N], 'body'>;
  signal?: AbortSignal;
}

/** The answer of a route: its response schema's output, or void for 204 answers. */
export type CallOutput<N extends RouteName> = Output<Routes[N]>;

/** The base path of the API on the page's origin. */
export const apiBase = apiPrefix;

/** Options of an API handle. */
export interface ApiOptions {
  /** Bearer token, or null when signed out. */
  token: string | null;
  /** Called when the server says the session is gone (401 on an authenticated call). */
  onUnauthenticated?: () => void;
}

/** A typed API handle bound to one token. */
export interface Api {
  readonly token: string | null;
  readonly client: ApiClient;
  call<N extends Exclude<RouteName, RawRouteName>>(name: N, input?: CallInput<N>): Promise<CallOutput<N>>;
  /** Uploads a file to a raw route (shareFile…), reporting progress in bytes. */
  upload<N extends RawRouteName>(
    name: N,
    input: CallInput<N> & { file: Blob; onProgress?: (sent: number, total: number) => void },
  ): Promise<CallOutput<N>>;
  /** Fetches a byte-stream route (downloads). */
  download<N extends StreamRouteName>(name: N, input: CallInput<N>): Promise<Response>;
}

/** Makes an API handle for the page's own origin. */
export function createApi(options: ApiOptions): Api {
  const client = createApiClient({ baseUrl: '', token: options.token ?? undefined });
  const guard = async <T>(p: Promise<T>): Promise<T> => {
    try {
      return await p;
    } catch (err) {
      const code = err instanceof ShoalError ? err.code : undefined;
      if (options.token && (code === ErrorCode.UNAUTHENTICATED || code === ErrorCode.SESSION_EXPIRED)) {
        options.onUnauthenticated?.();
      }
      throw err;
    }
  };
  const split = <T extends { signal?: AbortSignal }>(input: T | undefined) => {
    const { signal, ...rest } = input ?? ({} as T);
    return { signal, rest };
  };

  return {
    token: options.token,
    client,
    call(name, input) {
      const { signal, rest } = split(input);
      return guard(client.call(name, rest as unknown as RouteInput<typeof name>, { signal })) as Promise<CallOutput<typeof name>>;
    },
    upload(name, input) {
      const { signal, rest } = split(input);
      const { file, onProgress, ...route } = rest;
      return guard(
        client.upload(name, route as unknown as RouteInput<typeof name>, file, {
          signal,
          size: file.size,
          onProgress: (sent, total) => onProgress?.(sent, total ?? file.size),
        }),
      ) as Promise<CallOutput<typeof name>>;
    },
    download(name, input) {
      const { signal, rest } = split(input);
      return guard(client.download(name, rest as unknown as RouteInput<typeof name>, { signal }));
    },
  };
}

/** A message for an error, whatever threw it. */
export function errorMessage(err: unknown): string {
  if (err instanceof ShoalError) return err.message;
  if (err instanceof Error) return err.message;
  return String(err);
}

/** The error code of an error, or undefined. */
export function errorCode(err: unknown): ErrorCode | undefined {
  return err instanceof ShoalError ? err.code : undefined;
}
