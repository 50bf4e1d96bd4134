"""Differential test of Lua scripting and functions: the same scripts go to a
real redis-server and to hakv, and the replies must be byte for byte the
same (read raw off the socket, RESP2 and RESP3).

Covered: the conversions both ways for every reply type (integers,
truncated numbers, nil/false, nested tables up to the first nil, statuses,
errors, RESP3 maps/sets/doubles/booleans/big numbers/verbatim, redis.setresp),
errors with their exact texts (runtime, compile, from redis.call, sandbox,
arity/numkeys, NOSCRIPT, read-only scripts, noscript commands), pcall and
redis.pcall, KEYS/ARGV, EVALSHA/SCRIPT round trips, shebang flags, the
cjson/cmsgpack/bit/struct libraries, FUNCTION LOAD/LIST/FCALL/DUMP/RESTORE
(including restoring a dump in the other server), and what a runaway script
does to other clients (BUSY, SCRIPT KILL, UNKILLABLE).

Replies whose order Redis leaves to its hash tables (SMEMBERS, HGETALL,
pairs()) are avoided or sorted inside the script.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

from procs import hakv_server, redis_server

pytestmark = pytest.mark.interop


class RawConn:
    """Sends commands, returns each reply's exact bytes."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.buf = b""

    def __call__(self, *args) -> bytes:
        self.send(*args)
        return self.read_reply()

    def send(self, *args) -> None:
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))

    def read_reply(self) -> bytes:
        while True:
            end = _frame_end(self.buf, 0)
            if end is not None:
                frame, self.buf = self.buf[:end], self.buf[end:]
                return frame
            data = self.sock.recv(1 << 16)
            if not data:
                raise ConnectionError("closed")
            self.buf += data

    def close(self) -> None:
        self.sock.close()


def _frame_end(buf: bytes, pos: int):
    """Where the RESP value starting at pos ends, or None if incomplete."""
    eol = buf.find(b"\r\n", pos)
    if eol < 0:
        return None
    kind = buf[pos:pos + 1]
    head = buf[pos + 1:eol]
    pos = eol + 2
    if kind in (b"$", b"=", b"!"):
        n = int(head)
        if n < 0:
            return pos
        return pos + n + 2 if len(buf) >= pos + n + 2 else None
    if kind in (b"*", b"~", b">", b"%", b"|"):
        n = int(head)
        if kind in (b"%", b"|"):
            n *= 2
        for _ in range(max(n, 0)):
            pos = _frame_end(buf, pos)
            if pos is None:
                return None
        return pos
    return pos


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    base = tmp_path_factory.mktemp("scripting")
    real = redis_server(str(base / "redis")).start()
    ours = hakv_server(str(base / "hakv")).start()
    yield real, ours
    ours.stop()
    real.stop()


def same(pair, commands, resp3=False):
    """Run commands on both servers (one connection each); compare replies."""
    replies = []
    for proc in pair:
        conn = RawConn(proc.port)
        if resp3:
            conn("HELLO", "3")
        replies.append([conn(*cmd) for cmd in commands])
        conn.close()
    for cmd, expected, got in zip(commands, replies[0], replies[1]):
        assert got == expected, "command %r" % (cmd,)
    return replies[0]


def ev(script, *args, numkeys=0):
    return ("EVAL", script, str(numkeys), *args)


# ------------------------------------------------------------------ conversions

