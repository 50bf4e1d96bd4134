"""Differential test of what a script's redis.call does besides running the
command (the checks scripting.Scripting.script_call makes before handing the
command to dispatch.call, and what call records): INFO commandstats / errorstats /
keyspace hits and misses, latency histograms, SLOWLOG entries, MONITOR lines,
the script error texts of the call path (unknown command, wrong arity,
subcommands, names in any case, numbers as arguments), and what reaches a
replica. The same commands go to a real redis-server and to hakv.
"""

from __future__ import annotations

import socket
import time

import pytest

pytestmark = pytest.mark.interop

SET_GET = "redis.call('set', KEYS[1], ARGV[1]) return redis.call('get', KEYS[1])"


def _info_lines(client, section: str) -> dict:
    text = client.execute_command("INFO", section)
    if isinstance(text, bytes):
        text = text.decode()
    if isinstance(text, dict):  # redis-py parsed it
        return text
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and ":" in line:
            k, v = line.split(":", 1)
            out[k] = v
    return out


def _workload(c) -> list:
    """Scripts whose nested commands hit every branch of the call path;
    returns the replies (errors as their text)."""
    sha = c.script_load(SET_GET)
    replies = []

    def run(*args):
        try:
            replies.append(c.execute_command(*args))
        except Exception as exc:  # an error reply: its text is compared
            replies.append(("error", str(exc)))

    for i in range(3):
        run("EVALSHA", sha, 1, "k%d" % i, "v%d" % i)
    run("EVAL", "return redis.call('GET', KEYS[1])", 1, "k0")        # upper-case name
    run("EVAL", "return redis.call('gEt', KEYS[1])", 1, "missing")   # a miss
    run("EVAL", "return redis.call('incrby', KEYS[1], 5)", 1, "n")    # a number argument
    run("EVAL", "return redis.call('incrbyfloat', KEYS[1], 1.5)", 1, "f")
    run("EVAL", "return redis.call('object', 'encoding', KEYS[1])", 1, "n")  # a subcommand
    run("EVAL", "return redis.call('object', 'encoding')", 0)       # subcommand arity
    run("EVAL", "return redis.call('nosuch', 'x')", 0)
    run("EVAL", "return redis.call('get')", 0)                      # arity
    run("EVAL", "return redis.call('get', 'a', 'b')", 0)
    run("EVAL", "return redis.call('eval', 'return 1', 0)", 0)      # noscript
    run("EVAL", "return redis.call('get', {})", 0)                  # not a string
    run("EVAL", "return redis.call()", 0)
    run("EVAL", "return redis.call('lpush', KEYS[1], 'x')", 1, "k0")  # WRONGTYPE
    run("EVAL", "return redis.pcall('lpush', KEYS[1], 'x')", 1, "k0")
    run("EVAL", "return redis.pcall('hget', KEYS[1], 'x')", 1, "k0")
    run("EVAL", "return redis.call('incr', KEYS[1])", 1, "k0")       # not an integer
    run("EVAL", "return redis.call('ping')", 0)                      # a status reply
    run("EVAL", "local t = redis.call('set', KEYS[1], 'x') t.ok = 'changed' "
                "return redis.call('set', KEYS[1], 'y')", 1, "s")      # status tables unshared
    run("EVAL", "redis.call('rpush', KEYS[1], 'a', 'b') "
                "return redis.call('lrange', KEYS[1], 0, -1)", 1, "l")
    run("EVAL_RO", "return redis.call('set', KEYS[1], 'x')", 1, "ro")  # read-only script
    run("EVAL_RO", "return redis.call('get', KEYS[1])", 1, "k1")
    return replies


def _stats(c) -> dict:
    commandstats = _info_lines(c, "commandstats")
    calls = {}
    for name, value in commandstats.items():
        fields = value if isinstance(value, dict) else dict(
            kv.split("=") for kv in value.split(","))
        calls[name] = (int(fields["calls"]), int(fields["rejected_calls"]),
                       int(fields["failed_calls"]))
    stats = _info_lines(c, "stats")
    errorstats = _info_lines(c, "errorstats")
    latency = _info_lines(c, "latencystats")
    return {
        "commandstats": calls,
        "hits_misses": (int(stats["keyspace_hits"]), int(stats["keyspace_misses"])),
        "errorstats": {k: str(v) for k, v in errorstats.items()},
        "latency_commands": sorted(latency),
    }


def test_nested_calls_replies_and_statistics(hakv, real_redis):
    results = []
    for proc in (real_redis, hakv):
        c = proc.client()
        c.config_resetstat()
        replies = _workload(c)
        results.append((replies, _stats(c)))
        c.close()
    (redis_replies, redis_stats), (hakv_replies, hakv_stats) = results
    assert hakv_replies == redis_replies
    # INFO commandstats also lists CONFIG and SCRIPT (sent to set up): the
    # same on both.
    assert hakv_stats == redis_stats


def test_nested_calls_in_slowlog(hakv, real_redis):
    logged = []
    for proc in (real_redis, hakv):
        c = proc.client()
        c.config_set("slowlog-log-slower-than", 0)
        c.slowlog_reset()
        c.eval(SET_GET, 1, "key", "value")
        c.eval("return redis.call('incrby', KEYS[1], 7)", 1, "n")
        logged.append([list(e["command"].split()) if isinstance(e["command"], bytes)
                       else e["command"].split() for e in c.slowlog_get(10)])
        c.close()
    assert logged[1] == logged[0]


