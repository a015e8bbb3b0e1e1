'use strict';
// The stores the stress fixture compares, set up the way each one's README
// says: what the master must load, and the store instance a worker hands
// socket.io.
//
//   cluster  socket.io-cluster-store (this package): the master requires it
//   strong   strong-cluster-socket.io-store@0.1.8: the master requires it and
//            calls it with socket.io (that starts strong-store-cluster and
//            strong-mq's native provider there)
//   redis    socket.io 0.9's own RedisStore against a local redis-server
//   memory   socket.io's default MemoryStore: nothing shared (the contrast)

var path = require('path');

var PKG_DIR = path.join(__dirname, '..', '..', '..');
var KINDS = ['cluster', 'strong', 'redis', 'memory'];

function masterSetup(cfg) {
  switch (cfg.store) {
    case 'cluster':
      require(PKG_DIR);
      return;
    case 'strong':
      require('strong-cluster-socket.io-store')(require('socket.io'));
      return;
    case 'redis':
    case 'memory':
      return;
    default:
      throw new Error('unknown store "' + cfg.store + '" (one of ' + KINDS.join(', ') + ')');
  }
}

// The store for socket.io's 'store' setting, or null for the default.
function workerStore(cfg, io) {
  switch (cfg.store) {
    case 'cluster': {
      var ClusterStore = require(PKG_DIR)(io);
      return new ClusterStore();
    }
    case 'strong': {
      var StrongStore = require('strong-cluster-socket.io-store')(io);
      return new StrongStore();
    }
    case 'redis': {
      var redis = require('redis');
      var conn = { host: '127.0.0.1', port: cfg.redisPort };
      return new io.RedisStore({
        redis: redis,
        redisPub: redis.createClient(conn.port, conn.host),
        redisSub: redis.createClient(conn.port, conn.host),
        redisClient: redis.createClient(conn.port, conn.host)
      });
    }
    case 'memory':
      return null;
    default:
      throw new Error('unknown store "' + cfg.store + '"');
  }
}

module.exports = { KINDS: KINDS, PKG_DIR: PKG_DIR, masterSetup: masterSetup, workerStore: workerStore };