RETURNS = [
    "return 1", "return -7", "return 3.99", "return -3.99", "return 1e30", "return 0/0",
    "return 'str'", "return ''", "return true", "return false", "return nil",
    "return {1, 2, 3.5, 'x', true, false, 5}", "return {1, nil, 3}", "return {}",
    "return {1, {2, {3, {'deep'}}}}", "return {ok='fine'}", "return {ok='a\\r\\nb'}",
    "return {err='boom'}", "return {err='MYCODE boom'}", "return {err='-x y'}",
    "return {err=5}", "return redis.status_reply('s')", "return redis.error_reply('e')",
    "return redis.error_reply('CODE e')", "return redis.error_reply('')",
    "return {1, {err='nested'}, {ok='st'}}", "return {double=3.5}", "return {double=0.1}",
    "return {map={a=1}}", "return {set={a=true}}", "return {big_number='123456789'}",
    "return {verbatim_string={format='txt', string='hello'}}",
    "redis.setresp(3) return true", "redis.setresp(3) return false",
    "redis.setresp(3) return nil", "redis.setresp(3) return {true, false}",
    "return {1, 2, {double=1.5}, {map={k='v'}}}", "return redis.sha1hex('abc')",
    "return redis.REDIS_VERSION", "return redis.REDIS_VERSION_NUM",
    "return 12345678901234567", "return -0.5", "return 2^63", "return -2^63",
    # Arrays read in one go, long ones (past the one-call cut) item by item,
    # tables whose fields come from a metatable, holes, nesting.
    "local t = {} for i = 1, 1500 do t[i] = i end return t",
    "local t = {} for i = 1, 999 do t[i] = 'x' .. i end t[1000] = {i = 1} t[1001] = 'e' return t",
    "return setmetatable({}, {__index = function(_, k) if k == 'ok' then return 'meta' end end})",
    "return setmetatable({}, {__index = function(_, k) if type(k) == 'number' and k < 4 "
    "then return k * 10 end end})",
    "return setmetatable({1, 2}, {__index = {err = 'from meta'}})",
    "return {1, 2, nil, 4}", "return {nil, 2}", "return {{}, {{}}, {ok = 'x', 5}}",
    "return {err = {}, ok = 'the ok field'}", "return {ok = 5, 'array'}",
    "return {double = 'x', 7}", "return {verbatim_string = {format = 'txt'}, 'arr'}",
    "return {map = 5, set = {a = true}}", "return {redis.call('ping'), 'b', {map = {}}}",
    "local t = {} for i = 1, 1200 do t[i] = i end "
    "return setmetatable(t, {__index = function(_, k) return 'meta' end})",
    "return {verbatim_string = setmetatable({}, {__index = {format = 'txt', string = 's'}}), 1}",
    "return {map = setmetatable({}, {__index = {a = 1}})}",
]


@pytest.mark.parametrize("resp3", [False, True], ids=["resp2", "resp3"])
def test_return_values(pair, resp3):
    same(pair, [ev(s) for s in RETURNS], resp3=resp3)


