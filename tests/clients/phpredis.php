<?php
// phpredis (Debian php-redis, RESP2): every family, pub/sub, MULTI/EXEC, a pipeline of
// thousands, Lua, CLIENT SETNAME, READONLY and raw commands (rawCommand).
// usage: php phpredis.php HOST PORT   (prints the transcript; exit 1 on any mismatch)

const WRONGTYPE = 'WRONGTYPE Operation against a key holding the wrong kind of value';

function show($v) {
    if ($v === null) return 'null';
    if ($v === true) return 'true';
    if ($v === false) return 'false';
    if ($v instanceof Throwable) return 'Error(' . $v->getMessage() . ')';
    if (is_array($v)) {
        $parts = [];
        $list = array_keys($v) === range(0, count($v) - 1);
        foreach ($v as $k => $x) $parts[] = $list ? show($x) : show($k) . ': ' . show($x);
        return ($list ? '[' : '{') . implode(', ', $parts) . ($list ? ']' : '}');
    }
    if (is_string($v)) return json_encode($v, JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE);
    return gettype($v) . ':' . var_export($v, true);
}

class Transcript {
    public $failures = 0;
    function __construct(public string $program) {}
    function seen(string $label, $value) {
        fwrite(STDOUT, $label . ' => ' . show($value) . "\n");
    }
    // expected: a value (compared by rendering) or a Closure (a predicate)
    function check(string $label, $got, $expected) {
        $this->seen($label, $got);
        $ok = $expected instanceof Closure ? (bool)$expected($got) : show($got) === show($expected);
        if (!$ok) {
            $this->failures++;
            fwrite(STDERR, "{$this->program}: MISMATCH at $label: got " . show($got) . ', expected '
                . ($expected instanceof Closure ? 'a predicate' : show($expected)) . "\n");
        }
    }
    function done(): int {
        if ($this->failures) {
            fwrite(STDERR, "{$this->program}: {$this->failures} mismatches\n");
            return 1;
        }
        fwrite(STDERR, "{$this->program}: all checks passed\n");
        return 0;
    }
}

// phpredis answers an error reply with false and keeps the text in getLastError().
function reply(Redis $r, $value) {
    if ($value === false && $r->getLastError() !== null) {
        // (phpredis 5.3 sometimes keeps a trailing NUL byte in the text)
        $e = 'ERROR ' . rtrim($r->getLastError(), "\0");
        $r->clearLastError();
        return $e;
    }
    return $value;
}

[$host, $port] = [$argv[1], (int)$argv[2]];
$t = new Transcript('phpredis ' . phpversion('redis'));
$r = new Redis();
$r->connect($host, $port, 5.0);

$t->check('flushdb', $r->flushDB(), true);
$t->check('client setname', $r->client('setname', 'hakv-phpredis'), true);
$t->check('client getname', $r->client('getname'), 'hakv-phpredis');
$t->check('readonly', reply($r, $r->rawCommand('READONLY')), 'ERROR ERR This instance has cluster support disabled');
$t->seen('client setinfo', reply($r, $r->rawCommand('CLIENT', 'SETINFO', 'LIB-NAME', 'phpredis')));
$t->check('raw unknown', reply($r, $r->rawCommand('NOPE', 'x')), "ERROR ERR unknown command 'NOPE', with args beginning with: 'x' ");
$t->check('raw echo', $r->rawCommand('ECHO', "a\r\nb"), "a\r\nb");

// strings
$t->check('set', $r->set('p:s', 'v'), true);
$t->check('set options', $r->set('p:s', 'w', ['xx', 'px' => 100000]), true);
$t->check('get', $r->get('p:s'), 'w');
$t->check('get missing', $r->get('p:none'), false);
$t->check('incrBy', $r->incrBy('p:n', 5), 5);
$t->check('incrByFloat', $r->incrByFloat('p:n', 0.5), 5.5);
$t->check('mset', $r->mset(['p:a' => 'x', 'p:b' => 'y']), true);
$t->check('mget', $r->mget(['p:a', 'p:none', 'p:b']), ['x', false, 'y']);
$t->check('incr on text', reply($r, $r->incr('p:s')), 'ERROR ERR value is not an integer or out of range');
$t->check('setRange', $r->setRange('p:s', 5, 'Z'), 6);
$t->check('padded', $r->get('p:s'), "w\0\0\0\0Z");

// hashes
$t->check('hMSet', $r->hMSet('p:h', ['a' => 1, 'b' => 'two']), true);
$t->check('hGetAll', $r->hGetAll('p:h'), ['a' => '1', 'b' => 'two']);
$t->check('hIncrBy', $r->hIncrBy('p:h', 'a', 2), 3);
$t->check('hExists', $r->hExists('p:h', 'zz'), false);
$t->check('hLen', $r->hLen('p:h'), 2);
$t->check('hDel', $r->hDel('p:h', 'a', 'b'), 2);
$t->check('hash emptied', $r->exists('p:h'), 0);

// lists
$t->check('rPush', $r->rPush('p:l', 'a', 'b', 'c'), 3);
$t->check('lRange', $r->lRange('p:l', 0, -1), ['a', 'b', 'c']);
$t->check('lIndex', $r->lIndex('p:l', 1), 'b');
$t->check('rPopLPush', $r->rPopLPush('p:l', 'p:l2'), 'c');
$t->check('blPop', $r->blPop(['p:l2'], 1), ['p:l2', 'c']);
$t->check('lLen', $r->lLen('p:l'), 2);
$t->check('lPush on string', reply($r, $r->lPush('p:s', 'x')), 'ERROR ' . WRONGTYPE);

