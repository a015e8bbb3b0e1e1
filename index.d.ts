// Type declarations for socket.io-cluster-store.
/// <reference types="node" />
import { EventEmitter } from 'events';

/** Returns the ClusterStore class for the given socket.io 0.9 module. */
declare function clusterStore(io: clusterStore.SocketIoModule): clusterStore.ClusterStoreConstructor;

declare namespace clusterStore {
  /** Starts the broker in the master (requiring the module there does too). */
  function setup(options?: Options): boolean;
  /** The broker's counters, in the process that runs it (the master); null elsewhere. */
  function stats(): Stats | null;

  /**
   * socket.io 4 without sticky sessions: in each worker, after the Server
   * is attached to its HTTP(S) server. A request for a session another
   * worker owns is handed to that worker (see the README).
   */
  function handoff(io: HandoffServer, options?: HandoffOptions): object;
  namespace handoff {
    /** This process's counters. */
    function stats(): HandoffStats;
  }

  /** A socket.io 4 Server (or an engine.io Server, with `server` given). */
  interface HandoffServer {
    engine?: { generateId(req: any): string | PromiseLike<string>; clients: object };
    httpServer?: any;
  }

  interface HandoffOptions {
    /** The HTTP(S) server, when the Server is not attached to one. */
    server?: any;
    /** engine.io's path ('/socket.io/' unless the Server says otherwise). */
    path?: string;
    /**
     * false: each new session stays on the worker its handshake reached.
     * Default true: a handshake reaching a worker that holds more sessions
     * than another is handed to the least loaded one (plain HTTP servers).
     */
    balance?: boolean;
  }

  interface HandoffStats {
    /** Connections this process handed to another worker (placed ones included). */
    handedOff: number;
    /** Handshakes this process handed to a less loaded worker. */
    placed: number;
    /** Other workers whose session counts this process has heard in the last 3.5 s. */
    peers: number;
    /** Connections handed to this process. */
    adopted: number;
    /** Requests served here because their session's worker was gone. */
    servedHere: number;
    /** HTTPS connections relayed to their session's worker. */
    relayed: number;
  }

  /** Options of setup() in the master and of `new ClusterStore()`. */
  interface Options {
    /** Largest frame (one message or value, plus its names) in bytes. Default 32 MiB. */
    maxFrameSize?: number;
    /** Output the broker queues for one worker before cutting it off. Default 64 MiB. */
    queueLimit?: number;
    /**
     * How long a worker waits for the master to hand it a channel, in ms. Default 5000.
     * Past it, calls fail at once with an error saying to require the module in the
     * master, and the worker keeps asking (backoff up to 5 s); it emits 'reconnect'
     * once attached.
     */
    attachTimeout?: number;
    /** How long a worker waits on the broker when it must know the answer at once, in ms. Default 2000. */
    syncTimeout?: number;
    /** Large messages (16 KiB to 1 MiB) travel through memory shared by the cluster (master only). Default true. */
    sharedMemory?: boolean;
    /**
     * Connection state recovery (socket.io 4): the most recoverable packets the broker
     * keeps, all namespaces together (master only). Default 100000.
     */
    retainMessages?: number;
    /** The same in bytes (master only). Default 32 MiB. */
    retainBytes?: number;
    /**
     * The same in age, ms (master only): keep it at least socket.io's
     * maxDisconnectionDuration. Default 300000.
     */
    retainMs?: number;
    /**
     * Master only: joins this machine's broker to the others' through Redis,
     * `'redis://[[user]:password@]host[:port][/db]'` (README, "Past one machine").
     * `rediss://` (TLS) is refused: not supported yet. Default none.
     */
    redis?: string | null;
    /** Starts every Redis key and channel the uplink uses. Default 'sio-cluster'. */
    redisPrefix?: string;
    /** How often a machine tells the others it is there, in ms; one silent for three times that is taken for dead. Default 10000. */
    redisPresenceMs?: number;
    /** Other options socket.io passes to its stores are kept as they are. */
    [option: string]: unknown;
  }