CALL_REPLIES = [
    "redis.call('set', 'k', 'v') return redis.call('get', 'k')",
    "return redis.call('get', 'missing')",
    "return redis.call('set', 'k', 'v')",
    "return redis.call('ping')",
    "return redis.call('incr', 'counter')",
    "return redis.call('exists', 'k', 'missing')",
    "return redis.call('type', 'k')",
    "redis.call('del', 'h') redis.call('hset', 'h', 'f', '1') return redis.call('hgetall', 'h')",
    "return redis.call('hget', 'h', 'nofield')",
    "redis.call('del', 's') redis.call('sadd', 's', 'only') return redis.call('smembers', 's')",
    "redis.call('del', 'z') redis.call('zadd', 'z', 1.5, 'a', 2, 'b') "
    "return redis.call('zrange', 'z', 0, -1, 'withscores')",
    "return redis.call('zscore', 'z', 'a')",
    "return redis.call('zscore', 'z', 'missing')",
    "return redis.call('incrbyfloat', 'fl', '1.5')",
    "redis.call('del', 'l') redis.call('rpush', 'l', 'a', 'b', 'c') "
    "return redis.call('lrange', 'l', 0, -1)",
    "return redis.call('lpop', 'nolist')",
    "return redis.call('blpop', 'nolist', 0)",
    "return redis.call('mget', 'k', 'missing', 'counter')",
    "return redis.call('echo', 'hello')",
    "return type(redis.call('get', 'missing'))",
    "return redis.call('set', 'n', 3.0)",
    "redis.call('set', 'n', 0.1) return redis.call('get', 'n')",
    "redis.call('set', 'n', 1e20) return redis.call('get', 'n')",
    "redis.call('set', 'n', 2^63) return redis.call('get', 'n')",
    "redis.call('set', 'n', 123456789012) return redis.call('get', 'n')",
    "return redis.call('GET', 'k')",
    "local r = redis.call('set', 'k', 'v') return type(r) .. ':' .. r.ok",
    # Every status reply is a table of its own (hakv hands them out of a pool).
    "local a = redis.call('set', 'k', 'v') a.ok = 'changed' local b = redis.call('set', 'k', 'v') "
    "return {a.ok, b.ok, tostring(rawequal(a, b))}",
    "local t = {} for i = 1, 100 do t[i] = redis.call('set', 'k', i) end t[50].ok = 'x' "
    "t[51].extra = 1 return {t[1].ok, t[50].ok, t[51].ok, t[52].extra, t[100].ok, #t}",
    "local t = {} for i = 1, 40 do t[i] = redis.call('ping') end t[1].ok = 'y' "
    "return {t[1].ok, t[2].ok, t[40].ok}",
    "return redis.pcall('incr', 'k')",
    "local r = redis.pcall('incr', 'k') return r.err",
    "return redis.call('select', 1)",
    # Arrays and maps with and without non-string items (strings-only ones
    # take a shortcut), nested arrays.
    "return redis.call('hmget', 'h', 'f', 'nofield')",
    "redis.call('del', 'h2') redis.call('hset', 'h2', 'a', '1', 'b', '2') "
    "return redis.call('hgetall', 'h2')",
    "return redis.call('config', 'get', 'maxmemory')",
    "redis.call('select', 9) redis.call('flushdb') redis.call('set', 'a', '1') "
    "return redis.call('scan', 0)",
    "redis.call('select', 2) redis.call('set', 'indb2', 'x') return redis.call('dbsize')",
]


@pytest.mark.parametrize("resp", ["2", "3", "setresp3"])
def test_call_replies(pair, resp):
    prefix = "redis.setresp(3) " if resp == "setresp3" else ""
    same(pair, [ev(prefix + s) for s in CALL_REPLIES], resp3=resp == "3")


# ------------------------------------------------------------------ errors

ERRORS = [
    "return 1 + nil", "x = 1", "return undefined_global", "return 1 +",
    "return redis.call('set')", "return redis.call('nosuch')", "return redis.call('set', 'a')",
    "redis.call('set', 'str', 'abc') return redis.call('incr', 'str')",
    "return redis.call('subscribe', 'x')", "return redis.call('eval', 'return 1', 0)",
    "return redis.call({})", "return redis.call('set', 'a', {})", "return redis.call()",
    "return redis.call('get', nil)", "return redis.call('get', true)",
    "error('boom')", "error({err='boom'})", "error({err='MY boom'})", "error(12)",
    "error({err=12})", "error('boom', 0)", "error()", "error(true)",
    "\n\nerror('on line 3')", "local function f() error('inner') end\nf()",
    "local function f() redis.call('incr', 'str') end\nf()",
    "local ok, e = pcall(redis.call, 'incr', 'str') return e",
    "local ok, e = pcall(redis.call, 'incr', 'str') return {ok, type(e)}",
    "local ok, e = pcall(error, {err='x'}) return e",
    "local ok, e = pcall(error, {1, 2}) return type(e)",
    "local ok, e = pcall(function() local x = nil + 1 end) return e",
    "local ok, e = pcall(function() redis.call('incr', 'str') end) error(e)",
    "local e = redis.pcall('nosuch') return e.err", "return redis.pcall('set')",
    "return redis.setresp(4)", "return redis.setresp()", "return redis.sha1hex()",
    "return redis.log()", "return redis.log('x', 'y')", "return redis.log(7, 'x')",
    "return redis.set_repl(8)", "return redis.set_repl()", "return redis.status_reply()",
    "return redis.error_reply(5)", "return redis.acl_check_cmd('nosuch')",
    "string.x = 1", "redis.x = 1", "rawset(_G, 'x', 1)", "setmetatable(_G, nil)",
    "return os", "return loadstring('return os')()", "return print", "return python",
    "return cjson.encode(0/0)", "return cjson.encode({[1]=1, [20]=2})",
    "return cjson.encode(function() end)", "return cjson.decode('[1,2')",
    "return cjson.decode('{1:2}')", "return cjson.decode('\"abc')",
    "local ok, e = pcall(cjson.decode, '[') return e", "return cmsgpack.pack()",
    "return bit.band('x')", "return struct.pack('y', 1)", "return struct.unpack('i', 'ab')",
]


