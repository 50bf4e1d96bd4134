"""Lua scripting on hakv: atomicity, runaway scripts (BUSY, SCRIPT KILL,
SHUTDOWN NOSAVE, connections made meanwhile), effects replication (the
commands a script ran, wrapped in MULTI/EXEC, reach the AOF and replicas),
restarts from the AOF and from the RDB, MONITOR, the script cache and INFO.

Replies compared against real Redis are in tests/interop/test_scripting_diff.py.
"""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest
import redis

from replication_support import assert_same_contents, wait_caught_up, wait_link_up

FAST_SYNC = ("--repl-diskless-sync-delay", "0")

INCR_TWICE = "redis.call('incr', KEYS[1]) return redis.call('incr', KEYS[1])"


def test_eval_basics(r):
    assert r.eval("return {KEYS[1], ARGV[1], #KEYS, #ARGV}", 2, "k1", "k2", "a1") == \
        [b"k1", b"a1", 2, 1]
    sha = r.script_load("return redis.call('set', KEYS[1], ARGV[1])")
    assert r.evalsha(sha, 1, "key", "value") == b"OK"
    assert r.get("key") == b"value"
    assert r.script_exists(sha, "0" * 40) == [True, False]
    assert r.evalsha(sha.upper(), 1, "key", "v2") == b"OK"
    r.script_flush()
    with pytest.raises(redis.exceptions.NoScriptError):
        r.evalsha(sha, 1, "key", "v3")
    assert r.eval_ro("return redis.call('get', KEYS[1])", 1, "key") == b"v2"
    with pytest.raises(redis.ResponseError, match="Write commands are not allowed"):
        r.eval_ro("return redis.call('set', KEYS[1], 'x')", 1, "key")


def test_script_runs_in_callers_db_and_select_stays_inside(hakv):
    c = hakv.client(db=3)
    c.eval("redis.call('set', 'a', '1') redis.call('select', 5) redis.call('set', 'b', '2')", 0)
    assert c.get("a") == b"1"
    assert c.get("b") is None  # the caller is still on db 3
    assert hakv.client(db=5).get("b") == b"2"


def test_script_is_atomic(hakv):
    """A command sent while a (short) script runs waits for its end."""
    c1, c2 = hakv.client(), hakv.client()
    c2.ping()
    script = ("redis.call('set', 'k', 'before') local t = redis.call('time') "
              "local stop = t[1] * 1e6 + t[2] + 300000 "
              "repeat t = redis.call('time') until t[1] * 1e6 + t[2] >= stop "
              "redis.call('set', 'k', 'after') return 1")
    th = threading.Thread(target=c1.eval, args=(script, 0))
    th.start()
    time.sleep(0.1)
    start = time.time()
    assert c2.get("k") == b"after"
    assert time.time() - start > 0.1
    th.join()


def test_runaway_script_busy_kill_and_recovery(hakv):
    admin = hakv.client()
    admin.config_set("busy-reply-threshold", 100)
    existing = hakv.client()
    existing.ping()
    result = {}

    def run():
        try:
            hakv.client(socket_timeout=30).eval("local i = 0 while true do i = i + 1 end", 0)
        except redis.ResponseError as exc:
            result["error"] = str(exc)
    th = threading.Thread(target=run)
    th.start()
    time.sleep(0.5)
    with pytest.raises(redis.ResponseError, match="BUSY Redis is busy running a script"):
        existing.get("x")
    fresh = hakv.client()  # connects while the script runs
    with pytest.raises(redis.ResponseError, match="BUSY"):
        fresh.set("x", "1")
    with pytest.raises(redis.ResponseError, match="BUSY Redis is busy running a script. You can"
                       " only call SCRIPT KILL"):
        fresh.execute_command("FUNCTION", "KILL")
    assert fresh.script_kill() is True
    th.join(10)
    assert not th.is_alive()
    assert result["error"].startswith("Script killed by user with SCRIPT KILL...")
    assert fresh.set("x", "1") is True  # the connection made while busy works on
    assert existing.get("x") == b"1"
    assert admin.ping()
    with pytest.raises(redis.ResponseError, match="NOTBUSY"):
        admin.script_kill()
    log = hakv.output()
    assert "Slow script detected" in log