def _monitor_lines(proc, commands) -> list:
    mon = socket.create_connection(("127.0.0.1", proc.port), timeout=10)
    mon.sendall(b"*1\r\n$7\r\nMONITOR\r\n")
    buf = b""
    while b"+OK\r\n" not in buf:
        buf += mon.recv(4096)
    buf = buf.split(b"+OK\r\n", 1)[1]
    c = proc.client()
    for args in commands:
        try:
            c.execute_command(*args)
        except Exception:
            pass
    c.execute_command("PING", "end")
    deadline = time.time() + 10
    while b'"end"' not in buf and time.time() < deadline:
        buf += mon.recv(4096)
    mon.close()
    c.close()
    # "+<time> [db origin] args": the time and the client's address differ.
    lines = []
    for line in buf.split(b"\r\n"):
        if line.startswith(b"+"):
            _, rest = line.split(b" ", 1)
            origin, args = rest.split(b"] ", 1)
            lines.append((origin.split(b" ")[1] if b"lua" in origin else b"client", args))
    return lines


def test_nested_calls_in_monitor(hakv, real_redis):
    commands = [("EVAL", SET_GET, 1, "key", "value"),
                ("EVAL", "return redis.call('auth', 'x')", 0),
                ("EVAL", "return redis.call('nosuch')", 0),
                ("EVAL", "return redis.pcall('incr', KEYS[1])", 1, "key")]
    assert _monitor_lines(hakv, commands) == _monitor_lines(real_redis, commands)


def test_script_effects_reach_replica_once_per_script(make_hakv):
    primary = make_hakv()
    replica = make_hakv("--replicaof", "127.0.0.1", str(primary.port))
    p = primary.client()
    rep = replica.client()
    deadline = time.time() + 20
    while rep.info("replication").get("master_link_status") != "up":
        assert time.time() < deadline, "replica did not connect"
        time.sleep(0.05)
    sha = p.script_load(SET_GET)
    for i in range(50):
        assert p.evalsha(sha, 1, "key%d" % i, "value%d" % i) == b"value%d" % i
    p.eval("redis.call('incrby', KEYS[1], 2) redis.call('incrbyfloat', KEYS[1], 0.5)", 1, "n")
    p.eval("redis.set_repl(redis.REPL_NONE) redis.call('set', KEYS[1], 'local')", 1, "only")
    p.eval("return redis.call('set', KEYS[1], 'last')", 1, "last")
    deadline = time.time() + 20
    while rep.get("last") != b"last":
        assert time.time() < deadline, "replica did not catch up"
        time.sleep(0.05)
    assert [rep.get("key%d" % i) for i in range(50)] == [b"value%d" % i for i in range(50)]
    assert rep.get("n") == b"2.5"
    assert rep.get("only") is None and p.get("only") == b"local"
    # Nested commands are counted on the primary, not the EVALs' effects
    # twice: each EVALSHA ran one SET and one GET.
    stats = p.info("commandstats")
    assert stats["cmdstat_evalsha"]["calls"] == 50
    assert stats["cmdstat_get"]["calls"] == 51  # and the GET of "only" above
    assert stats["cmdstat_set"]["calls"] == 52
    p.close()
    rep.close()


def _checks_per_run(c) -> list:
    """Scripts whose redis.call()s pass or fail the script's checks
    (Scripting.script_call): the node's write checks before each run's
    first write, read-only runs, REPL_NONE, the user's ACL rules. What one
    run was allowed must not carry over to the next run, nor past a change
    of the node's state or of the user."""
    replies = []

    def run(*args):
        try:
            replies.append(c.execute_command(*args))
        except Exception as exc:
            replies.append(("error", str(exc)))

    sha = c.script_load(SET_GET)
    run("EVALSHA", sha, 1, "a", "1")
    run("CONFIG", "SET", "min-replicas-to-write", "1")
    run("EVALSHA", sha, 1, "a", "2")              # a new run: its first write is checked
    run("EVAL", "return redis.call('get', KEYS[1])", 1, "a")  # reads still pass
    run("EVAL", "redis.call('get', KEYS[1]) return redis.call('set', KEYS[1], 'x')", 1, "a")
    run("CONFIG", "SET", "min-replicas-to-write", "0")
    run("EVALSHA", sha, 1, "a", "3")
    # Two writes in one run (the node's checks come before the first); a
    # read-only run is refused at its first write.
    run("EVAL", "redis.call('set', KEYS[1], 'w1') return redis.call('set', KEYS[1], 'w2')",
        1, "a")
    run("EVAL_RO", "redis.call('get', KEYS[1]) return redis.call('set', KEYS[1], 'x')", 1, "a")
    # REPL_NONE and back within a run, then a plain run.
    run("EVAL", "redis.set_repl(redis.REPL_NONE) redis.call('set', KEYS[1], 'n') "
                "redis.set_repl(redis.REPL_ALL) return redis.call('get', KEYS[1])", 1, "a")
    run("EVALSHA", sha, 1, "a", "4")
    # The same connection as a user with key patterns: its runs are checked.
    run("ACL", "SETUSER", "lua", "on", ">pw", "~k*", "+@all")
    run("AUTH", "lua", "pw")
    run("EVALSHA", sha, 1, "k1", "5")
    run("EVALSHA", sha, 1, "a", "6")
    run("EVAL", "return redis.call('get', 'a')", 0)
    run("AUTH", "default", "")
    run("EVALSHA", sha, 1, "a", "7")
    return replies


def test_script_checks_are_per_run(hakv, real_redis):
    results = []
    for proc in (real_redis, hakv):
        c = proc.client()
        c.config_resetstat()
        replies = _checks_per_run(c)
        results.append((replies, c.get("a"), _stats(c)["commandstats"]))
        c.close()
    assert results[1] == results[0]
