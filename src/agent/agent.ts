/**
 * The receiver daemon. One WebSocket to the coordinator (its presence), with heartbeats and reconnection
 * (exponential backoff with full jitter). It takes delivery offers and runs them through the swarm
 * downloader (every holder of the offer, several streams each) into a PartialFile under
 * `downloadDir/<group>/<safe name>` (1:1 sends under `downloadDir/_direct/<sender>/`), reports progress
 * (at most every 500 ms) and completion, and serves what it holds — finished files and verified pieces of
 * files in progress — from its own HTTPS piece server (self-signed certificate in stateDir, fingerprint in
 * its hello). Local state (its id, deliveries, held files) lives in SQLite under stateDir, so a kill -9 and
 * a restart resume from the partial file's bitfield, and a completion made while the coordinator was away is
 * reported when it is back.
 */
import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import selfsigned from 'selfsigned';
import type WebSocket from 'ws';
import { createApiClient } from '../client/api-client.ts';
import { createNodeFetch, createNodeWebSocket, type NodeFetch } from '../client/node-transport.ts';
import type { Logger } from '../logger.ts';
import { ErrorCode, ShoalError, isShoalError } from '../protocol/errors.ts';
import {
  decodeServerMessage,
  encodeMessage,
  type ClientMessage,
  type OfferMsg,
  type ServerMessage,
} from '../protocol/events.ts';

type MulticastStartMsg = Extract<ServerMessage, { type: 'multicast-start' }>;
import { Limits } from '../protocol/limits.ts';
import { openPartialFile, type PartialFile } from '../transfer/pieces/partial-file.ts';
import { safeBaseName } from '../transfer/pieces/safe-base-name.ts';
import { createMulticastReceiver, type MulticastReceiver } from '../transfer/multicast/receiver.ts';
import { downloadFile, type Holder as SwarmHolder } from '../transfer/swarm/downloader.ts';
import { createPieceServer, type PieceServer } from '../transfer/swarm/piece-server.ts';
import { createPieceRegistry, type PieceRegistry } from '../transfer/swarm/piece-source.ts';
import { openAgentState, type AgentState } from './agent-state.ts';
import { packageVersion } from '../package-version.ts';

export interface AgentOptions {
  /** Coordinator origin, `https://host:port`. */
  serverUrl: string;
  /** SHA-256 fingerprint of the coordinator's certificate (pinned); undefined = system CAs. */
  fingerprint?: string;
  /** Bearer token of the user this agent receives for. */
  token: string;
  /** Where received files go. */
  downloadDir: string;
  /** Name shown in `shoal receivers` (default: the host name). */
  name?: string;
  /** `host:port` of the piece server (default 0.0.0.0:0). */
  listen?: string;
  /** Directory of the agent's own state (SQLite, TLS certificate). */
  stateDir: string;
  /** Parallel connections per holder (default 4). */
  streams?: number;
  /** Longest reconnect delay, ms (default 30 s). */
  maxBackoffMs?: number;
  /** Agent version reported in hello. */
  version?: string;
  /** Local interface address to join multicast groups on (default: the kernel's choice). */
  multicastInterface?: string;
  /** A multicast transfer that brings no datagram within this many ms is left for the swarm (default 5000). */
  multicastNoDataMs?: number;
  /** TEST KNOB ONLY: fraction of multicast datagrams to drop on arrival (loopback loses nothing by itself). */
  multicastTestLossRate?: number;
}

export interface AgentStatus {
  agentId: string;
  connected: boolean;
  /** Base URL of the piece server, once it runs. */
  pieceServerUrl: string | null;
  /** Deliveries being received now. */
  active: string[];
}

