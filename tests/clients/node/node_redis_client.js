'use strict';
// node-redis v5 (RESP2 and RESP3): every family, pub/sub, MULTI/EXEC, a pipeline of
// thousands, Lua, HELLO 3 + SETNAME at connect, CLIENT SETINFO at connect, READONLY.
// usage: node node_redis_client.js HOST PORT   (prints the transcript; exit 1 on any mismatch)
const path = require('path');
const { createClient } = require(path.join(__dirname, 'node_modules', 'redis'));
const version = require(path.join(__dirname, 'node_modules', 'redis', 'package.json')).version;
const { Transcript, attempt, err, sleep } = require('./transcript');

const WRONGTYPE = 'WRONGTYPE Operation against a key holding the wrong kind of value';

async function connect(host, port, extra) {
  const c = createClient({ socket: { host, port, reconnectStrategy: false }, ...extra });
  c.on('error', (e) => process.stderr.write('node-redis connection error: ' + e.message + '\n'));
  await c.connect();
  return c;
}

async function main() {
  const [host, port] = [process.argv[2], Number(process.argv[3])];
  const t = new Transcript('node-redis ' + version);
  // RESP2, CLIENT SETNAME and CLIENT SETINFO (errors ignored by the client) at connect
  const r = await connect(host, port, { name: 'hakv-node-redis', RESP: 2 });

  t.check('flushdb', await r.flushDb(), 'OK');
  t.check('client getname (set at connect)', await r.clientGetName(), 'hakv-node-redis');
  t.check('readonly', await attempt(r.sendCommand(['READONLY'])),
    err('ERR This instance has cluster support disabled'));
  t.seen('client setinfo', await attempt(r.sendCommand(['CLIENT', 'SETINFO', 'LIB-NAME', 'nr-test'])));
  t.check('wrong arity', await attempt(r.sendCommand(['SET', 'k'])),
    err("ERR wrong number of arguments for 'set' command"));

  // strings
  t.check('set', await r.set('n:s', 'val'), 'OK');
  t.check('set px', await r.set('n:e', 'v', { PX: 20000 }), 'OK');
  t.check('set get', await r.set('n:s', 'val2', { GET: true }), 'val');
  t.check('get', await r.get('n:s'), 'val2');
  t.check('incrBy', await r.incrBy('n:n', 10), 10);
  t.check('decrBy', await r.decrBy('n:n', 3), 7);
  t.check('mSet/mGet', (await r.mSet({ 'n:a': '1', 'n:b': '2' }), await r.mGet(['n:a', 'n:x', 'n:b'])),
    ['1', null, '2']);
  t.check('getRange', await r.getRange('n:s', -2, -1), 'l2');
  t.check('setNX', await r.setNX('n:s', 'x'), 0);
  t.check('incr on text', await attempt(r.incr('n:s')), err('ERR value is not an integer or out of range'));

  // hashes
  t.check('hSet', await r.hSet('n:h', { f1: 'v1', f2: 'v2' }), 2);
  t.check('hGetAll', await r.hGetAll('n:h'), { f1: 'v1', f2: 'v2' });
  t.check('hGet missing', await r.hGet('n:h', 'nope'), null);
  t.check('hIncrBy', await r.hIncrBy('n:h', 'cnt', 5), 5);
  t.check('hKeys', await r.hKeys('n:h'), ['f1', 'f2', 'cnt']);
  t.check('hDel', await r.hDel('n:h', ['f1', 'f2']), 2);
  t.check('hGet on list type', (await r.rPush('n:l', 'x'), await attempt(r.hGet('n:l', 'f'))), err(WRONGTYPE));

  // lists
  t.check('lPush', await r.lPush('n:l', ['b', 'a']), 3);
  t.check('lRange', await r.lRange('n:l', 0, -1), ['a', 'b', 'x']);
  t.check('lPos', await r.lPos('n:l', 'x'), 2);
  t.check('lSet/lIndex', (await r.lSet('n:l', 1, 'B'), await r.lIndex('n:l', 1)), 'B');
  t.check('rPopCount', await r.rPopCount('n:l', 5), ['x', 'B', 'a']);
  t.check('exists after empty', await r.exists('n:l'), 0);

  // sets
  t.check('sAdd', await r.sAdd('n:set', ['m1', 'm2', 'm3']), 3);
  t.check('sMembers', new Set(await r.sMembers('n:set')), new Set(['m1', 'm2', 'm3']));
  t.check('sIsMember', await r.sIsMember('n:set', 'm2'), 1);
  t.check('sRem', await r.sRem('n:set', 'm2'), 1);
  t.check('sInterStore', await r.sInterStore('n:set2', ['n:set', 'n:nothing']), 0);
  t.check('sCard', await r.sCard('n:set'), 2);

  // sorted sets
  t.check('zAdd', await r.zAdd('n:z', [{ score: 1.5, value: 'a' }, { score: -2, value: 'b' }]), 2);
  t.check('zRangeWithScores', await r.zRangeWithScores('n:z', 0, -1),
    [{ value: 'b', score: -2 }, { value: 'a', score: 1.5 }]);
  t.check('zScore', await r.zScore('n:z', 'a'), 1.5);
  t.check('zRank', await r.zRank('n:z', 'a'), 1);
  t.check('zIncrBy', await r.zIncrBy('n:z', 2, 'b'), 0);
  t.check('zRangeByScore', await r.zRangeByScore('n:z', 0, 10), ['b', 'a']);
  t.check('zPopMax', await r.zPopMax('n:z'), { value: 'a', score: 1.5 });
  t.check('zAdd on hash', await attempt(r.zAdd('n:h', { score: 1, value: 'x' })), err(WRONGTYPE));

  // expiry
  const pttl = await r.pTTL('n:e');
  t.check('pTTL in (15000,20000]', pttl > 15000 && pttl <= 20000, true);
  t.check('pExpire short', await r.pExpire('n:e', 60), 1);
  await sleep(200);
  t.check('expired', await r.get('n:e'), null);
  t.check('expire', (await r.set('n:e2', 'v'), await r.expire('n:e2', 100)), 1);
  const ttl = await r.ttl('n:e2');
  t.check('ttl in (95,100]', ttl > 95 && ttl <= 100, true);
  t.check('persist', await r.persist('n:e2'), 1);
  t.check('ttl -1', await r.ttl('n:e2'), -1);

  // pub/sub on a duplicate connection
  const sub = r.duplicate();
  sub.on('error', () => {});
  await sub.connect();
  const got = [];
  await sub.subscribe('n:chan', (message, channel) => got.push(['message', channel, message]));
  await sub.pSubscribe('n:*', (message, channel) => got.push(['pmessage', channel, message]));
  t.check('publish', await r.publish('n:chan', 'hi'), 2);
  for (let i = 0; i < 250 && got.length < 2; i++) await sleep(20);
  t.check('messages', got, [['message', 'n:chan', 'hi'], ['pmessage', 'n:chan', 'hi']]);
  t.check('pubsub numsub', await r.pubSubNumSub('n:chan'), { 'n:chan': 1 });
  await sub.unsubscribe('n:chan');
  await sub.pUnsubscribe('n:*');
  t.check('numsub after unsubscribe', await r.pubSubNumSub('n:chan'), { 'n:chan': 0 });
  sub.destroy();

  // MULTI/EXEC
  t.check('multi exec', await r.multi().set('n:tx', '1').incr('n:tx').get('n:tx').exec(), ['OK', 2, '2']);
  const failing = await attempt(r.multi().set('n:tx', 'a').incr('n:tx').exec());
  t.check('multi exec with an error reply', failing instanceof Error ? failing.message : failing,
    (got) => typeof got === 'string' || Array.isArray(got));
  // node-redis surfaces the queueing error rather than EXEC's EXECABORT
  t.check('exec abort', await attempt(r.multi().addCommand(['SET', 'n:tx']).exec()),
    err("ERR wrong number of arguments for 'set' command"));
  const w = r.duplicate();
  w.on('error', () => {});
  await w.connect();
  await w.watch('n:w');
  await r.set('n:w', 'theirs');
  t.check('watch abort', await attempt(w.multi().set('n:w', 'mine').exec()),
    (e) => e instanceof Error && e.constructor.name === 'WatchError');
  w.destroy();

  // pipelining: thousands of commands issued in one tick go out together
  const replies = await Promise.all(Array.from({ length: 3000 }, (_, i) => r.sAdd('n:pipe', 'm' + i)));
  t.check('pipelined sAdd', replies.every((x) => x === 1), true);
  t.check('pipeline as a multi', await r.multi().sCard('n:pipe').sIsMember('n:pipe', 'm2999').execAsPipeline(),
    [3000, 1]);

  // Lua
  t.check('eval', await r.eval("return {KEYS[1], ARGV[1], redis.call('incr', KEYS[1])}",
    { keys: ['n:lua'], arguments: ['a'] }), ['n:lua', 'a', 1]);
  const sha = await r.scriptLoad("return redis.call('get', KEYS[1])");
  t.check('evalSha', await r.evalSha(sha, { keys: ['n:lua'] }), '1');
  t.check('evalSha unknown', await attempt(r.evalSha('f'.repeat(40))),
    err('NOSCRIPT No matching script. Please use EVAL.'));
  t.check('eval wrong numkeys', await attempt(r.sendCommand(['EVAL', 'return 1', '5'])),
    err("ERR Number of keys can't be greater than number of args"));

  // RESP3: HELLO 3 with SETNAME at connect; maps, sets and doubles
  const r3 = await connect(host, port, { name: 'hakv-node-redis-3', RESP: 3 });
  const hello = await r3.hello('3');
  t.seen('hello3', hello);
  t.check('hello3 fields', [hello.server, hello.proto, hello.mode, hello.role], ['redis', 3, 'standalone', 'master']);
  t.check('resp3 client getname', await r3.clientGetName(), 'hakv-node-redis-3');
  t.check('resp3 hGetAll', await r3.hGetAll('n:h'), { cnt: '5' });
  t.check('resp3 sMembers', new Set(await r3.sMembers('n:set')), new Set(['m1', 'm3']));
  t.check('resp3 zScore', await r3.zScore('n:z', 'b'), 0);
  t.check('resp3 raw map', await r3.sendCommand(['HGETALL', 'n:h']), (got) => got && got.cnt === '5');
  t.check('resp3 lua double', await r3.sendCommand(['EVAL', 'return {double=2.5}', '0']), 2.5);
  t.check('resp3 null', await r3.get('n:none'), null);
  const sub3 = r3.duplicate();
  sub3.on('error', () => {});
  await sub3.connect();
  const got3 = [];
  await sub3.subscribe('n:c3', (message, channel) => got3.push([channel, message]));
  t.check('resp3 publish', await r3.publish('n:c3', 'push!'), 1);
  for (let i = 0; i < 250 && got3.length < 1; i++) await sleep(20);
  t.check('resp3 push message', got3, [['n:c3', 'push!']]);
  t.check('resp3 commands while subscribed', await sub3.get('n:s'), 'val2');
  sub3.destroy();
  r3.destroy();

  // SCAN through the client's iterator (cursors differ between servers; the keys may not)
  const scanned = [];
  for await (const batch of r.scanIterator({ MATCH: 'n:s*', COUNT: 2 })) scanned.push(...batch);
  t.check('scanIterator', scanned.sort(), ['n:s', 'n:set']);
  const members = [];
  for await (const batch of r.sScanIterator('n:pipe', { COUNT: 100 })) members.push(...batch);
  t.check('sScanIterator', new Set(members).size, 3000);

  t.check('dbsize', await r.dbSize(), (await r.keys('*')).length);
  r.destroy();
  return t.done();
}

main().then((code) => process.exit(code), (e) => {
  process.stderr.write('node-redis: crashed: ' + (e && e.stack) + '\n');
  process.exit(2);
});