def test_runaway_script_that_wrote_needs_shutdown_nosave(hakv):
    admin = hakv.client()
    admin.config_set("busy-reply-threshold", 100)
    runner = socket.create_connection(("127.0.0.1", hakv.port))
    body = b"redis.call('set', 'w', '1') while true do end"
    runner.sendall(b"*3\r\n$4\r\nEVAL\r\n$%d\r\n%s\r\n$1\r\n0\r\n" % (len(body), body))
    time.sleep(0.4)
    with pytest.raises(redis.ResponseError, match="UNKILLABLE"):
        admin.script_kill()
    with pytest.raises(redis.ResponseError, match="BUSY"):
        admin.shutdown()  # without NOSAVE: refused while busy
    try:
        admin.shutdown(nosave=True)
    except redis.ConnectionError:
        pass
    hakv.proc.wait(10)
    assert hakv.proc.returncode == 0
    runner.close()


def test_effects_reach_the_aof_as_commands_in_multi_exec(make_hakv):
    node = make_hakv("--appendonly", "yes")
    c = node.client()
    c.eval("redis.call('set', 'a', '1') redis.call('incr', 'a') redis.call('select', 3) "
           "redis.call('set', 'b', 'x') return 1", 0)
    c.eval("return redis.call('set', 'single', '1')", 0)
    c.eval("return redis.call('get', 'a')", 0)  # a read-only script: nothing
    c.eval("redis.set_repl(redis.REPL_NONE) redis.call('set', 'hidden', '1') "
           "redis.set_repl(redis.REPL_ALL) redis.call('set', 'shown', '1')", 0)
    time.sleep(1.2)  # appendfsync everysec
    aof_dir = os.path.join(node.workdir, "appendonlydir")
    incr = [f for f in os.listdir(aof_dir) if f.endswith(".incr.aof")][0]
    with open(os.path.join(aof_dir, incr), "rb") as f:
        data = f.read()
    assert b"EVAL" not in data.upper()
    words = [w for w in data.split(b"\r\n") if w and w[:1] not in (b"*", b"$")]
    assert words == [
        b"SELECT", b"0", b"MULTI", b"set", b"a", b"1", b"incr", b"a", b"SELECT", b"3",
        b"set", b"b", b"x", b"EXEC", b"SELECT", b"0", b"set", b"single", b"1",
        b"set", b"shown", b"1"]
    node.restart()
    c = node.client()
    assert c.get("a") == b"2"
    assert node.client(db=3).get("b") == b"x"
    assert c.get("hidden") is None and c.get("shown") == b"1"


def test_scripts_writes_survive_restart_from_rdb(make_hakv):
    node = make_hakv()
    c = node.client()
    c.eval("for i = 1, 100 do redis.call('rpush', KEYS[1], i) end "
           "redis.call('hset', KEYS[2], 'f', 'v')", 2, "list", "hash")
    c.function_load("#!lua name=keep\nredis.register_function('f', function() return 7 end)")
    c.save()
    node.restart()
    c = node.client()
    assert c.llen("list") == 100
    assert c.hget("hash", "f") == b"v"
    assert c.fcall("f", 0) == 7


def test_script_writes_reach_a_replica(make_hakv):
    primary = make_hakv(*FAST_SYNC)
    replica = make_hakv("--replicaof", "127.0.0.1", str(primary.port))
    p, rc = primary.client(), replica.client()
    try:
        wait_link_up(rc, timeout=20)
    except AssertionError:
        pytest.skip("replication does not come up yet: nothing to check scripts against")
    for i in range(20):
        p.eval(INCR_TWICE, 1, "counter")
        p.eval("redis.call('lpush', KEYS[1], ARGV[1]) redis.call('sadd', KEYS[2], ARGV[1]) "
               "if tonumber(ARGV[1]) % 3 == 0 then redis.call('del', KEYS[2]) end",
               2, "l", "s", str(i))
    p.eval("redis.call('set', 'tmp', 'x', 'EX', 100) redis.call('expire', 'tmp', 200)", 0)
    p.function_load("#!lua name=rep\nredis.register_function('w', function(keys, args) "
                    "return redis.call('incrby', keys[1], args[1]) end)")
    p.fcall("w", 1, "fc", 5)
    wait_caught_up(p, rc)
    assert_same_contents(p, rc)
    assert rc.get("counter") == b"40"
    assert [dict(zip(lib[::2], lib[1::2]))[b"library_name"]
            for lib in rc.function_list()] == [b"rep"]
    # A script on the read-only replica may read but not write.
    assert rc.eval("return redis.call('get', 'counter')", 0) == b"40"
    with pytest.raises(redis.exceptions.ReadOnlyError, match="You can't write against a read "
                       "only replica. script: "):
        rc.eval("return redis.call('set', 'x', '1')", 0)


