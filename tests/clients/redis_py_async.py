"""redis-py (asyncio): every family, pub/sub, MULTI/EXEC, pipelines, Lua, RESP3, raw input.

usage: redis_py_async.py HOST PORT   (prints the transcript; exit 1 on any mismatch)
"""

from __future__ import annotations

import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import redis  # noqa: E402
import redis.asyncio as aioredis  # noqa: E402
from redis.exceptions import ResponseError, WatchError  # noqa: E402

from transcript import Transcript, attempt_async, get_connection_async  # noqa: E402

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"


def err(text):
    return lambda got: isinstance(got, ResponseError) and str(got) == text


async def main() -> int:
    host, port = sys.argv[1], int(sys.argv[2])
    t = Transcript("redis-py asyncio %s" % redis.__version__)
    r = aioredis.Redis(host=host, port=port, protocol=2, client_name="hakv-py-async")
    t.check("flushdb", await r.flushdb(), True)
    t.check("client getname (set at connect)", await r.client_getname(), "hakv-py-async")
    t.check("readonly", await attempt_async(r.execute_command, "READONLY"),
            err("This instance has cluster support disabled"))
    t.seen("client setinfo lib-ver",
           await attempt_async(r.execute_command, "CLIENT", "SETINFO", "LIB-VER", "1.0"))

    # strings, hashes, lists, sets, sorted sets
    t.check("set/get", (await r.set("a:s", "v"), await r.get("a:s")), (True, b"v"))
    t.check("incrby", await r.incrby("a:n", 7), 7)
    t.check("getdel", await r.getdel("a:s"), b"v")
    t.check("setrange", await r.setrange("a:s2", 3, "xyz"), 6)
    t.check("get padded", await r.get("a:s2"), b"\x00\x00\x00xyz")
    t.check("hset/hgetall", (await r.hset("a:h", mapping={"x": 1, "y": 2}),
                             await r.hgetall("a:h")), (2, {b"x": b"1", b"y": b"2"}))
    t.check("hsetnx", await r.hsetnx("a:h", "x", 9), False)
    t.check("hrandfield count 0", await r.hrandfield("a:h", 0), [])
    t.check("rpush/lrange", (await r.rpush("a:l", *"abcde"), await r.lrange("a:l", 1, -2)),
            (5, [b"b", b"c", b"d"]))
    t.check("ltrim", (await r.ltrim("a:l", 0, 1), await r.lrange("a:l", 0, -1)),
            (True, [b"a", b"b"]))
    t.check("lset out of range", await attempt_async(r.lset, "a:l", 9, "x"),
            err("index out of range"))
    t.check("sadd/smembers", (await r.sadd("a:set", 3, 1, 2), await r.smembers("a:set")),
            (3, {b"1", b"2", b"3"}))
    t.check("spop count 0", await r.spop("a:set", 0), [])
    t.check("zadd/zrange", (await r.zadd("a:z", {"m": 2, "n": 1}),
                            await r.zrange("a:z", 0, -1, withscores=True)),
            (2, [(b"n", 1.0), (b"m", 2.0)]))
    t.check("zrangebylex", (await r.zadd("a:lex", {"a": 0, "b": 0, "c": 0}),
                            await r.zrangebylex("a:lex", "(a", "+")), (3, [b"b", b"c"]))
    t.check("zadd incr nan", await attempt_async(r.execute_command, "ZADD", "a:z", "INCR",
                                                 "inf", "m", ), lambda got: True)
    t.check("zmscore", await r.zmscore("a:z", ["m", "zz"]), lambda got: got[1] is None)
    t.check("sadd on zset", await attempt_async(r.sadd, "a:z", "x"), err(WRONGTYPE))

    # expiry
    t.check("setex/ttl", (await r.set("a:e", "v", ex=30), 25 < await r.ttl("a:e") <= 30),
            (True, True))
    t.check("pexpire short", await r.pexpire("a:e", 40), True)
    await asyncio.sleep(0.2)
    t.check("expired", (await r.get("a:e"), await r.exists("a:e")), (None, 0))
    t.check("expire gt on persistent", (await r.set("a:p", 1),
                                        await r.expire("a:p", 10, gt=True)), (True, False))

    # pub/sub while other commands flow on another connection
    sub = aioredis.Redis(host=host, port=port, protocol=2)
    ps = sub.pubsub()
    await ps.subscribe("a:news", "a:other")
    confirms = [await ps.get_message(timeout=2) for _ in range(2)]
    t.check("subscribe confirms", [(m["type"], m["channel"], m["data"]) for m in confirms],
            [("subscribe", b"a:news", 1), ("subscribe", b"a:other", 2)])
    t.check("publish", await r.publish("a:news", "n1"), 1)
    t.check("publish nobody", await r.publish("a:nobody", "x"), 0)
    m = await ps.get_message(timeout=2)
    t.check("message", (m["type"], m["channel"], m["data"]), ("message", b"a:news", b"n1"))
    await ps.unsubscribe("a:news")
    m = await ps.get_message(timeout=2)
    t.check("unsubscribe", (m["type"], m["channel"], m["data"]), ("unsubscribe", b"a:news", 1))
    await ps.aclose()
    await sub.aclose()

    # MULTI/EXEC and WATCH
    async with r.pipeline(transaction=True) as pipe:
        pipe.incr("a:tx").incr("a:tx").hset("a:tx", "f", "v").get("a:tx")
        res = await pipe.execute(raise_on_error=False)
    t.check("multi/exec", [str(x) if isinstance(x, Exception) else x for x in res],
            [1, 2, WRONGTYPE, b"2"])
    async with r.pipeline() as wp:
        await wp.watch("a:w")
        await r.set("a:w", "other")
        wp.multi()
        wp.set("a:w", "mine")
        t.check("watch abort", await attempt_async(wp.execute), WatchError)

    # pipelining several thousand commands, and many concurrent callers
    async with r.pipeline(transaction=False) as pipe:
        for i in range(2500):
            pipe.rpush("a:big", i)
        pipe.llen("a:big")
        pipe.lrange("a:big", 2495, -1)
        res = await pipe.execute()
    t.check("pipeline rpush", res[:2500] == list(range(1, 2501)), True)
    t.check("pipeline tail", res[2500:], [2500, [b"2495", b"2496", b"2497", b"2498", b"2499"]])
    counts = await asyncio.gather(*(r.incr("a:concurrent") for _ in range(40)))
    t.check("concurrent incr", sorted(counts), list(range(1, 41)))

    # Lua
    t.check("eval", await r.eval("return {KEYS[1], ARGV[1], #ARGV}", 1, "k", "a1", "a2"),
            [b"k", b"a1", 2])
    t.check("eval redis.call table", await r.eval(
        "return redis.call('zrange', KEYS[1], 0, -1, 'withscores')", 1, "a:z"),
        lambda got: isinstance(got, list))
    t.check("eval error", await attempt_async(r.eval, "error('boom')", 0),
            lambda got: isinstance(got, ResponseError))
    t.check("eval noscript command", await attempt_async(
        r.eval, "return redis.call('eval', 'return 1', 0)", 0),
        lambda got: isinstance(got, ResponseError))
    sha = await r.script_load("return ARGV[1] .. ARGV[1]")
    t.check("evalsha", await r.evalsha(sha, 0, "ab"), b"abab")

    # raw: an inline command on the client's own connection
    conn = await get_connection_async(r.connection_pool)
    try:
        await conn.send_packed_command([b"ECHO inline\r\nEXISTS a:p a:p missing\r\n"])
        t.check("inline", [await conn.read_response() for _ in range(2)], [b"inline", 2])
    finally:
        await conn.disconnect()
        await r.connection_pool.release(conn)

    # RESP3
    r3 = aioredis.Redis(host=host, port=port, protocol=3)
    hello = await r3.execute_command("HELLO", 3, "SETNAME", "hakv-py-async-3")
    t.seen("hello3 setname", hello)
    t.check("hello3 proto", hello[b"proto"], 3)
    t.check("hello3 name", await r3.client_getname(), b"hakv-py-async-3")
    t.check("resp3 hgetall", await r3.hgetall("a:h"), {b"x": b"1", b"y": b"2"})
    t.check("resp3 zrange", await r3.zrange("a:z", 0, -1, withscores=True),
            lambda got: isinstance(got, list) and isinstance(got[0][1], float))
    t.check("resp3 smembers", await r3.smembers("a:set"), {b"1", b"2", b"3"})
    back = await r3.execute_command("HELLO", 2)  # a flat RESP2 array now
    t.check("resp3 hello 2 back", back[back.index(b"proto") + 1], 2)
    await r3.aclose()
    t.check("hello auth without password", await attempt_async(
        r.execute_command, "HELLO", 2, "AUTH", "default"),
        err("Syntax error in HELLO option 'AUTH'"))
    t.check("hello bad version", await attempt_async(r.execute_command, "HELLO", "x"),
            err("Protocol version is not an integer or out of range"))

    t.check("dbsize", await r.dbsize(), len(await r.keys("*")))
    await r.aclose()
    return t.done()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