// sets
$t->check('sAdd', $r->sAdd('p:set', 'x', 'y', 'z'), 3);
$m = $r->sMembers('p:set'); sort($m);
$t->check('sMembers', $m, ['x', 'y', 'z']);
$t->check('sIsMember', $r->sIsMember('p:set', 'y'), true);
$t->check('sDiffStore', $r->sDiffStore('p:set2', 'p:set', 'p:none'), 3);
$t->check('sCard', $r->sCard('p:set2'), 3);

// sorted sets
$t->check('zAdd', $r->zAdd('p:z', 1, 'a', 2, 'b', 3, 'c'), 3);
$t->check('zRange withscores', $r->zRange('p:z', 0, -1, true), ['a' => 1.0, 'b' => 2.0, 'c' => 3.0]);
$t->check('zRangeByScore limit', $r->zRangeByScore('p:z', '(1', '+inf', ['limit' => [0, 1]]), ['b']);
$t->check('zScore', $r->zScore('p:z', 'c'), 3.0);
$t->check('zRevRank', $r->zRevRank('p:z', 'a'), 2);
$t->check('zIncrBy', $r->zIncrBy('p:z', 1.5, 'a'), 2.5);
$t->check('zRem', $r->zRem('p:z', 'b', 'nope'), 1);
$t->check('zCard', $r->zCard('p:z'), 2);

// expiry
$t->check('expire', $r->expire('p:a', 100), true);
$ttl = $r->ttl('p:a');
$t->check('ttl in (95,100]', $ttl > 95 && $ttl <= 100, true);
$t->check('pExpire short', $r->pExpire('p:b', 50), true);
usleep(200000);
$t->check('expired', $r->get('p:b'), false);
$t->check('persist', $r->persist('p:a'), true);
$t->check('ttl -1', $r->ttl('p:a'), -1);

// pub/sub: a forked child publishes once our subscription is visible
fflush(STDOUT);
$pid = pcntl_fork();
if ($pid === 0) {
    $p = new Redis();
    $p->connect($host, $port, 5.0);
    for ($i = 0; $i < 500 && ($p->pubsub('numsub', ['p:chan'])['p:chan'] ?? 0) < 1; $i++) usleep(10000);
    $p->publish('p:chan', 'hello');
    $p->publish('p:chan', 'last');
    $p->close();
    posix_kill(posix_getpid(), SIGKILL);  // no destructors on the parent's connections
}
$sub = new Redis();
$sub->connect($host, $port, 5.0);
$sub->setOption(Redis::OPT_READ_TIMEOUT, 10);
$got = [];
try {
    $sub->subscribe(['p:chan'], function ($redis, $channel, $message) use (&$got) {
        $got[] = [$channel, $message];
        if ($message === 'last') throw new RuntimeException('done');
    });
} catch (Throwable $e) {
    // our 'done' (phpredis wraps it in a RedisException): the way out of subscribe()
}
pcntl_waitpid($pid, $status);
$t->check('messages', $got, [['p:chan', 'hello'], ['p:chan', 'last']]);
$sub->close();
// The server learns of the close asynchronously (in Redis too): wait for it to show.
for ($i = 0; $i < 200 && ($r->pubsub('numsub', ['p:chan'])['p:chan'] ?? 0) > 0; $i++) usleep(10000);
$t->check('publish to nobody', $r->publish('p:chan', 'late'), 0);

// MULTI/EXEC
$t->check('multi exec', $r->multi()->set('p:tx', '1')->incr('p:tx')->get('p:tx')->exec(), [true, 2, '2']);
$t->check('multi with failing command', $r->multi()->set('p:tx', 'a')->incr('p:tx')->exec(), [true, false]);
$w = new Redis();
$w->connect($host, $port, 5.0);
$w->watch('p:w');
$r->set('p:w', 'theirs');
$t->check('watch abort', $w->multi()->set('p:w', 'mine')->exec(), false);
$w->close();

// a pipeline of a few thousand commands
$p = $r->pipeline();
for ($i = 0; $i < 3000; $i++) $p->set("p:p:$i", $i);
$p->dbSize();
$p->get('p:p:2999');
$res = $p->exec();
$t->check('pipeline replies', count($res), 3002);
$t->check('pipeline sets', count(array_filter(array_slice($res, 0, 3000), fn($x) => $x === true)), 3000);
$t->check('pipeline tail', array_slice($res, 3001), ['2999']);

// Lua
$t->check('eval', $r->eval("return {KEYS[1], ARGV[1], redis.call('incr', KEYS[1])}", ['p:lua', 'arg'], 1), ['p:lua', 'arg', 1]);
$sha = $r->script('load', "return redis.call('get', KEYS[1])");
$t->check('evalSha', $r->evalSha($sha, ['p:lua'], 1), '1');
$t->check('evalSha unknown', reply($r, $r->evalSha(str_repeat('0', 40))), 'ERROR NOSCRIPT No matching script. Please use EVAL.');
$t->check('eval error', reply($r, $r->eval("return redis.call('lpush', KEYS[1], 'x')", ['p:s'], 1)),
    fn($got) => str_starts_with($got, 'ERROR WRONGTYPE'));
$t->check('eval float', $r->eval('return 2.7'), 2);

$t->check('dbsize', $r->dbSize(), count($r->keys('*')));
$r->close();
exit($t->done());