def test_errors(pair):
    same(pair, [ev(s) for s in ERRORS])


def test_eval_arguments_and_cache(pair):
    one = "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"  # sha1("return 1")
    same(pair, [
        ("SCRIPT", "FLUSH"),
        ("EVAL", "return 1", "-1"), ("EVAL", "return 1", "2", "a"), ("EVAL", "return 1", "x"),
        ("EVAL", "return +", "x"), ("EVAL", "return +", "5"), ("EVAL", "return 1"),
        ("EVALSHA", one, "0"), ("SCRIPT", "EXISTS", one, one.upper(), "abc"),
        ("SCRIPT", "LOAD", "return 1"), ("EVALSHA", one, "0"), ("EVALSHA", one.upper(), "0"),
        ("EVALSHA", one, "x"), ("EVALSHA", "abc", "5"), ("EVALSHA_RO", one, "0"),
        ("SCRIPT", "LOAD", "return +"), ("SCRIPT", "EXISTS"),
        ("SCRIPT", "FLUSH", "ASYNC"), ("SCRIPT", "EXISTS", one), ("EVALSHA", one, "0"),
        ("SCRIPT", "FLUSH", "bad"), ("SCRIPT", "FLUSH", "a", "b"), ("SCRIPT", "KILL"),
        ("FUNCTION", "KILL"), ("SCRIPT", "NOSUCH"),
        ("EVAL", "return {KEYS[1], KEYS[2], ARGV[1], ARGV[2], #KEYS, #ARGV}", "2",
         "k1", "k2", "a1", "a2"),
        ("EVAL", "return #KEYS + #ARGV", "0"),
        ("EVAL_RO", "return redis.call('set', 'a', 'b')", "0"),
        ("EVAL_RO", "return redis.call('get', 'a')", "0"),
        ("EVAL", "#!lua flags=no-writes\nreturn redis.call('set', 'a', 'b')", "0"),
        ("EVAL", "#!lua\nreturn 1 + nil", "0"),
        ("EVAL", "#!lua flags=bogus\nreturn 1", "0"),
        ("EVAL", "#!lua foo=bar\nreturn 1", "0"),
        ("EVAL", "#!luax\nreturn 1", "0"),
        ("EVAL", "#!lua\nreturn redis.call('set', 'a', 'b')", "0"),
        ("EVAL_RO", "#!lua\nreturn 1", "0"),
        ("EVAL_RO", "#!lua flags=no-writes\nreturn 1", "0"),
        ("EVAL", "#!lua flags=no-writes,allow-oom\nreturn 3", "0"),
        ("EVAL", "#!lua\nreturn ", "0"),
        ("SCRIPT", "LOAD", "#!lua flags=bogus\nreturn 1"),
    ])


# Every KEYS/ARGV split (no key, one key: the varargs fast paths; more keys)
# with and without arguments, in EVAL and FCALL; redis.call arguments that are
# numbers or not strings; replies of each kind through call and pcall.
SPLIT = ("return {#KEYS, #ARGV, KEYS[1] or 'nil', KEYS[#KEYS] or 'nil', ARGV[1] or 'nil', "
         "ARGV[#ARGV] or 'nil'}")
SPLIT_LIB = ("#!lua name=splitlib\nredis.register_function('split', function(keys, args) "
             "return {#keys, #args, keys[1] or 'nil', args[#args] or 'nil'} end)")


