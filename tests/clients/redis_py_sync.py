"""redis-py (sync): every family, pub/sub, MULTI/EXEC, pipelines, Lua, RESP3, raw input.

usage: redis_py_sync.py HOST PORT   (prints the transcript; exit 1 on any mismatch)
"""

from __future__ import annotations

import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import redis  # noqa: E402
from redis.exceptions import ResponseError, WatchError  # noqa: E402

from transcript import Transcript, attempt, get_connection  # noqa: E402

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"


def err(text):
    return lambda got: isinstance(got, ResponseError) and str(got) == text


def err_prefix(text):
    return lambda got: isinstance(got, ResponseError) and str(got).startswith(text)


def main() -> int:
    host, port = sys.argv[1], int(sys.argv[2])
    t = Transcript("redis-py sync %s" % redis.__version__)
    r = redis.Redis(host=host, port=port, protocol=2, client_name="hakv-py-sync",
                    socket_timeout=10)
    t.check("flushdb", r.flushdb(), True)
    t.check("client getname (set at connect)", r.client_getname(), "hakv-py-sync")
    info = r.execute_command("CLIENT", "INFO").decode()
    fields = dict(f.split("=", 1) for f in info.split())
    t.check("client info name/db/resp/flags",
            [fields[k] for k in ("name", "db", "resp", "flags", "cmd")],
            ["hakv-py-sync", "0", "2", "N", "client|info"])
    t.seen("client setinfo lib-name", attempt(r.execute_command, "CLIENT", "SETINFO",
                                              "LIB-NAME", "hakv-compat"))
    t.seen("client setinfo bad name", attempt(r.execute_command, "CLIENT", "SETINFO",
                                              "LIB-NAME", "has space"))
    t.check("readonly", attempt(r.execute_command, "READONLY"),
            err("This instance has cluster support disabled"))
    t.check("readwrite", attempt(r.execute_command, "READWRITE"),
            err("This instance has cluster support disabled"))
    # what cluster-aware clients and tools probe on a standalone server
    t.check("cluster info", attempt(r.execute_command, "CLUSTER", "INFO"),
            err("This instance has cluster support disabled"))
    t.check("cluster slots", attempt(r.execute_command, "CLUSTER", "SLOTS"),
            err("This instance has cluster support disabled"))
    t.check("cluster unknown", attempt(r.execute_command, "CLUSTER", "NOPE"),
            err("unknown subcommand 'NOPE'. Try CLUSTER HELP."))
    t.check("module list", r.execute_command("MODULE", "LIST"), [])

    # strings
    t.check("set", r.set("c:s", "v1"), True)
    t.check("get", r.get("c:s"), b"v1")
    t.check("get missing", r.get("c:missing"), None)
    t.check("set nx (exists)", r.set("c:s", "v2", nx=True), None)
    t.check("set xx get", r.set("c:s", "v2", xx=True, get=True), b"v1")
    t.check("append", r.append("c:s", "+tail"), 7)
    t.check("getrange", r.getrange("c:s", 1, 3), b"2+t")
    t.check("strlen", r.strlen("c:s"), 7)
    t.check("incr", r.incr("c:n"), 1)
    t.check("incrby", r.incrby("c:n", 41), 42)
    t.check("decr", r.decr("c:n"), 41)
    t.check("incrbyfloat", r.incrbyfloat("c:f", "2.5"), 2.5)
    t.check("incr not integer", attempt(r.incr, "c:s"),
            err("value is not an integer or out of range"))
    t.check("mset", r.mset({"c:m1": "a", "c:m2": "b"}), True)
    t.check("mget", r.mget("c:m1", "c:missing", "c:m2"), [b"a", None, b"b"])
    binary = b"\x00\r\n\xff*3\r\n$1\r\n"
    t.check("set binary", r.set("c:bin", binary), True)
    t.check("get binary", r.get("c:bin"), binary)
    big = os.urandom(64) * 2048
    t.check("set 128KiB", r.set("c:big", big), True)
    t.check("get 128KiB", r.get("c:big") == big, True)
    t.check("set ex 0", attempt(r.set, "c:s", "x", ex=0),
            err("invalid expire time in 'set' command"))

    # hashes
    t.check("hset", r.hset("c:h", mapping={"f1": "1", "f2": "two", "f3": "3"}), 3)
    t.check("hget", r.hget("c:h", "f2"), b"two")
    t.check("hgetall", r.hgetall("c:h"), {b"f1": b"1", b"f2": b"two", b"f3": b"3"})
    t.check("hincrby", r.hincrby("c:h", "f1", 9), 10)
    t.check("hincrbyfloat", r.hincrbyfloat("c:h", "f3", 0.25), 3.25)
    t.check("hdel", r.hdel("c:h", "f2", "nope"), 1)
    t.check("hexists", r.hexists("c:h", "f2"), False)
    t.check("hlen", r.hlen("c:h"), 2)
    t.check("hkeys", r.hkeys("c:h"), [b"f1", b"f3"])
    t.check("hmget", r.hmget("c:h", ["f1", "zz"]), [b"10", None])
    t.check("hget on string", attempt(r.hget, "c:s", "f"), err(WRONGTYPE))

    # lists
    t.check("rpush", r.rpush("c:l", "a", "b", "c"), 3)
    t.check("lpush", r.lpush("c:l", "z"), 4)
    t.check("lrange", r.lrange("c:l", 0, -1), [b"z", b"a", b"b", b"c"])
    t.check("linsert", r.linsert("c:l", "before", "b", "a2"), 5)
    t.check("lindex", r.lindex("c:l", -1), b"c")
    t.check("lpos", r.lpos("c:l", "b"), 3)
    t.check("lpop", r.lpop("c:l"), b"z")
    t.check("rpop count", r.rpop("c:l", 2), [b"c", b"b"])
    t.check("llen", r.llen("c:l"), 2)
    t.check("lmove", r.lmove("c:l", "c:l2", "LEFT", "RIGHT"), b"a")
    t.check("blpop ready", r.blpop(["c:l"], 1), (b"c:l", b"a2"))
    t.check("list emptied", r.exists("c:l"), 0)
    t.check("lpush on hash", attempt(r.lpush, "c:h", "x"), err(WRONGTYPE))

    # sets
    t.check("sadd", r.sadd("c:set", "a", "b", "c", "a"), 3)
    t.check("sadd 2", r.sadd("c:set2", "b", "c", "d"), 3)
    t.check("smembers", r.smembers("c:set"), {b"a", b"b", b"c"})
    t.check("sismember", r.sismember("c:set", "b"), True)
    t.check("smismember", r.smismember("c:set", ["a", "x"]), [True, False])
    t.check("scard", r.scard("c:set"), 3)
    t.check("sinter", r.sinter("c:set", "c:set2"), {b"b", b"c"})
    t.check("sunionstore", r.sunionstore("c:set3", ["c:set", "c:set2"]), 4)
    t.check("sdiff", r.sdiff("c:set", "c:set2"), {b"a"})
    t.check("srem", r.srem("c:set", "a", "zz"), 1)
    t.check("intset smembers", (r.sadd("c:ints", 5, 1, 3), r.smembers("c:ints")),
            (3, {b"1", b"3", b"5"}))

    # sorted sets
    t.check("zadd", r.zadd("c:z", {"a": 1, "b": 2.5, "c": 3}), 3)
    t.check("zrange withscores", r.zrange("c:z", 0, -1, withscores=True),
            [(b"a", 1.0), (b"b", 2.5), (b"c", 3.0)])
    t.check("zscore", r.zscore("c:z", "b"), 2.5)
    t.check("zincrby", r.zincrby("c:z", 10, "a"), 11.0)
    t.check("zrank", r.zrank("c:z", "a"), 2)
    t.check("zrevrange", r.zrevrange("c:z", 0, 0), [b"a"])
    t.check("zrangebyscore", r.zrangebyscore("c:z", "(2.5", "+inf"), [b"c", b"a"])
    t.check("zcount", r.zcount("c:z", "-inf", 3), 2)
    t.check("zadd xx nx", attempt(r.zadd, "c:z", {"a": 1}, xx=True, nx=True),
            lambda got: isinstance(got, Exception))
    t.check("zadd raw xx nx", attempt(r.execute_command, "ZADD", "c:z", "XX", "NX", 1, "a"),
            err("XX and NX options at the same time are not compatible"))
    t.check("zpopmin", r.zpopmin("c:z"), [(b"b", 2.5)])
    t.check("zcard", r.zcard("c:z"), 2)
    t.check("zscore inf", (r.zadd("c:z", {"inf": "inf"}), r.zscore("c:z", "inf")),
            (1, float("inf")))

    # expiry
    t.check("set ex", r.set("c:e", "v", ex=100), True)
    t.check("ttl in (95,100]", 95 < r.ttl("c:e") <= 100, True)
    t.check("pexpire", r.pexpire("c:e", 50_000), True)
    t.check("pttl in (45000,50000]", 45_000 < r.pttl("c:e") <= 50_000, True)
    t.check("persist", r.persist("c:e"), True)
    t.check("ttl persisted", r.ttl("c:e"), -1)
    t.check("ttl missing", r.ttl("c:missing"), -2)
    t.check("expire missing", r.expire("c:missing", 10), False)
    t.check("set px 50", r.set("c:short", "v", px=50), True)
    time.sleep(0.2)
    t.check("expired get", r.get("c:short"), None)
    t.check("expired exists", r.exists("c:short"), 0)
    t.check("expire nx", r.expire("c:e", 10, nx=True), True)
    t.check("expire nx again", r.expire("c:e", 10, nx=True), False)

    # generic
    t.check("type", [r.type(k) for k in ("c:s", "c:h", "c:l2", "c:set", "c:z", "c:none")],
            [b"string", b"hash", b"list", b"set", b"zset", b"none"])
    t.check("scan match", sorted(r.scan_iter(match="c:set*")), [b"c:set", b"c:set2", b"c:set3"])
    t.check("rename", r.rename("c:set3", "c:set4"), True)
    t.check("unknown command", attempt(r.execute_command, "FOOBAR", "x", "y"),
            err("unknown command 'FOOBAR', with args beginning with: 'x' 'y' "))
    t.check("wrong arity", attempt(r.execute_command, "GET"),
            err("wrong number of arguments for 'get' command"))
    t.check("object help is a list", isinstance(r.execute_command("OBJECT", "HELP"), list), True)

    # pub/sub: a channel and a pattern subscription on one connection
    sub_client = redis.Redis(host=host, port=port, protocol=2, socket_timeout=10)
    p = sub_client.pubsub()
    p.subscribe("c:chan")
    p.psubscribe("c:ch*")
    t.check("subscribe confirm", p.get_message(timeout=2)["type"], "subscribe")
    t.check("psubscribe confirm", p.get_message(timeout=2)["type"], "psubscribe")
    t.check("publish", r.publish("c:chan", "hello"), 2)
    got = [p.get_message(timeout=2) for _ in range(2)]
    t.check("messages", [(m["type"], m["pattern"], m["channel"], m["data"]) for m in got],
            [("message", None, b"c:chan", b"hello"), ("pmessage", b"c:ch*", b"c:chan", b"hello")])
    t.check("pubsub numsub", r.pubsub_numsub("c:chan"), [(b"c:chan", 1)])
    t.check("pubsub numpat", r.pubsub_numpat(), 1)
    t.check("pubsub channels", r.pubsub_channels("c:*"), [b"c:chan"])
    p.unsubscribe()
    p.punsubscribe()
    t.check("unsubscribe confirm", [p.get_message(timeout=2)["type"] for _ in range(2)],
            ["unsubscribe", "punsubscribe"])
    p.close()
    sub_client.close()

    # MULTI/EXEC
    pipe = r.pipeline(transaction=True)
    pipe.set("c:tx", "1").incr("c:tx").lpush("c:tx", "x").get("c:tx")
    res = pipe.execute(raise_on_error=False)
    t.check("multi/exec with a failing command",
            [x if not isinstance(x, Exception) else str(x) for x in res],
            [True, 2, WRONGTYPE, b"2"])
    conn = redis.Redis(host=host, port=port, protocol=2, single_connection_client=True)
    conn.response_callbacks = {}  # raw replies
    t.check("multi", conn.execute_command("MULTI"), b"OK")
    t.check("queued", conn.execute_command("SET", "c:tx2", "v"), b"QUEUED")
    t.check("queued arity error", attempt(conn.execute_command, "SET", "c:tx2"),
            err("wrong number of arguments for 'set' command"))
    t.check("exec after error", attempt(conn.execute_command, "EXEC"),
            err("Transaction discarded because of previous errors."))
    t.check("exec without multi", attempt(conn.execute_command, "EXEC"),
            err("EXEC without MULTI"))
    t.check("discard", (conn.execute_command("MULTI"), conn.execute_command("DISCARD")),
            (b"OK", b"OK"))
    t.check("nested multi", (conn.execute_command("MULTI"),
                             attempt(conn.execute_command, "MULTI"),
                             conn.execute_command("DISCARD")),
            lambda got: str(got[1]) == "MULTI calls can not be nested")
    conn.close()
    # WATCH: another client changes the key, EXEC returns nil
    with r.pipeline() as wp:
        wp.watch("c:w")
        r.set("c:w", "changed")
        wp.multi()
        wp.set("c:w", "mine")
        t.check("watch abort", attempt(wp.execute), WatchError)
    t.check("watched key kept", r.get("c:w"), b"changed")

    # pipelining: a few thousand commands in one round trip
    pipe = r.pipeline(transaction=False)
    for i in range(3000):
        pipe.set("c:p:%d" % i, i)
        pipe.incr("c:p:counter")
    for i in range(0, 3000, 7):
        pipe.get("c:p:%d" % i)
    res = pipe.execute()
    t.check("pipeline sets", all(x is True for x in res[:6000:2]), True)
    t.check("pipeline incrs", res[1:6000:2] == list(range(1, 3001)), True)
    t.check("pipeline gets", res[6000:] == [str(i).encode() for i in range(0, 3000, 7)], True)
    t.check("pipeline replies", len(res), 6000 + len(range(0, 3000, 7)))

    # Lua
    t.check("eval mixed", r.eval("return {1, 'two', ARGV[1], redis.call('get', KEYS[1]), 3.99}",
                                 1, "c:m1", "arg"), [1, b"two", b"arg", b"a", 3])
    t.check("eval nil cuts the table", r.eval("return {1, 2, nil, 4}", 0), [1, 2])
    t.check("eval booleans", [r.eval("return true", 0), r.eval("return false", 0)], [1, None])
    t.check("eval status", r.eval("return redis.status_reply('FINE')", 0), b"FINE")
    t.check("eval error_reply", attempt(r.eval, "return redis.error_reply('MYERR boom')", 0),
            err("MYERR boom"))
    t.check("eval call error", attempt(r.eval, "return redis.call('incr', KEYS[1])", 1, "c:s"),
            err_prefix("value is not an integer or out of range script: "))
    t.check("eval pcall", attempt(r.eval, "return redis.pcall('lpush', KEYS[1], 'x')", 1, "c:s"),
            err(WRONGTYPE))
    sha = r.script_load("return redis.call('incrby', KEYS[1], ARGV[1])")
    t.check("script load", sha, lambda got: re.fullmatch("[0-9a-f]{40}", got))
    t.check("evalsha", r.evalsha(sha, 1, "c:lua", 5), 5)
    t.check("script exists", r.script_exists(sha, "0" * 40), [True, False])
    t.check("evalsha unknown", attempt(r.evalsha, "0" * 40, 0),
            err("No matching script. Please use EVAL."))
    t.check("eval syntax error", attempt(r.eval, "return +", 0),
            err_prefix("Error compiling script"))

    # inline commands and blank lines, sent raw on the client's own connection
    c = get_connection(r.connection_pool)
    try:
        c.send_packed_command([b"SET c:inline hello\r\n\r\n\nECHO \"a b\"\r\nPING\n"])
        t.check("inline replies", [c.read_response() for _ in range(3)], [b"OK", b"a b", b"PONG"])
        c.send_packed_command([b"GET 'c:inline'\r\n"])
        t.check("inline quoted key", c.read_response(), b"hello")
        c.send_packed_command([b"SET \"unbalanced\r\n"])
        t.check("inline unbalanced quotes", attempt(c.read_response),
                err("Protocol error: unbalanced quotes in request"))
    finally:
        c.disconnect()
        r.connection_pool.release(c)

    # RESP3: HELLO at connect, maps, sets, doubles, push messages
    r3 = redis.Redis(host=host, port=port, protocol=3, client_name="hakv-py-sync-3")
    hello = r3.execute_command("HELLO", 3)
    t.seen("hello3", hello)
    t.check("hello3 fields", (hello[b"server"], hello[b"proto"], hello[b"mode"], hello[b"role"]),
            (b"redis", 3, b"standalone", b"master"))
    t.check("resp3 hgetall", r3.hgetall("c:h"), {b"f1": b"10", b"f3": b"3.25"})
    t.check("resp3 smembers", r3.smembers("c:set2"), {b"b", b"c", b"d"})
    t.check("resp3 zscore", r3.zscore("c:z", "c"), 3.0)
    t.check("resp3 zrange withscores", r3.zrange("c:z", 0, 0, withscores=True), [[b"c", 3.0]])
    t.check("resp3 lua double", r3.eval("return {double=3.5}", 0), 3.5)
    t.check("resp3 lua map", r3.eval("return {map={a=1}}", 0), {b"a": 1})
    t.check("resp3 null", r3.get("c:missing"), None)
    t.check("resp3 client info resp", b"resp=3" in r3.execute_command("CLIENT", "INFO"), True)
    t.check("hello 4", attempt(r3.execute_command, "HELLO", 4),
            err("NOPROTO unsupported protocol version"))
    p3 = r3.pubsub()
    p3.subscribe("c:chan3")
    t.check("resp3 subscribe", p3.get_message(timeout=2)["type"], "subscribe")
    t.check("resp3 publish", r3.publish("c:chan3", "m3"), 1)
    m = p3.get_message(timeout=2)
    t.check("resp3 push message", (m["type"], m["channel"], m["data"]),
            ("message", b"c:chan3", b"m3"))
    p3.close()
    r3.close()

    # MONITOR: what another client's connect-time and script commands look like
    with r.monitor() as m:
        other = redis.Redis(host=host, port=port, protocol=2, client_name="hakv-monitored")
        other.set("c:mon", "a b")
        other.eval("return redis.call('get', KEYS[1])", 1, "c:mon")
        other.execute_command("CONFIG", "GET", "maxmemory")  # admin: not shown
        other.ping()
        fed = []
        while not fed or fed[-1][2] != "PING":
            c = m.next_command()
            fed.append((c["db"], c["client_type"], c["command"]))
        other.close()
    t.check("monitor feed", fed, [
        (0, "tcp", "CLIENT SETNAME hakv-monitored"), (0, "tcp", "SET c:mon a b"),
        (0, "tcp", "EVAL return redis.call('get', KEYS[1]) 1 c:mon"), (0, "lua", "get c:mon"),
        (0, "tcp", "PING")])

    t.check("dbsize", r.dbsize(), len(r.keys("*")))
    r.close()
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
