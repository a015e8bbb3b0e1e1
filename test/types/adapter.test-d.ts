import { expectType, expectError, expectAssignable } from 'tsd';
import { createAdapter, setupPrimary, createEmitter, NodeClusterAdapter, Emitter } from '../../adapter';
import { ClusterAdapter } from 'socket.io-adapter';

// What @socket.io/cluster-adapter takes, and the store's own timeouts.
const factory = createAdapter();
expectType<(nsp: any) => NodeClusterAdapter>(factory);
createAdapter({ heartbeatInterval: 1000, heartbeatTimeout: 5000, attachTimeout: 2000 });
expectError(createAdapter({ attachTimeout: 'soon' }));
createAdapter({ handoff: false });
createAdapter({ handoff: { balance: false } });
expectError(createAdapter({ handoff: { balance: 'no' } }));
expectAssignable<ClusterAdapter>(factory({}));

expectType<void>(setupPrimary());
setupPrimary({ maxFrameSize: 1 << 20, sharedMemory: false });
setupPrimary({ retainMessages: 1000, retainBytes: 1 << 24, retainMs: 120000 });
expectError(setupPrimary({ retainMs: '2m' }));
expectError(setupPrimary({ maxFrameSize: '1M' }));

const emitter = createEmitter();
expectType<Emitter>(emitter.of('/chat').to('room').except(['a', 'b']));
expectType<true>(emitter.volatile.emit('news', 1, { a: 2 }));
emitter.socketsJoin('room');
emitter.disconnectSockets(true);
emitter.serverSideEmit('hello', 'world');
emitter.close();
