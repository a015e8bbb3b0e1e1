// Type declarations for socket.io-cluster-store/adapter: the socket.io 4
// adapter, with @socket.io/cluster-adapter's names.
/// <reference types="node" />
import {
  ClusterAdapter,
  ClusterAdapterOptions,
  ClusterMessage,
  ClusterResponse,
  Offset,
  ServerId,
} from 'socket.io-adapter';

/** Options of createAdapter(). */
export interface AdapterOptions extends Partial<ClusterAdapterOptions> {
  /** How long a worker waits for the primary to hand it a channel, in ms. Default 5000. */
  attachTimeout?: number;
  /**
   * In a cluster worker, hand a request for another worker's session to
   * that worker (socket.io 4 without sticky sessions). Default true.
   * `{ balance: false }`: the hand-off, with each new session kept on the
   * worker its handshake reached (by default new sessions go to the least
   * loaded worker).
   */
  handoff?: boolean | { balance?: boolean };
  /** How long a worker may block on the broker when it must know an answer at once, in ms. Default 2000. */
  syncTimeout?: number;
}

/** Options of setupPrimary(): the broker's limits (as require('socket.io-cluster-store').setup()). */
export interface PrimaryOptions {
  /** Largest message (encoded) in bytes. Default 32 MiB. */
  maxFrameSize?: number;
  /** Output the broker queues for one worker before cutting it off. Default 64 MiB. */
  queueLimit?: number;
  /** Large messages (16 KiB to 1 MiB) through memory shared by the cluster. Default true. */
  sharedMemory?: boolean;
  /** Connection state recovery: recoverable packets kept at most, all namespaces. Default 100000. */
  retainMessages?: number;
  /** The same in bytes. Default 32 MiB. */
  retainBytes?: number;
  /** The same in age, ms: at least maxDisconnectionDuration. Default 300000. */
  retainMs?: number;
}

/** The adapter factory for socket.io's `adapter` option, in each worker. */
export declare function createAdapter(opts?: AdapterOptions): (nsp: any) => NodeClusterAdapter;

/** socket.io-adapter's ClusterAdapter, carried by the cluster's broker. */
export declare class NodeClusterAdapter extends ClusterAdapter {
  constructor(nsp: any, opts?: AdapterOptions);
  protected doPublish(message: ClusterMessage): Promise<Offset>;
  protected doPublishResponse(requesterUid: ServerId, response: ClusterResponse): Promise<void>;
}
export { NodeClusterAdapter as ClusterStoreAdapter };

/** In the primary: starts the broker and serves every worker a channel. */
export declare function setupPrimary(options?: PrimaryOptions): void;

/** Emits to the clients of every worker from a process that runs no socket.io server. */
export interface Emitter {
  of(nsp: string): Emitter;
  to(room: string | string[]): Emitter;
  in(room: string | string[]): Emitter;
  except(room: string | string[]): Emitter;
  compress(compress: boolean): Emitter;
  readonly volatile: Emitter;
  /** Throws for an ack (nobody would answer it) and for arguments that cannot be sent. */
  emit(ev: string, ...args: any[]): true;
  socketsJoin(rooms: string | string[]): void;
  socketsLeave(rooms: string | string[]): void;
  disconnectSockets(close?: boolean): void;
  serverSideEmit(ev: string, ...args: any[]): void;
  /** Leaves the broker. */
  close(): void;
}

/** An emitter on the main namespace ('/'); of() gives the others. */
export declare function createEmitter(options?: { attachTimeout?: number }): Emitter;
