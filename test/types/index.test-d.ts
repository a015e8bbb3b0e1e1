import { expectType, expectError, expectAssignable } from 'tsd';
import clusterStore = require('../..');

const io = require('socket.io');
const ClusterStore = clusterStore(io);

expectType<boolean>(clusterStore.setup({ maxFrameSize: 1 << 20, queueLimit: 1 << 24 }));
expectType<boolean>(ClusterStore.setup());
expectAssignable<clusterStore.Stats | null>(clusterStore.stats());
expectType<number>(clusterStore.handoff.stats().handedOff);
expectType<number>(clusterStore.handoff.stats().placed);
clusterStore.handoff({ engine: { generateId: () => 'id', clients: {} }, httpServer: {} }, { path: '/socket.io/', balance: false });

const store = new ClusterStore({ attachTimeout: 1000 });
expectType<string>(store.nodeId);
store.publish('dispatch', '', { type: 'event' }, false, []);
store.subscribe('dispatch', (room: string) => {}, () => {});
store.unsubscribe('dispatch', () => {});
store.on('error', (err) => expectType<Error>(err));
store.stats((err, stats) => {
  expectType<Error | null>(err);
  expectType<number>(stats.messagesDelivered);
});

const client = store.client('abc');
client.set('nickname', { first: 'Ada' }, (err) => expectType<Error | null>(err));
client.get('nickname', (err, value) => {});
client.has('nickname', (err, has) => expectType<boolean>(has));
client.del('nickname');
client.destroy(15);
store.destroyClient('abc', 15);
store.destroy();

expectError(store.client(42));
expectError(clusterStore.setup({ maxFrameSize: 'big' }));
expectType<boolean>(clusterStore.setup({ sharedMemory: false }));
expectError(clusterStore.setup({ sharedMemory: 'no' }));
expectType<boolean>(clusterStore.setup({ retainMessages: 1000, retainBytes: 1 << 20, retainMs: 120000 }));
expectError(clusterStore.setup({ retainMs: 'long' }));
expectError(client.has('k'));
