// Failover writer: ioredis with its `sentinels` option (see README.md).
'use strict';
const path = require('path');
// tests/clients/node's packages (the compatibility programs pin the same versions)
const modules = process.env.HAKV_NODE_MODULES || path.join(__dirname, '..', 'node', 'node_modules');
const Redis = require(path.join(modules, 'ioredis'));
const version = require(path.join(modules, 'ioredis', 'package.json')).version;

const PROFILES = {
  // only what discovery needs
  default: {},
  // a command timeout so a frozen/cut primary fails fast; failoverDetector
  // subscribes to the sentinels' +switch-master and reconnects at once;
  // READONLY (a demoted primary) makes it reconnect (2 = and resend);
  // reconnect and sentinel retries every 50 ms instead of a growing backoff
  tuned: {
    connectTimeout: 250,
    commandTimeout: 250,
    failoverDetector: true,
    enableAutoPipelining: false,
    maxRetriesPerRequest: 3,
    reconnectOnError: 'READONLY -> 2',
    retryStrategy: '() => 50',
    sentinelRetryStrategy: '() => 50',
    sentinelCommandTimeout: 250,
    // the application's part: after a kill ioredis sometimes ends in status
    // 'end' ("Connection is closed." for every call, no more reconnects), so
    // a new client replaces it on 'end'
    recreateOnEnd: true,
  },
};
// variants tried while choosing `tuned`: the same without failoverDetector
PROFILES['no-detector'] = Object.assign({}, PROFILES.tuned, { failoverDetector: false, recreateOnEnd: false });
PROFILES['no-recreate'] = Object.assign({}, PROFILES.tuned, { recreateOnEnd: false });

function build(cfg, profile) {
  const opts = Object.assign({}, PROFILES[profile]);
  if (opts.reconnectOnError) opts.reconnectOnError = (err) => (err.message.startsWith('READONLY') ? 2 : false);
  if (opts.retryStrategy) opts.retryStrategy = () => 50;
  if (opts.sentinelRetryStrategy) opts.sentinelRetryStrategy = () => 50;
  delete opts.recreateOnEnd;
  opts.sentinels = cfg.sentinels.map(([host, port]) => ({ host, port }));
  opts.name = cfg.master;
  const client = new Redis(opts);
  client.on('error', () => {}); // surfaced per command below
  return client;
}

function emit(obj) { process.stdout.write(JSON.stringify(obj) + '\n'); }
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const cfg = JSON.parse(process.argv[2]);
  const profile = cfg.profile || 'tuned';
  process.on('SIGTERM', () => process.exit(0));
  // an error the library lets escape would end the application: log it as
  // surfaced and keep writing, so the run still measures the recovery
  process.on('uncaughtException', (err) => emit({ ev: 'uncaught', t: Date.now() / 1000, err: `${err.name}: ${err.message}` }));
  emit({ ev: 'start', client: 'ioredis', version, profile, settings: PROFILES[profile] });
  let client = build(cfg, profile);
  if (PROFILES[profile].recreateOnEnd) {
    const replaceOnEnd = (c) => c.once('end', () => {
      emit({ ev: 'recreated', t: Date.now() / 1000 });
      client = build(cfg, profile);
      replaceOnEnd(client);
    });
    replaceOnEnd(client);
  }
  const end = Date.now() + (cfg.max_seconds || 120) * 1000;
  for (let seq = 1; Date.now() < end; seq++) {
    const line = { ev: 'w', seq };
    try {
      await client.set(cfg.prefix + seq, String(seq));
      line.t = Date.now() / 1000;
      line.ok = true;
      const s = client.stream;
      line.addr = s && s.remoteAddress ? `${s.remoteAddress}:${s.remotePort}` : null;
      try {
        line.wait = await client.wait(1, cfg.wait_timeout_ms || 100);
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
