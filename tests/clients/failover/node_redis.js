// Failover writer: node-redis v5 with createSentinel (see README.md).
'use strict';
const path = require('path');
// tests/clients/node's packages (the compatibility programs pin the same versions)
const modules = process.env.HAKV_NODE_MODULES || path.join(__dirname, '..', 'node', 'node_modules');
const { createSentinel } = require(path.join(modules, 'redis'));
const version = require(path.join(modules, 'redis', 'package.json')).version;

const PROFILES = {
  // only what discovery needs
  default: {},
  // node-redis follows the sentinels' +switch-master on its own; asking them
  // every 100 ms as well (instead of every 10 s) covers a missed message.
  // Timeouts made it slower (see `timeouts`), so there are none.
  tuned: { scanInterval: 100 },
  // variants tried while choosing `tuned`:
  // short connect and socket timeouts, reconnect every 50 ms, a command timeout
  // (measured: 11-12 s to recover from pause/partition, the SET stuck on the
  // frozen primary until it came back, no error; the defaults took 1-3 s)
  timeouts: {
    scanInterval: 100,
    maxCommandRediscovers: 32,
    nodeClientOptions: { socket: { connectTimeout: 500, socketTimeout: 500, reconnectStrategy: 50 } },
    sentinelClientOptions: { socket: { connectTimeout: 500, socketTimeout: 500, reconnectStrategy: 50 } },
    commandTimeoutMs: 250,
  },
  'scan-connect': {
    scanInterval: 100,
    nodeClientOptions: { socket: { connectTimeout: 500, reconnectStrategy: 50 } },
    sentinelClientOptions: { socket: { connectTimeout: 500, reconnectStrategy: 50 } },
  },
};

function emit(obj) { process.stdout.write(JSON.stringify(obj) + '\n'); }
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const cfg = JSON.parse(process.argv[2]);
  const profile = cfg.profile || 'tuned';
  process.on('SIGTERM', () => process.exit(0));
  // an error the library lets escape would end the application: log it as
  // surfaced and keep writing, so the run still measures the recovery
  process.on('uncaughtException', (err) => emit({ ev: 'uncaught', t: Date.now() / 1000, err: `${err.name}: ${err.message}` }));
  emit({ ev: 'start', client: 'node-redis', version, profile, settings: PROFILES[profile] });
  const opts = Object.assign({}, PROFILES[profile]);
  const commandTimeout = opts.commandTimeoutMs;
  delete opts.commandTimeoutMs;
  opts.name = cfg.master;
  opts.sentinelRootNodes = cfg.sentinels.map(([host, port]) => ({ host, port }));
  const sentinel = createSentinel(opts);
  sentinel.on('error', () => {}); // surfaced per command below
  const end = Date.now() + (cfg.max_seconds || 120) * 1000;
  while (true) {
    try { await sentinel.connect(); break; } catch (err) {
      emit({ ev: 'connect-error', t: Date.now() / 1000, err: `${err.name}: ${err.message}` });
      if (Date.now() > end) process.exit(1);
      await sleep(100);
    }
  }
  const cmdOpts = commandTimeout ? { timeout: commandTimeout } : undefined;
  for (let seq = 1; Date.now() < end; seq++) {
    const line = { ev: 'w', seq };
    try {
      await sentinel.sendCommand(false, ['SET', cfg.prefix + seq, String(seq)], cmdOpts);
      line.t = Date.now() / 1000;
      line.ok = true;
      const node = sentinel.getMasterNode();
      line.addr = node ? `${node.host}:${node.port}` : null;
      try {
        line.wait = await sentinel.sendCommand(false, ['WAIT', '1', String(cfg.wait_timeout_ms || 100)], cmdOpts);
      } catch (err) {
        line.wait = null;
        line.werr = `${err.name}: ${err.message}`;
      }
    } catch (err) {
      line.t = Date.now() / 1000;
      line.ok = false;
      line.err = `${err.name}: ${err.message}`;
    }
    emit(line);
    await sleep(cfg.interval_ms || 10);
  }
  process.exit(0);
}

main();