  /** Counters kept by the broker. */
  interface Stats {
    workers: number;
    workersCutOff: number;
    framesIn: number;
    bytesIn: number;
    messagesPublished: number;
    messagesDelivered: number;
    bytesDelivered: number;
    /** Topics (the names given to subscribe) in the subscription table. */
    channels: number;
    subscriptions: number;
    clients: number;
    keys: number;
    dataBytes: number;
    queuedBytes: number;
    maxQueuedBytes: number;
    queueLimit: number;
    maxFrameSize: number;
    /** Deliveries whose payload a worker read from the shared memory pool. */
    sharedDeliveries: number;
    /** Recoverable packets kept for connection state recovery now, and their memory. */
    retainedMessages: number;
    retainedBytes: number;
    /** Recoverable packets dropped for retainMessages, retainBytes or retainMs. */
    retainedDropped: number;
    /** Recoveries refused because packets a client missed were no longer kept. */
    retainedReadsRefused: number;
    /** Sessions of connected socket.io 4 clients kept should their worker die. */
    boundClients: number;
    /** Connections the broker passed from one worker to another (handoff()). */
    handoffs: number;
    /** ... and closed instead: the receiving worker was gone or lagged. */
    handoffsRefused: number;
    /** Times a publisher waited because a reader it shares with others fell behind on its messages. */
    publishersPaced: number;
    /** 0: no uplink, 1: connecting, 2: up, 3: down (trying again). */
    uplinkState: number;
    /** The uplink's last fault: 0 none, 1 unreachable, 2 authentication, 3 not Redis, 4 refused, 5 lost, 6 stalled. */
    uplinkFault: number;
    /** Times the uplink came up. */
    uplinkConnects: number;
    /** Messages sent to other machines, and received from them. */
    uplinkPublished: number;
    uplinkReceived: number;
    /** Messages another machine wanted that did not go: Redis away or not reading. */
    uplinkDropped: number;
    /** Per-client data requests whose connection to Redis went before the answer. */
    uplinkFailedRequests: number;
    /** Output waiting for Redis. */
    uplinkQueuedBytes: number;
    /** Topics other machines want. */
    uplinkRemoteTopics: number;
    /** Only in the master's `stats()` with an uplink: its last fault as text ('' when none). */
    uplinkError?: string;
    /**
     * Only in `store.stats()`: messages and values this process received
     * but could not decode, and dropped (each also an `'error'`).
     */
    decodeErrors?: number;
  }

  type Callback<T> = (err: Error | null, value: T) => void;

  /** Per-client data (socket.set/get/has/del). */
  interface Client {
    readonly store: ClusterStore;
    readonly id: string;
    get(key: string, fn: Callback<any>): this;
    set(key: string, value: any, fn?: (err: Error | null) => void): this;
    has(key: string, fn: Callback<boolean>): this;
    del(key: string, fn?: (err: Error | null) => void): this;
    /** Clears the data now, or after `expiration` seconds. */
    destroy(expiration?: number): this;
  }

  interface ClusterStore extends EventEmitter {
    readonly options: Options;
    readonly nodeId: string;
    publish(name: string, ...args: any[]): this;
    subscribe(name: string, consumer?: (...args: any[]) => void, fn?: (err?: Error) => void): this;
    unsubscribe(name: string, fn?: (err?: Error) => void): this;
    client(id: string): Client;
    destroyClient(id: string, expiration?: number): this;
    destroy(clientExpiration?: number): this;
    stats(fn: Callback<Stats>): void;

    on(event: 'publish', listener: (name: string, ...args: any[]) => void): this;
    on(event: 'subscribe', listener: (name: string, consumer?: Function, fn?: Function) => void): this;
    on(event: 'unsubscribe', listener: (name: string, fn?: Function) => void): this;
    on(event: 'error', listener: (err: Error) => void): this;
    on(event: 'reconnect', listener: () => void): this;
    on(event: string | symbol, listener: (...args: any[]) => void): this;
  }

  interface ClusterStoreConstructor {
    new (options?: Options): ClusterStore;
    (options?: Options): ClusterStore;
    readonly prototype: ClusterStore;
    Client: new (store: ClusterStore, id: string) => Client;
    setup(options?: Options): boolean;
  }

  /** The socket.io module (0.9.x); only its Store classes are used. */
  interface SocketIoModule {
    Store: Function & { Client: Function };
    [key: string]: any;
  }
}

export = clusterStore;