def test_keys_argv_split_and_call_arguments(pair):
    same(pair, [
        ("EVAL", SPLIT, "0"), ("EVAL", SPLIT, "0", "a"), ("EVAL", SPLIT, "0", "a", "b", "c"),
        ("EVAL", SPLIT, "1", "k"), ("EVAL", SPLIT, "1", "k", "a"),
        ("EVAL", SPLIT, "1", "k", "a", "b", "c"), ("EVAL", SPLIT, "2", "k1", "k2"),
        ("EVAL", SPLIT, "3", "k1", "k2", "k3", "a"), ("EVAL", SPLIT, "01", "k", "a"),
        ("EVAL", SPLIT, "2", "k"), ("EVAL", SPLIT, "31", "k"),
        ("EVAL", "return KEYS[1]", "1", ""), ("EVAL", "return ARGV[2]", "1", "k", "", "x"),
        ("FUNCTION", "LOAD", "REPLACE", SPLIT_LIB),
        ("FCALL", "split", "0"), ("FCALL", "split", "0", "a", "b"), ("FCALL", "split", "1", "k"),
        ("FCALL", "split", "1", "k", "a", "b"), ("FCALL", "split", "2", "k1", "k2", "a"),
        ("FUNCTION", "DELETE", "splitlib"),
        ev("redis.call('set', KEYS[1], 42) return redis.call('get', KEYS[1])", "sk", numkeys=1),
        ev("redis.call('set', KEYS[1], 1.5) return redis.call('get', KEYS[1])", "sk", numkeys=1),
        ev("redis.call('set', KEYS[1], -0.25e10) return redis.call('get', KEYS[1])", "sk",
           numkeys=1),
        ev("return redis.call('incrby', KEYS[1], 3)", "ik", numkeys=1),
        ev("return redis.call('SET', KEYS[1], 'v')", "sk", numkeys=1),
        ev("return redis.call('Get', KEYS[1])", "sk", numkeys=1),
        ev("return redis.call('set', KEYS[1], true)", "sk", numkeys=1),
        ev("return redis.pcall('set', KEYS[1], {})", "sk", numkeys=1),
        ev("return redis.pcall('set', KEYS[1], 'v')", "sk", numkeys=1),
        ev("return redis.pcall('ping')"), ev("return redis.pcall('get', 'nokey')"),
        ev("return redis.pcall('incr', KEYS[1])", "sk", numkeys=1),
        ev("return redis.pcall()"), ev("return redis.pcall('nosuch', 1)"),
        ev("return redis.pcall('get')"), ev("return redis.pcall('object', 'nosuch')"),
        ev("return redis.call('object', 'encoding', KEYS[1])", "sk", numkeys=1),
        ev("return redis.call('config', 'get', 'maxmemory')"),
        ev("return {redis.call('set', 'a', 'b'), redis.call('ping'), redis.call('lpush', 'l', 1)}"),
        ev("return redis.pcall('eval', 'return 1', 0)"), ev("return redis.call('del', 'l', 'a')"),
    ])


def test_transactions_with_scripts(pair):
    same(pair, [
        ("MULTI",), ev("return redis.call('incr', 'mc')"), ev("return 1 + nil"),
        ("EVAL", "return 1", "x"), ("EXEC",),
        ("MULTI",), ("EVAL", "return 1"), ("EXEC",),
    ])


SANDBOX = [
    "local t={} for k,v in pairs(_G) do t[#t+1]=k..':'..type(v) end table.sort(t) return t",
    "local t={} for k,v in pairs(redis) do t[#t+1]=k..':'..type(v) end table.sort(t) return t",
    "local t={} for k in pairs(string) do t[#t+1]=k end table.sort(t) return t",
    "KEYS[1] = 'a' return KEYS[1]", "return getmetatable(_G)",
    "return getmetatable('').__index == string", "return ('abc'):upper()",
    "return loadstring('return 1 + 1')()", "return type(loadstring)",
    "local s = 0 for i, v in ipairs({1, 2, 3}) do s = s + v end return s",
    "return table.concat({'a', 'b'}, '-')", "return string.format('%05.1f', 3.14159)",
    "return math.floor(3.7)", "return type(cjson.null)", "return type(redis.call)",
    "local co = coroutine.wrap(function() coroutine.yield(1) end) return co()",
    "return select('#', 1, 2, 3)", "return tonumber('0x10')", "return tostring(1.5)",
    "return unpack({1, 2, 3})",
]


