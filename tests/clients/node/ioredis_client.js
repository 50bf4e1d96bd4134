'use strict';
// ioredis (RESP2 only): every family, pub/sub, MULTI/EXEC, a pipeline of thousands,
// Lua (eval + defineCommand), CLIENT SETNAME at connect, READONLY, raw replies.
// usage: node ioredis_client.js HOST PORT   (prints the transcript; exit 1 on any mismatch)
const path = require('path');
const Redis = require(path.join(__dirname, 'node_modules', 'ioredis'));
const version = require(path.join(__dirname, 'node_modules', 'ioredis', 'package.json')).version;
const { Transcript, attempt, err, errPrefix, sleep } = require('./transcript');

const WRONGTYPE = 'WRONGTYPE Operation against a key holding the wrong kind of value';

async function main() {
  const [host, port] = [process.argv[2], Number(process.argv[3])];
  const t = new Transcript('ioredis ' + version);
  const opts = { host, port, maxRetriesPerRequest: 1, enableOfflineQueue: true };
  const r = new Redis({ ...opts, connectionName: 'hakv-ioredis' });

  t.check('flushdb', await r.flushdb(), 'OK');
  t.check('client getname (set at connect)', await r.client('GETNAME'), 'hakv-ioredis');
  t.check('readonly', await attempt(r.call('READONLY')), err('ERR This instance has cluster support disabled'));
  t.seen('client setinfo', await attempt(r.call('CLIENT', 'SETINFO', 'LIB-NAME', 'ioredis-test')));
  t.check('unknown command', await attempt(r.call('NOSUCH', 'a')),
    err("ERR unknown command 'NOSUCH', with args beginning with: 'a' "));

  // strings
  t.check('set', await r.set('i:s', 'hello'), 'OK');
  t.check('get', await r.get('i:s'), 'hello');
  t.check('getBuffer binary', (await r.set('i:bin', Buffer.from([0, 13, 10, 255])),
    await r.getBuffer('i:bin')), Buffer.from([0, 13, 10, 255]));
  t.check('set nx get', await attempt(r.set('i:s', 'x', 'NX', 'GET')), 'hello');
  t.check('incr', await r.incr('i:n'), 1);
  t.check('incrbyfloat', await r.incrbyfloat('i:n', '0.5'), '1.5');
  t.check('incr float value', await attempt(r.incr('i:n')), err('ERR value is not an integer or out of range'));
  t.check('mget', await r.mget('i:s', 'i:none', 'i:n'), ['hello', null, '1.5']);
  t.check('msetnx', await r.msetnx('i:s', 'a', 'i:new', 'b'), 0);
  t.check('getex persist', await r.getex('i:s', 'PERSIST'), 'hello');
  t.check('strlen', await r.strlen('i:s'), 5);

  // hashes
  t.check('hset', await r.hset('i:h', { a: '1', b: '2' }), 2);
  t.check('hgetall', await r.hgetall('i:h'), { a: '1', b: '2' });
  t.check('hincrbyfloat', await r.hincrbyfloat('i:h', 'a', '1.25'), '2.25');
  t.check('hvals', await r.hvals('i:h'), ['2.25', '2']);
  t.check('hstrlen', await r.hstrlen('i:h', 'a'), 4);
  t.check('hincrby not int', await attempt(r.hincrby('i:h', 'a', 1)), err('ERR hash value is not an integer'));

  // lists
  t.check('rpush', await r.rpush('i:l', 'a', 'b', 'c', 'b'), 4);
  t.check('lrem', await r.lrem('i:l', 0, 'b'), 2);
  t.check('lrange', await r.lrange('i:l', 0, -1), ['a', 'c']);
  t.check('lpushx missing', await r.lpushx('i:nolist', 'x'), 0);
  t.check('brpop timeout', await r.brpop('i:empty', 0.1), null);
  t.check('lmpop', await r.lmpop(2, 'i:empty', 'i:l', 'RIGHT', 'COUNT', 5), ['i:l', ['c', 'a']]);

  // sets
  t.check('sadd', await r.sadd('i:set', 'x', 'y', 'z'), 3);
  t.check('smembers', new Set(await r.smembers('i:set')), new Set(['x', 'y', 'z']));
  t.check('smove', await r.smove('i:set', 'i:set2', 'x'), 1);
  t.check('sintercard', await r.sintercard(2, 'i:set', 'i:set2'), 0);
  t.check('srandmember neg', (await r.srandmember('i:set2', -3)), ['x', 'x', 'x']);

  // sorted sets
  t.check('zadd', await r.zadd('i:z', 1, 'one', 2, 'two', 3, 'three'), 3);
  t.check('zrange rev withscores', await r.zrange('i:z', 0, 1, 'REV', 'WITHSCORES'), ['three', '3', 'two', '2']);
  t.check('zrangebyscore limit', await r.zrangebyscore('i:z', '-inf', '+inf', 'LIMIT', 1, 1), ['two']);
  t.check('zremrangebyrank', await r.zremrangebyrank('i:z', 0, 0), 1);
  t.check('zscore float', (await r.zadd('i:z', 0.1, 'tenth'), await r.zscore('i:z', 'tenth')), '0.10000000000000001');
  t.check('zunionstore', await r.zunionstore('i:zu', 2, 'i:z', 'i:set', 'WEIGHTS', 2, 1), 5);
  t.check('zrange zu', await r.zrange('i:zu', 0, -1, 'WITHSCORES'),
    ['tenth', '0.20000000000000001', 'y', '1', 'z', '1', 'two', '4', 'three', '6']);
  t.check('zadd bad score', await attempt(r.zadd('i:z', 'abc', 'm')), err('ERR value is not a valid float'));

  // expiry
  t.check('set px', await r.set('i:e', 'v', 'PX', 20000), 'OK');
  const pttl = await r.pttl('i:e');
  t.check('pttl in (15000,20000]', pttl > 15000 && pttl <= 20000, true);
  t.check('pexpire short', await r.pexpire('i:e', 60), 1);
  await sleep(200);
  t.check('expired', await r.get('i:e'), null);
  t.check('expireat past', (await r.set('i:e2', 'v'), await r.expireat('i:e2', 1)), 1);
  t.check('expireat past deleted', await r.exists('i:e2'), 0);
  t.check('expiretime', (await r.set('i:e3', 'v', 'EXAT', 4102444800), await r.expiretime('i:e3')), 4102444800);

  // pub/sub
  const sub = new Redis(opts);
  const got = [];
  sub.on('message', (ch, msg) => got.push(['message', ch, msg]));
  sub.on('pmessage', (pat, ch, msg) => got.push(['pmessage', pat, ch, msg]));
  t.check('subscribe', await sub.subscribe('i:c1', 'i:c2'), 2);
  t.check('psubscribe', await sub.psubscribe('i:c*'), 3);
  t.check('publish', await r.publish('i:c1', 'm1'), 2);
  t.check('publish c2', await r.publish('i:c2', 'm2'), 2);
  for (let i = 0; i < 250 && got.length < 4; i++) await sleep(20);
  t.check('messages', got, [['message', 'i:c1', 'm1'], ['pmessage', 'i:c*', 'i:c1', 'm1'],
    ['message', 'i:c2', 'm2'], ['pmessage', 'i:c*', 'i:c2', 'm2']]);
  t.check('command in subscribed mode', await attempt(sub.call('GET', 'i:s')), (e) => e instanceof Error);
  t.check('unsubscribe', await sub.unsubscribe('i:c1', 'i:c2'), 1);
  t.check('punsubscribe', await sub.punsubscribe('i:c*'), 0);
  sub.disconnect();

  // MULTI/EXEC
  t.check('multi exec', await r.multi().set('i:tx', 5).incrby('i:tx', 3).get('i:tx').exec(),
    [[null, 'OK'], [null, 8], [null, '8']]);
  const withErr = await r.multi().set('i:tx', 'a').incr('i:tx').exec();
  t.check('multi exec runtime error', withErr.map(([e, v]) => (e ? e.message : v)),
    ['OK', 'ERR value is not an integer or out of range']);
  t.check('exec abort', await attempt(r.multi().set('i:tx').exec()),
    errPrefix('EXECABORT Transaction discarded because of previous errors.'));
  const w = new Redis(opts);
  await w.watch('i:w');
  await r.set('i:w', 'other');
  t.check('watch abort', await w.multi().set('i:w', 'mine').exec(), null);
  w.disconnect();

  // a pipeline of a few thousand commands
  const p = r.pipeline();
  for (let i = 0; i < 3000; i++) p.hset('i:ph', 'f' + i, i);
  p.hlen('i:ph');
  p.hget('i:ph', 'f2999');
  const res = await p.exec();
  t.check('pipeline hset', res.slice(0, 3000).every(([e, v]) => e === null && v === 1), true);
  t.check('pipeline tail', res.slice(3000), [[null, 3000], [null, '2999']]);

  // Lua
  t.check('eval', await r.eval("return {KEYS[1], ARGV[1], 42, redis.call('ping')}", 1, 'k', 'v'),
    ['k', 'v', 42, 'PONG']);
  t.check('eval float truncated', await r.eval('return 7.9', 0), 7);
  t.check('eval error', await attempt(r.eval("return redis.call('nosuch')", 0)),
    errPrefix('ERR Unknown Redis command called from script'));
  r.defineCommand('swapset', {
    numberOfKeys: 1,
    lua: "local old = redis.call('get', KEYS[1]); redis.call('set', KEYS[1], ARGV[1]); return old",
  });
  t.check('defineCommand (evalsha, falls back to eval)', await r.swapset('i:lua', 'first'), null);
  t.check('defineCommand again (evalsha)', await r.swapset('i:lua', 'second'), 'first');
  t.check('script flush', await r.script('FLUSH'), 'OK');
  t.check('defineCommand after flush', await r.swapset('i:lua', 'third'), 'second');

  // SCAN through the client's stream helper (cursors differ between servers; the keys may not)
  const scanned = await new Promise((resolve, reject) => {
    const keys = [];
    r.scanStream({ match: 'i:p*', count: 2 }).on('data', (batch) => keys.push(...batch))
      .on('end', () => resolve(keys.sort())).on('error', reject);
  });
  t.check('scanStream', scanned, ['i:ph']);
  const fields = await new Promise((resolve, reject) => {
    let n = 0;
    r.hscanStream('i:ph', { count: 500 }).on('data', (batch) => { n += batch.length / 2; })
      .on('end', () => resolve(n)).on('error', reject);
  });
  t.check('hscanStream fields', fields, (got) => got >= 3000);

  t.check('dbsize', await r.dbsize(), (await r.keys('*')).length);
  t.check('quit', await r.quit(), 'OK');
  return t.done();
}

main().then((code) => process.exit(code), (e) => {
  process.stderr.write('ioredis: crashed: ' + (e && e.stack) + '\n');
  process.exit(2);
});