def test_monitor_shows_script_commands_as_lua(hakv):
    mon = socket.create_connection(("127.0.0.1", hakv.port))
    mon.sendall(b"*1\r\n$7\r\nMONITOR\r\n")
    assert mon.recv(100) == b"+OK\r\n"
    c = hakv.client()
    c.eval("redis.call('set', KEYS[1], ARGV[1]) return redis.call('get', KEYS[1])", 1, "mk", "mv")
    deadline = time.time() + 5
    data = b""
    while b'"get" "mk"' not in data and time.time() < deadline:
        data += mon.recv(65536)
    lines = [line.split(b" ", 1)[1] for line in data.split(b"\r\n") if line]
    lines = lines[[i for i, line in enumerate(lines) if b'"eval"' in line.lower()][0]:]
    assert lines[0].startswith(b'[0 127.0.0.1:')
    assert lines[1:3] == [b'[0 lua] "set" "mk" "mv"', b'[0 lua] "get" "mk"']
    mon.close()


def test_info_counts_scripts_and_functions(r):
    """The scripting figures reach INFO memory whichever component provides
    the section (eviction wraps it: when its wrapper replaced the scripting
    one, the function counts read 0)."""
    r.script_flush()
    r.function_flush()
    r.script_load("return 1")
    r.script_load("return 2")
    r.function_load("#!lua name=l\nredis.register_function('a', function() return 1 end)\n"
                    "redis.register_function('b', function() return 1 end)")
    info = r.info("memory")
    assert info["number_of_cached_scripts"] == 2
    assert info["number_of_functions"] == 2
    assert info["number_of_libraries"] == 1
    assert info["used_memory_lua"] > 0
    assert info["used_memory_vm_functions"] > 0
    assert info["used_memory_functions"] > 0
    assert info["used_memory_scripts"] == (info["used_memory_scripts_eval"]
                                           + info["used_memory_functions"])
    stats = r.info("commandstats")
    assert stats["cmdstat_script|load"]["calls"] == 2


def test_blocking_and_noscript_commands_are_refused(r):
    for cmd in ("'blpop', 'nolist', 0", "'subscribe', 'ch'", "'eval', 'return 1', 0",
                "'multi'", "'script', 'load', 'return 1'"):
        with pytest.raises(redis.ResponseError, match="^This Redis command is not allowed "
                           "from script script: "):
            r.eval("return redis.call(%s)" % cmd, 0)


def test_keyspace_notifications_from_scripts(r, hakv):
    r.config_set("notify-keyspace-events", "KEA")
    sub = hakv.client().pubsub()
    sub.psubscribe("__keyevent@0__:*")
    assert sub.get_message(timeout=5)["type"] == "psubscribe"
    r.eval("redis.call('set', 'nk', '1') redis.call('incr', 'nk')", 0)
    events = [sub.get_message(timeout=5)["channel"] for _ in range(2)]
    assert events == [b"__keyevent@0__:set", b"__keyevent@0__:incrby"]
    sub.close()


def _histogram_calls(c, names) -> dict:
    """{command: the calls its latency histogram holds} (LATENCY HISTOGRAM)."""
    reply = c.execute_command("LATENCY", "HISTOGRAM", *names)
    if isinstance(reply, list):
        reply = dict(zip(reply[::2], reply[1::2]))
    out = {}
    for name, fields in reply.items():
        if isinstance(fields, list):
            fields = dict(zip(fields[::2], fields[1::2]))
        histogram = fields[b"histogram_usec"]
        if isinstance(histogram, list):
            histogram = dict(zip(histogram[::2], histogram[1::2]))
        # Cumulative: the last bucket holds every call.
        out[name] = (fields[b"calls"], max(histogram.values()))
    return out


