"""Helpers shared by the persistence tests: tests/integration/test_persistence.py,
test_aof.py, tests/faults/test_crash_aof.py and the interop tests
tests/interop/test_persistence_interop.py / test_rdb_interop.py.

Values are the value model's Python objects (bytes, deque, dict, set, ZSet);
`norm` turns one into something comparable with ==, `read_dump` reads a whole
RDB file in that form, `saved_contents` asks a running hakv for a SAVE and
reads it back, `populate` creates values on a server with RESTORE payloads
(so a test does not depend on the data-type command families).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections import deque

import redis

from hakv.common import rdb
from hakv.common.types.zset import ZSet

CHECK_RDB = shutil.which("redis-check-rdb") or "/usr/bin/redis-check-rdb"


# ------------------------------------------------------------------ values


def zset(pairs) -> ZSet:
    z = ZSet()
    for member, score in pairs:
        z.add(member, score)
    return z


def norm(value):
    """A comparable form of a value of any type."""
    if isinstance(value, bytes):
        return ("string", value)
    if isinstance(value, deque):
        return ("list", list(value))
    if isinstance(value, dict):
        return ("hash", dict(value))
    if isinstance(value, set):
        return ("set", set(value))
    return ("zset", list(value.items()))


def plain(value):
    """The value itself, except a ZSet (no __eq__ of its own) as its items."""
    if isinstance(value, ZSet):
        return ("zset", list(value.items()))
    return value


def expected(data: dict) -> dict:
    """{(db, key): (value, expire)} -> the same with normalized values."""
    return {k: (norm(v), e) for k, (v, e) in data.items()}


# ------------------------------------------------------------------ dumps


def read_dump(path) -> dict:
    """{(db, key): (normalized value, expire_ms)} of an RDB file."""
    out = {}
    for event in rdb.load_file(path):
        if isinstance(event, rdb.Key):
            out[(event.db, event.key)] = (norm(event.value), event.expire_ms)
    return out


def saved_contents(proc, client=None, name: str = "check.rdb") -> dict:
    """Everything a hakv server holds, from a SAVE to another file (read_dump form)."""
    client = client if client is not None else proc.client()
    old = client.config_get("dbfilename")["dbfilename"]
    client.config_set("dbfilename", name)
    try:
        assert client.save()
    finally:
        client.config_set("dbfilename", old)
    return read_dump(os.path.join(proc.workdir, name))


def check_rdb(path) -> str:
    """redis-check-rdb's report on `path`; fails the test unless it says OK."""
    result = subprocess.run([CHECK_RDB, str(path)], capture_output=True, text=True, timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "RDB looks OK" in output, output
    return output


# ------------------------------------------------------------------ servers


def populate(client: redis.Redis, data: dict) -> None:
    """Create {(db, key): (value, expire_ms or None)} on a server with RESTORE ... ABSTTL."""
    by_db: dict = {}
    for (db, key), (value, expire) in data.items():
        by_db.setdefault(db, []).append((key, value, expire))
    for db, items in by_db.items():
        client.execute_command("SELECT", db)
        for key, value, expire in items:
            payload = rdb.dump_payload(value)
            if expire is None:
                assert client.execute_command("RESTORE", key, 0, payload) == b"OK"
            else:
                assert client.execute_command("RESTORE", key, expire, payload, "ABSTTL") == b"OK"
    client.execute_command("SELECT", 0)


def fill_strings(client, n: int, prefix: str = "key") -> None:
    """SET <prefix>:<i> value-<i> for i < n, pipelined."""
    pipe = client.pipeline(transaction=False)
    for i in range(n):
        pipe.set("%s:%d" % (prefix, i), "value-%d" % i)
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()


def raw(client: redis.Redis) -> redis.Redis:
    """The same client without redis-py's reply conversions (exact server replies)."""
    client.response_callbacks = {}
    return client


def persistence_info(client) -> dict:
    return client.info("persistence")


def wait_for(predicate, timeout=30.0, interval=0.02, what="condition"):
    """predicate()'s first true value, polling; fails the test after `timeout` s."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out waiting for %s" % what)


def wait_rewrite_done(client, rewrites: int = 1, timeout: float = 30.0) -> None:
    """Until `rewrites` AOF rewrites were started (INFO counts starts) and none
    is running or scheduled."""
    def done():
        stats = persistence_info(client)
        return (stats["aof_rewrites"] >= rewrites and not stats["aof_rewrite_in_progress"]
                and not stats["aof_rewrite_scheduled"])
    wait_for(done, timeout=timeout, interval=0.05, what="the AOF rewrite")


def start_refused(make_hakv, name, *args):
    """Start a hakv that is expected to exit (a bad file): (proc, exit code)."""
    proc = make_hakv(*args, name=name, wait=False)
    try:
        code = proc.proc.wait(30)
    except Exception:
        proc.stop()
        raise
    return proc, code