def test_sandbox(pair):
    same(pair, [ev(s) for s in SANDBOX])


LIBRARIES = [
    "return cjson.encode({1, 2, 3, 'a', true, false, cjson.null})",
    "return cjson.encode({a=1})", "return cjson.encode({})",
    "return cjson.encode('a/b\"c\\\\d\\n\\1\\127\\200')",
    "return cjson.encode({1.5, 1e15, 1e14, 0.1, 123456789012345})",
    "return cjson.encode({[1]=1, [3]=3})", "return cjson.encode({[1]=1, x=2})",
    "return cjson.encode({b=1, a=2, c={x=1, y=2, z=3}, d='e'})",
    "return cjson.encode(cjson.decode('{\"name\":\"x\",\"age\":3,\"tags\":[\"a\",\"b\"],"
    "\"nested\":{\"k\":true}}'))",
    "local t = cjson.decode('{\"a\":[1,2,{\"b\":null}],\"c\":\"\\\\u00e9\\\\ud83d\\\\ude00\"}') "
    "return {t.a[1], t.a[3].b == cjson.null, t.c}",
    "return cjson.decode('[1e5, -0, 0x10]')", "return tostring(cjson.decode('1.5'))",
    "return cmsgpack.pack({1, 2, 3}, 'abc', {a=1}, true, false, 1.5, 0.1, -1, -33, -200, 200, "
    "70000, 5000000000, -5000000000, string.rep('x', 40), {})",
    "local t = {cmsgpack.unpack(cmsgpack.pack({1, 2, {3, 4}}, 'abc', 7, -2.5))} "
    "return {#t, t[1][3][2], t[2], t[3], tostring(t[4])}",
    "return {cmsgpack.unpack_one(cmsgpack.pack(1, 2, 3), 0)}",
    "return {cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), 2, 0)}",
    "local t = {} for i = 1, 20 do t = {t} end return cmsgpack.pack(t)",
    "return {bit.tobit(2^32 + 5), bit.tobit(1.5), bit.tobit(2.5), bit.tohex(255), "
    "bit.tohex(-1, -4), bit.band(0xff, 0x0f0), bit.bnot(0), bit.lshift(1, 33), "
    "bit.rshift(-1, 28), bit.arshift(-256, 4), bit.rol(0x12345678, 8), bit.bswap(0x12345678), "
    "bit.bor(1, 2, 4, 8), bit.bxor(5, 3)}",
    "return {struct.pack('>i2<I4bBhHlLfdsc3', -2, 7, -1, 255, -300, 300, -5, 5, 1.5, 2.5, "
    "'zz', 'abc')}",
    "return {struct.unpack('>i2<I4', struct.pack('>i2<I4', -2, 7))}",
    "return struct.size('>i2<I4bBhHlLfd')",
    "return {struct.unpack('!4 b i', struct.pack('!4 b i', 1, 2))}",
    "return {struct.unpack('bc0', struct.pack('bc0', 3, 'xyz'))}",
]


def test_libraries(pair):
    same(pair, [ev(s) for s in LIBRARIES])


# ------------------------------------------------------------------ functions