def _nested_call_records(c) -> dict:
    """What INFO and SLOWLOG hold about the commands scripts ran: calls,
    failed calls and latency-histogram counts of the nested commands,
    keyspace hits and misses, errorstats, and the slowlog's commands."""
    stats = c.info("commandstats")
    latency = c.info("latencystats")
    info = c.info("stats")
    names = ("set", "get", "incr", "lpush", "hset")
    return {
        "calls": {n: (stats["cmdstat_" + n]["calls"], stats["cmdstat_" + n]["failed_calls"])
                  for n in names if "cmdstat_" + n in stats},
        "latencystats": sorted(k for k in latency if k.endswith(names)),
        "histogram_calls": _histogram_calls(c, names),
        "hits_misses": (info["keyspace_hits"], info["keyspace_misses"]),
        "errors": {k: v for k, v in c.info("errorstats").items()},
        "slowlog": sorted(tuple(e["command"].split()) for e in c.slowlog_get(100)
                          if e["command"].split()[0].decode() in names),
    }


def test_script_calls_record_the_same_for_every_kind_of_caller(make_hakv):
    """Commands called from scripts by an unrestricted user, by a restricted
    one (ACL checks), while MONITOR is on, and after
    redis.set_repl(REPL_NONE): each way leaves the same statistics, slowlog
    entries, replies and data."""
    scripts = [
        ("redis.call('set', KEYS[1], ARGV[1]) return redis.call('get', KEYS[1])", ["k", "v"]),
        ("return redis.call('get', KEYS[1])", ["missing"]),
        ("return redis.call('incr', KEYS[1])", ["n"]),
        ("return redis.pcall('lpush', KEYS[1], 'x')", ["k"]),  # WRONGTYPE: a failed call
        ("return redis.pcall('incr', KEYS[1])", ["k"]),        # not an integer
        ("redis.set_repl(redis.REPL_NONE) redis.call('hset', KEYS[1], 'f', 'v') "
         "redis.set_repl(redis.REPL_ALL) return redis.call('incr', KEYS[2])", ["h", "n"]),
    ]
    results = []
    for way in ("default", "acl", "monitor"):
        node = make_hakv(name=way)
        admin = node.client()
        if way == "acl":
            # Every command and key allowed, but through the ACL check.
            admin.execute_command("ACL", "SETUSER", "worker", "on", ">pw", "~*", "+@all",
                                  "-debug")
            c = redis.Redis(port=node.port, username="worker", password="pw")
        else:
            c = node.client()
        mon = None
        if way == "monitor":
            mon = socket.create_connection(("127.0.0.1", node.port))
            mon.sendall(b"*1\r\n$7\r\nMONITOR\r\n")
            assert mon.recv(100) == b"+OK\r\n"
        admin.config_resetstat()
        admin.slowlog_reset()
        replies = []
        # Twice: with the slowlog off for quick commands, then logging
        # every command.
        for slower_than in (10000, 0):
            admin.config_set("slowlog-log-slower-than", slower_than)
            for body, args in scripts:
                keys = [a for a in args if a in ("k", "missing", "n", "h")]
                try:
                    replies.append(c.eval(body, len(keys), *args))
                except redis.ResponseError as exc:
                    replies.append(str(exc))
        records = _nested_call_records(admin)
        records["replies"] = replies
        records["data"] = (admin.get("k"), admin.get("n"), admin.hgetall("h"))
        results.append(records)
        if mon is not None:
            mon.close()
        c.close()
        admin.close()
    default, acl, monitor = results
    assert default["calls"]["set"] == (2, 0) and default["calls"]["incr"] == (6, 2)
    assert default["calls"]["lpush"] == (2, 2)
    assert default["histogram_calls"][b"incr"] == (6, 6)
    assert (b"set", b"k", b"v") in default["slowlog"] and (b"hset", b"h", b"f", b"v") in \
        default["slowlog"]
    assert default == acl == monitor