export interface Agent {
  start(): Promise<void>;
  stop(): Promise<void>;
  status(): AgentStatus;
  readonly agentId: string;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Splits `host:port` (IPv6 in brackets); throws BAD_REQUEST on anything else. */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(listen.trim());
  if (!m) throw new ShoalError(ErrorCode.BAD_REQUEST, `--listen must be HOST:PORT, not "${listen}"`);
  const port = Number(m[3]);
  if (port > 65535) throw new ShoalError(ErrorCode.BAD_REQUEST, `bad port in "${listen}"`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

/** The piece server's certificate: `<stateDir>/tls/{cert,key}.pem`, created on first start. */
async function loadAgentTls(stateDir: string): Promise<{ cert: string; key: string; fingerprint: string }> {
  const dir = join(stateDir, 'tls');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const certPath = join(dir, 'cert.pem');
  const keyPath = join(dir, 'key.pem');
  let cert: string;
  let key: string;
  if (existsSync(certPath) && existsSync(keyPath)) {
    [cert, key] = await Promise.all([readFile(certPath, 'utf8'), readFile(keyPath, 'utf8')]);
  } else {
    const made = await new Promise<{ cert: string; private: string }>((resolve, reject) =>
      selfsigned.generate(
        [{ name: 'commonName', value: `shoal-agent-${hostname()}` }],
        { days: 3650, keySize: 2048, algorithm: 'sha256' },
        (err, r) => (err ? reject(err) : resolve(r)),
      ),
    );
    cert = made.cert;
    key = made.private;
    // Key first, each written then renamed, so a kill never leaves a certificate without its key.
    await writeFile(keyPath + '.tmp', key, { mode: 0o600 });
    await rename(keyPath + '.tmp', keyPath);
    await writeFile(certPath + '.tmp', cert);
    await rename(certPath + '.tmp', certPath);
  }
  const fingerprint = new X509Certificate(cert).fingerprint256;
  return { cert, key, fingerprint };
}

interface Running {
  controller: AbortController;
  done: Promise<void>;
  partial?: PartialFile;
}

/** Creates an agent; nothing happens until start(). */
export function createAgent(deps: { logger: Logger }, options: AgentOptions): Agent {
  const log = deps.logger.child('agent');
  const serverUrl = options.serverUrl.replace(/\/+$/, '');
  const wsUrl = serverUrl.replace(/^http/, 'ws') + '/api/v1/events';
  const listen = parseListen(options.listen ?? '0.0.0.0:0');
  const version = options.version ?? packageVersion();
  const name = options.name ?? hostname();
  const maxBackoffMs = options.maxBackoffMs ?? 30_000;

  let state: AgentState | undefined;
  let tls: { cert: string; key: string; fingerprint: string } | undefined;
  let registry: PieceRegistry | undefined;
  let pieceServer: PieceServer | undefined;
  let ws: WebSocket | undefined;
  let connected = false;
  let stopped = true;
  let attempt = 0;
  let reconnectTimer: NodeJS.Timeout | undefined;
  let heartbeatTimer: NodeJS.Timeout | undefined;
  const running = new Map<string, Running>();
  /** Multicast transfers announced by the coordinator, by transfer id (a few at most). */
  const multicastStarts = new Map<string, MulticastStartMsg>();
  /** Receivers joined now, by transfer id: they answer the sender's status requests. */
  const receivers = new Map<string, MulticastReceiver>();
  /** Transfers announced whose receiver is not running yet. */
  const joining = new Set<string>();
  /** Per delivery: bytes verified from multicast so far, and the receiver's counters (for the report). */
  const multicastBytes = new Map<string, number>();
  const multicastStats = new Map<string, Record<string, unknown>>();
  let fetcher: NodeFetch | undefined;
  const api = () => {
    fetcher ??= createNodeFetch({ fingerprint: options.fingerprint });
    return createApiClient({ baseUrl: serverUrl, token: options.token, fetch: fetcher });
  };

  const send = (msg: ClientMessage): boolean => {
    if (!ws || !connected || ws.readyState !== ws.OPEN) return false;
    try {
      ws.send(encodeMessage(msg));
      return true;
    } catch {
      return false;
    }
  };

  async function ensurePieceServer(publicKey: string): Promise<void> {
    if (pieceServer) {
      if (state!.getMeta('publicKey') !== publicKey)
        log.warn('the coordinator ticket key changed; restart the agent to serve pieces again');
      return;
    }
    state!.setMeta('publicKey', publicKey);
    const server = createPieceServer(
      { logger: log, source: registry!, publicKey },
      { host: listen.host, port: listen.port, tls: { cert: tls!.cert, key: tls!.key } },
    );
    await server.start();
    pieceServer = server;
  }

  /** The URL peers should use: the wildcard replaced by the address this host uses to reach the coordinator. */
  function advertisedUrl(): string | null {
    if (!pieceServer) return null;
    const wildcard = listen.host === '0.0.0.0' || listen.host === '::';
    if (!wildcard) return pieceServer.url;
    const local = (ws as unknown as { _socket?: { localAddress?: string } } | undefined)?._socket
      ?.localAddress;
    const host = local ? local.replace(/^::ffff:/, '') : '127.0.0.1';
    return `https://${host.includes(':') ? `[${host}]` : host}:${pieceServer.port}`;
  }

  function destinationDir(offer: OfferMsg): string {
    if (offer.group === null) return join(options.downloadDir, '_direct', safeBaseName(offer.from));
    return join(options.downloadDir, safeBaseName(offer.group));
  }

  function reportCompleted(deliveryId: string): void {
    const d = state?.getDelivery(deliveryId);
    if (!d || d.state !== 'done') return;
    const detail = d.detail ?? {};
    if (
      send({
        type: 'completed',
        deliveryId,
        sha256: d.offer.manifest.sha256,
        transport: String(detail.transport ?? 'swarm'),
        detail,
      })
    ) {
      state!.markReported(deliveryId);
    }
  }

  async function receive(offer: OfferMsg, signal: AbortSignal, slot: Running): Promise<void> {
    const { deliveryId, manifest } = offer;
    const held = state!.getHeld(manifest.sha256);
    let partial: PartialFile | undefined;
    try {
      const destDir = destinationDir(offer);
      partial = await openPartialFile({ manifest, destDir, name: offer.file.name, logger: log });
      slot.partial = partial;
      if (!held) registry!.addPartial(partial);
      const toSwarm = (list: OfferMsg['holders']): SwarmHolder[] =>
        list
          .filter((h) => h.id !== state!.agentId)
          .map((h) =>
            h.url === null
              ? { id: h.id, url: serverUrl, fingerprint: options.fingerprint ?? null }
              : { id: h.id, url: h.url, fingerprint: h.fingerprint },
          );
      let transport = 'swarm';
      const mc = offer.transferId ? multicastStarts.get(offer.transferId) : undefined;
      if (offer.transferId && (!mc || partial.complete || mc.manifest.sha256 !== manifest.sha256))
        joining.delete(offer.transferId);
      if (mc && !partial.complete && mc.manifest.sha256 === manifest.sha256) {
        const whole = await receiveMulticast(mc, partial, deliveryId, signal);
        if (signal.aborted) throw new ShoalError(ErrorCode.ABORTED, 'delivery aborted');
        if (whole) transport = 'multicast';
      }
      // Bytes an earlier run of this delivery took by multicast (a plain offer follows an incomplete one).
      const viaMulticast = multicastBytes.get(deliveryId) ?? 0;
      if (transport === 'swarm' && viaMulticast > 0) transport = 'repair';
      let holders = toSwarm(offer.holders);
      let ticket = offer.ticket;
      const started = Date.now();
      let result: Awaited<ReturnType<typeof downloadFile>> = {
        piecesFetched: 0,
        piecesResumed: partial.pieceCount,
        bytesReceived: 0,
        bytesPerHolder: {},
        badHolders: [],
        droppedHolders: [],
      };
      // Tickets live minutes; a long download asks for a fresh one (and fresh holders) and carries on.
      for (let round = 0; !partial.complete; round++) {
        try {
          result = await downloadFile({
            manifest,
            holders,
            ticket,
            partial,
            streams: options.streams,
            signal,
            logger: log,
            progressIntervalMs: 500,
            onProgress: (p) =>
              send({
                type: 'progress',
                deliveryId,
                bytes: p.bytes,
                rate: p.rate,
                transport: transport === 'swarm' ? 'swarm' : 'repair',
              }),
          });
          break;
        } catch (err) {
          if (
            signal.aborted ||
            round >= 100 ||
            !isShoalError(err, ErrorCode.TICKET_EXPIRED) ||
            !offer.file.id
          )
            throw err;
          const fresh = await api().call('fileHolders', { params: { fileId: offer.file.id } }, { signal });
          ticket = fresh.ticket;
          holders = toSwarm(fresh.holders);
          log.info('ticket renewed', { deliveryId });
        }
      }
      const finalPath = await partial.finalize();
      partial = undefined;
      slot.partial = undefined;
      registry!.addFile(manifest, finalPath);
      state!.putHeld({ sha256: manifest.sha256, path: finalPath, manifest });
      const detail = {
        transport,
        path: finalPath,
        ms: Date.now() - started,
        piecesFetched: result.piecesFetched,
        piecesResumed: result.piecesResumed,
        bytesPerHolder: result.bytesPerHolder,
        badHolders: result.badHolders,
        multicastBytes: viaMulticast,
        swarmBytes: result.bytesReceived,
        ...(multicastStats.has(deliveryId) ? { multicast: multicastStats.get(deliveryId) } : {}),
      };
      multicastBytes.delete(deliveryId);
      multicastStats.delete(deliveryId);
      state!.putDelivery({
        deliveryId,
        offer,
        state: 'done',
        finalPath,
        detail,
        reported: false,
        updatedAt: Date.now(),
      });
      if (result.badHolders.length)
        log.warn('holders served bad pieces', { deliveryId, badHolders: result.badHolders });
      log.info('received', {
        deliveryId,
        path: finalPath,
        pieces: result.piecesFetched,
        resumed: result.piecesResumed,
      });
      reportCompleted(deliveryId);
    } catch (err) {
      await partial?.close().catch(() => undefined);
      if (signal.aborted) return;
      const reason = err instanceof Error ? err.message : String(err);
      const badHolders = (
        err as { details?: { badHolders?: Array<{ id: string }> } }
      ).details?.badHolders?.map((b) => b.id);
      log.warn('delivery failed', { deliveryId, err });
      const permanent = isShoalError(err, ErrorCode.INVALID_NAME);
      state!.putDelivery({
        deliveryId,
        offer,
        state: 'failed',
        finalPath: null,
        detail: null,
        reported: false,
        updatedAt: Date.now(),
      });
      send({ type: 'failed', deliveryId, reason, badHolders, permanent });
    }
  }

  /**
   * Receives a multicast transfer into `partial` until it is complete (true), or until no datagram came
   * within multicastNoDataMs, the receiver could not join, or `signal` fired (false). Meanwhile it answers the
   * sender's status requests and reports progress.
   */
  async function receiveMulticast(
    mc: MulticastStartMsg,
    partial: PartialFile,
    deliveryId: string,
    signal: AbortSignal,
  ): Promise<boolean> {
    let receiver: MulticastReceiver;
    try {
      receiver = createMulticastReceiver(
        { logger: log, partial },
        {
          address: mc.address,
          port: mc.port,
          interface: options.multicastInterface,
          key: Buffer.from(mc.key, 'base64'),
          transferId: mc.transferId,
          manifest: mc.manifest,
          chunkSize: mc.chunkSize,
          receiverId: state!.agentId,
          simulateLossRate: options.multicastTestLossRate,
        },
      );
      await receiver.start();
    } catch (err) {
      joining.delete(mc.transferId);
      log.warn('cannot join the multicast group; using the swarm', { group: mc.address, port: mc.port, err });
      void onMulticastStatusRequest(mc.transferId); // "nothing to send for me": the sender need not wait
      return false;
    }
    receivers.set(mc.transferId, receiver);
    joining.delete(mc.transferId);
    const before = partial.bytesVerified;
    // Unasked, a status tells the sender this receiver has joined and it may start.
    void onMulticastStatusRequest(mc.transferId);
    const inner = new AbortController();
    const onAbort = () => inner.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    let lastBytes = partial.bytesVerified;
    let lastAt = Date.now();
    const progress = setInterval(() => {
      const now = Date.now();
      const rate = ((partial.bytesVerified - lastBytes) * 1000) / Math.max(1, now - lastAt);
      lastBytes = partial.bytesVerified;
      lastAt = now;
      send({
        type: 'progress',
        deliveryId,
        bytes: partial.bytesVerified,
        rate: Math.round(rate),
        transport: 'multicast',
      });
    }, 500);
    const noData = setTimeout(() => {
      if (receiver.stats.firstDataAt === null) {
        log.warn('no multicast datagram arrived; using the swarm', { transferId: mc.transferId });
        inner.abort();
      }
    }, options.multicastNoDataMs ?? 5000);
    try {
      await receiver.whenComplete(inner.signal);
      return true;
    } catch {
      return false;
    } finally {
      clearInterval(progress);
      clearTimeout(noData);
      signal.removeEventListener('abort', onAbort);
      receivers.delete(mc.transferId);
      await receiver.stop().catch(() => undefined);
      multicastBytes.set(
        deliveryId,
        (multicastBytes.get(deliveryId) ?? 0) + Math.max(0, partial.bytesVerified - before),
      );
      const st = receiver.stats;
      multicastStats.set(deliveryId, {
        datagrams: st.datagrams,
        duplicates: st.duplicates,
        rejected: st.rejected,
        chunks: st.chunks,
        pieceFailures: st.pieceFailures,
        recvBufferBytes: st.recvBufferBytes,
      });
    }
  }

  async function onMulticastStatusRequest(transferId: string, pass?: number): Promise<void> {
    const receiver = receivers.get(transferId);
    const mc = multicastStarts.get(transferId);
    if (!receiver && mc && joining.has(transferId)) {
      // Announced but not joined yet: everything is still missing.
      const chunks = Math.ceil(mc.manifest.size / mc.chunkSize);
      send({
        type: 'multicast-status',
        transferId,
        missing: chunks > 0 ? [[0, chunks]] : [],
        received: 0,
        lossRate: 1,
      });
      return;
    }
    if (!receiver) {
      // Not (or no longer) receiving this transfer by multicast: nothing to resend for us.
      send({ type: 'multicast-status', transferId, missing: [], received: 0, lossRate: 0 });
      return;
    }
    // Datagrams of the pass may still be arriving until its end marker.
    if (pass !== undefined) await receiver.waitPassEnd(pass, 1000).catch(() => false);
    const st = receiver.status();
    send({
      type: 'multicast-status',
      transferId,
      missing: st.missing,
      partial: st.partial,
      received: st.received,
      lossRate: Math.min(1, Math.max(0, st.lossRate)),
      overloadRate: Math.min(1, Math.max(0, st.overloadRate ?? 0)),
    });
  }

  function onOffer(offer: OfferMsg): void {
    const known = state!.getDelivery(offer.deliveryId);
    if (known?.state === 'done' && known.finalPath && existsSync(known.finalPath)) {
      if (offer.transferId) joining.delete(offer.transferId);
      state!.putDelivery({ ...known, reported: false });
      reportCompleted(offer.deliveryId);
      return;
    }
    // A new offer for a running delivery carries fresh holders and a fresh ticket (the coordinator restarted,
    // or this agent reconnected): the old run stops and the new one resumes from the same partial file.
    const previous = running.get(offer.deliveryId);
    previous?.controller.abort();
    state!.putDelivery({
      deliveryId: offer.deliveryId,
      offer,
      state: 'receiving',
      finalPath: null,
      detail: null,
      reported: false,
      updatedAt: Date.now(),
    });
    const controller = new AbortController();
    const slot: Running = { controller, done: Promise.resolve() };
    running.set(offer.deliveryId, slot);
    slot.done = (async () => {
      // One PartialFile per file per process: wait until the previous run closed it.
      await previous?.done.catch(() => undefined);
      if (!controller.signal.aborted) await receive(offer, controller.signal, slot);
    })().finally(() => {
      if (offer.transferId) joining.delete(offer.transferId);
      if (running.get(offer.deliveryId) === slot) running.delete(offer.deliveryId);
    });
  }

  async function onCancel(deliveryId: string, reason: string): Promise<void> {
    const slot = running.get(deliveryId);
    log.info('delivery cancelled', { deliveryId, reason });
    if (slot) {
      slot.controller.abort();
      await slot.done.catch(() => undefined);
    }
    const d = state?.getDelivery(deliveryId);
    if (d && d.state !== 'done') {
      // Nothing half-received stays behind for a delivery that was withdrawn.
      try {
        const partial = await openPartialFile({
          manifest: d.offer.manifest,
          destDir: destinationDir(d.offer),
          name: d.offer.file.name,
          logger: log,
        });
        registry?.remove(d.offer.manifest.sha256);
        await partial.abort();
      } catch {
        // Bad name or already gone: nothing was written.
      }
      state?.deleteDelivery(deliveryId);
    }
  }

  function onMessage(msg: ServerMessage): void {
    switch (msg.type) {
      case 'welcome':
        void (async () => {
          try {
            await ensurePieceServer(msg.publicKey);
          } catch (err) {
            log.error('piece server failed to start', { err });
          }
          attempt = 0;
          const holdings = state!
            .held()
            .filter((h) => existsSync(h.path))
            .map((h) => h.sha256);
          send({
            type: 'hello',
            agentId: state!.agentId,
            name,
            version,
            listenUrl: advertisedUrl(),
            fingerprint: pieceServer ? tls!.fingerprint : null,
            holdings,
          });
          if (heartbeatTimer) clearInterval(heartbeatTimer);
          heartbeatTimer = setInterval(() => send({ type: 'heartbeat' }), msg.heartbeatMs);
          for (const d of state!.unreported()) reportCompleted(d.deliveryId);
        })();
        return;
      case 'offer':
        onOffer(msg);
        return;
      case 'probe':
        send({ type: 'pong', probeId: msg.probeId });
        return;
      case 'cancel':
        void onCancel(msg.deliveryId, msg.reason);
        return;
      case 'error':
        log.warn('coordinator reported an error', { code: msg.code, message: msg.message });
        return;
      case 'multicast-start':
        multicastStarts.set(msg.transferId, msg);
        joining.add(msg.transferId);
        // Only the latest few matter: an offer names its transfer right after the start.
        for (const id of multicastStarts.keys()) if (multicastStarts.size > 16) multicastStarts.delete(id);
        return;
      case 'multicast-status-request':
        void onMulticastStatusRequest(msg.transferId, msg.pass);
        return;
      case 'event':
        return;
    }
  }

  function scheduleReconnect(): void {
    if (stopped || reconnectTimer) return;
    const ceiling = Math.min(maxBackoffMs, 500 * 2 ** Math.min(attempt, 16));
    attempt++;
    // Full jitter: agents that lost the coordinator together do not all come back in the same millisecond.
    const delay = Math.round(Math.random() * ceiling) + 100;
    log.debug('reconnecting', { inMs: delay });
    reconnectTimer = setTimeout(() => {
      reconnectTimer = undefined;
      connect();
    }, delay);
    reconnectTimer.unref();
  }

  function connect(): void {
    if (stopped) return;
    let socket: WebSocket;
    try {
      socket = createNodeWebSocket(wsUrl, {
        fingerprint: options.fingerprint,
        token: options.token,
        maxPayload: Limits.wsMessageBytes + 1024,
      });
    } catch (err) {
      log.warn('cannot open the events socket', { err });
      scheduleReconnect();
      return;
    }
    ws = socket;
    socket.on('open', () => {
      connected = true;
      log.info('connected', { server: serverUrl });
    });
    socket.on('message', (data, isBinary) => {
      if (isBinary) return;
      const decoded = decodeServerMessage(
        Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer),
      );
      if (!decoded.ok) {
        log.warn('ignoring a bad message from the coordinator', { reason: decoded.reason });
        return;
      }
      onMessage(decoded.msg);
    });
    socket.on('unexpected-response', (_req, res) => {
      log.warn('the coordinator refused the events socket', { status: res.statusCode });
      if (res.statusCode === 401) attempt = Math.max(attempt, 6); // a revoked token: do not hammer
      socket.terminate();
    });
    socket.on('error', (err) => log.debug('events socket error', { err }));
    socket.on('close', (code, reason) => {
      if (ws === socket) {
        ws = undefined;
        connected = false;
      }
      if (heartbeatTimer) clearInterval(heartbeatTimer);
      heartbeatTimer = undefined;
      if (!stopped) log.info('disconnected', { code, reason: reason.toString() });
      scheduleReconnect();
    });
  }

  const agent: Agent = {
    get agentId() {
      if (!state) throw new ShoalError(ErrorCode.INTERNAL, 'agent not started');
      return state.agentId;
    },
    async start() {
      if (!stopped) return;
      await mkdir(options.downloadDir, { recursive: true });
      state = openAgentState(options.stateDir);
      tls = await loadAgentTls(options.stateDir);
      registry = createPieceRegistry();
      for (const h of state.held()) {
        if (existsSync(h.path)) registry.addFile(h.manifest, h.path);
        else state.deleteHeld(h.sha256);
      }
      const cachedKey = state.getMeta('publicKey');
      if (cachedKey) await ensurePieceServer(cachedKey);
      stopped = false;
      attempt = 0;
      log.info('agent starting', { agentId: state.agentId, name, server: serverUrl });
      connect();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      if (reconnectTimer) clearTimeout(reconnectTimer);
      reconnectTimer = undefined;
      if (heartbeatTimer) clearInterval(heartbeatTimer);
      heartbeatTimer = undefined;
      for (const slot of running.values()) slot.controller.abort();
      await Promise.allSettled([...running.values()].map((s) => s.done));
      if (ws) {
        const socket = ws;
        await new Promise<void>((resolve) => {
          const t = setTimeout(() => {
            socket.terminate();
            resolve();
          }, 2000);
          socket.once('close', () => {
            clearTimeout(t);
            resolve();
          });
          socket.close(1000, 'agent stopping');
        });
      }
      ws = undefined;
      connected = false;
      await pieceServer?.stop();
      pieceServer = undefined;
      await fetcher?.close();
      fetcher = undefined;
      state?.close();
      state = undefined;
    },
    status() {
      return {
        agentId: state?.agentId ?? '',
        connected,
        pieceServerUrl: pieceServer?.url ?? null,
        active: [...running.keys()],
      };
    },
    [Symbol.asyncDispose]() {
      return agent.stop();
    },
  };
  return agent;
}