LIB = """#!lua name=mylib
redis.register_function('f1', function(keys, args) return redis.call('get', keys[1]) end)
redis.register_function{function_name='f2', callback=function(keys, args) return args[1] end,
  flags={'no-writes'}, description='second'}
redis.register_function('boom', function(keys, args) return 1 + nil end)
redis.register_function('callerr', function(keys, args) return redis.call('incr', 'fstr') end)
redis.register_function('nokeys', function(keys, args) return KEYS end)
redis.register_function{function_name='ro', callback=function(keys, args)
  return redis.call('set', 'a', 'b') end, flags={'no-writes'}}
redis.register_function('statuses', function(keys, args)
  local a = redis.call('set', 'fs', '1') a.ok = 'x' local b = redis.call('set', 'fs', '2')
  return {a.ok, b.ok, redis.call('mget', 'fs', 'nofs')} end)
"""

OTHER = """#!lua name=other
redis.register_function{function_name='o1', callback=function() return 1 end,
  flags={'allow-stale', 'no-writes', 'no-cluster', 'allow-oom', 'allow-cross-slot-keys'}}
"""


@pytest.mark.parametrize("resp3", [False, True], ids=["resp2", "resp3"])
def test_functions(pair, resp3):
    same(pair, [
        ("FUNCTION", "FLUSH"), ("SET", "fstr", "abc"), ("SET", "fk", "fv"),
        ("FUNCTION", "LOAD", LIB), ("FUNCTION", "LOAD", LIB), ("FUNCTION", "LOAD", OTHER),
        ("FUNCTION", "LIST", "LIBRARYNAME", "other"),
        ("FUNCTION", "LIST", "WITHCODE", "LIBRARYNAME", "oth*"),
        ("FUNCTION", "LIST", "LIBRARYNAME", "nomatch"), ("FUNCTION", "STATS"),
        ("FCALL", "f1", "1", "fk"), ("FCALL_RO", "f1", "1", "fk"), ("FCALL_RO", "f2", "0", "z"),
        ("FCALL", "boom", "0"), ("FCALL", "callerr", "0"), ("FCALL", "nokeys", "0"),
        ("FCALL", "ro", "0"), ("FCALL", "nosuch", "0"), ("FCALL", "f1", "2", "a"),
        ("FCALL", "f1", "-1"), ("FCALL", "f1", "x"), ("FCALL", "o1", "0"),
        ("FCALL", "statuses", "0"),
        ("FUNCTION", "LOAD", "REPLACE", LIB), ("FUNCTION", "LOAD", "BADOPT", LIB),
        ("FUNCTION", "DELETE", "nosuch"), ("FUNCTION", "DELETE", "other"),
        ("FUNCTION", "LIST", "LIBRARYNAME"), ("FUNCTION", "LIST", "bad"),
        ("FUNCTION", "LIST", "WITHCODE", "WITHCODE"),
        ("FUNCTION", "FLUSH", "bad"), ("FUNCTION", "RESTORE", "abc"),
        ("FUNCTION", "RESTORE", "abc", "BADPOLICY"), ("FUNCTION", "FLUSH", "ASYNC"),
        ("FUNCTION", "LIST"),
    ], resp3=resp3)


LOAD_ERRORS = [
    "#!lua name=lib2\nredis.call('ping')", "#!lua name=lib2\nreturn 1", "return 1",
    "#!foo name=x\nreturn 1", "#!lua name=lib3 foo=bar\nreturn 1", "#!lua\nreturn 1",
    "#!lua name=lib5\nredis.register_function('f@', function() return 1 end)",
    "#!lua name=lib6\nredis.register_function('g', function() return 1 end)\n"
    "redis.register_function('g', function() return 1 end)",
    "#!lua name=lib7\nlocal x = \n", "#!lua name=lib8\nx = 1",
    "#!lua name=lib9\nredis.register_function{function_name='h', callback=function() end, "
    "flags={'bogus'}}",
    "#!lua name=l@b\nreturn 1", "#!lua name=lib11\nredis.register_function('h5', 'notfunc')",
    "#!lua name=lib12\nlocal x = string",
    "#!lua name=lib13\nlocal x = redis.setresp",
    "#!lua name=slow\nwhile true do end",
]


def test_function_load_errors(pair):
    same(pair, [("FUNCTION", "FLUSH")] + [("FUNCTION", "LOAD", code) for code in LOAD_ERRORS])


def test_function_dump_restore_across_servers(pair):
    real, ours = pair
    dumps = []
    for proc in pair:
        conn = RawConn(proc.port)
        conn("FUNCTION", "FLUSH")
        conn("FUNCTION", "LOAD", LIB)
        conn("FUNCTION", "LOAD", OTHER)
        conn.send("FUNCTION", "DUMP")
        raw = conn.read_reply()
        header, _, body = raw.partition(b"\r\n")
        dumps.append(body[:int(header[1:])])
        conn.close()
    # Each server restores the other's payload (and its own, with each policy).
    for proc, payload in ((real, dumps[1]), (ours, dumps[0])):
        conn = RawConn(proc.port)
        conn("FUNCTION", "FLUSH")
        assert conn("FUNCTION", "RESTORE", payload) == b"+OK\r\n"
        conn.close()
    same(pair, [
        ("FUNCTION", "LIST", "WITHCODE", "LIBRARYNAME", "other"),
        ("FCALL", "o1", "0"),
        # Only one library clashes: Redis names the first clash it finds in a hash table.
        ("FUNCTION", "DELETE", "other"),
        ("FUNCTION", "RESTORE", dumps[0]),
        ("FUNCTION", "RESTORE", dumps[0], "REPLACE"),
        ("FUNCTION", "RESTORE", dumps[0], "FLUSH"),
        ("FUNCTION", "RESTORE", b"\x00" + dumps[0][1:]),
        ("FUNCTION", "STATS"),
    ])


# ------------------------------------------------------------------ runaway scripts

def _busy_session(port: int, script: str, writes: bool) -> list:
    """Start a runaway script; from other connections (an existing one and a
    new one) see what the server answers; end it with SCRIPT KILL or
    SHUTDOWN NOSAVE. Returns the replies seen."""
    setup = RawConn(port)
    setup("CONFIG", "SET", "busy-reply-threshold", "100")
    existing = RawConn(port)
    runner = RawConn(port)
    runner.send("EVAL", script, "0")
    time.sleep(0.4)
    seen = [existing("GET", "x"), existing("PING")]
    fresh = RawConn(port)
    seen += [fresh("GET", "x"), fresh("FUNCTION", "STATS"), fresh("FUNCTION", "KILL"),
             fresh("SHUTDOWN"), fresh("MULTI"), fresh("GET", "x"), fresh("EXEC")]
    seen.append(fresh("SCRIPT", "KILL"))
    if not writes:
        seen.append(runner.read_reply())
        seen.append(fresh("PING"))
        setup("CONFIG", "SET", "busy-reply-threshold", "5000")
    else:
        fresh.send("SHUTDOWN", "NOSAVE")
        done = threading.Event()

        def wait_close():
            try:
                runner.sock.settimeout(10)
                while runner.sock.recv(1 << 16):
                    pass
            except OSError:
                pass
            done.set()
        threading.Thread(target=wait_close, daemon=True).start()
        assert done.wait(15), "the server did not shut down"
    for c in (setup, existing, runner, fresh):
        c.close()
    return seen


def test_runaway_script_and_kill(pair):
    results = [_busy_session(proc.port, "while true do end", writes=False) for proc in pair]
    assert results[1] == results[0]
    assert results[0][0].startswith(b"-BUSY")
    assert results[0][-2].startswith(b"-ERR Script killed by user with SCRIPT KILL")


def test_runaway_script_that_wrote_is_unkillable(tmp_path):
    procs = [redis_server(str(tmp_path / "redis")).start(),
             hakv_server(str(tmp_path / "hakv")).start()]
    try:
        results = [_busy_session(p.port, "redis.call('set', 'x', '1') while true do end",
                                 writes=True) for p in procs]
        assert results[1] == results[0]
        assert results[0][-1].startswith(b"-UNKILLABLE")
        for p in procs:
            p.proc.wait(10)
            assert not p.alive()
    finally:
        for p in procs:
            p.stop()
