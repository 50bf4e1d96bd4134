"""Helpers shared by the replication tests (integration, interop, faults):
waiting for a replica to catch up, a write load that runs during a sync, and a
key-by-key comparison of two servers (values of every type, TTLs included).

Values are read with DUMP and decoded by rdb.py, so the comparison covers
every type a server holds and is the same for hakv and for real Redis.
Collections are written with RESTORE (so the load does not depend on which
data-type command families exist yet) and with their own commands when the
servers involved have them.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import deque

import pytest
import redis

from hakv.common import rdb
from hakv.common.main import build_server
from hakv.common.types.zset import ZSet
from persistence_support import norm


def wait_for(predicate, timeout=15.0, interval=0.05, what="condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = predicate()
        except (redis.exceptions.ConnectionError, redis.exceptions.BusyLoadingError,
                redis.exceptions.TimeoutError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


def repl_info(client) -> dict:
    return client.info("replication")


def link_up(client) -> bool:
    return repl_info(client).get("master_link_status") == "up"


def wait_link_up(replica, timeout=20.0):
    wait_for(lambda: link_up(replica), timeout, what="master_link_status:up")


def wait_caught_up(primary, *replicas, timeout=20.0):
    """Every replica's processed offset equals the primary's offset."""
    def done():
        target = repl_info(primary)["master_repl_offset"]
        for r in replicas:
            info = repl_info(r)
            if info.get("master_link_status") != "up" or info.get("slave_repl_offset") != target:
                return False
        return target == repl_info(primary)["master_repl_offset"]
    wait_for(done, timeout, what="replicas to catch up")


def stats(client) -> dict:
    s = client.info("stats")
    return {k: s[k] for k in ("sync_full", "sync_partial_ok", "sync_partial_err")}


def raw_client(client: redis.Redis, **kw) -> redis.Redis:
    """A client to the same server without redis-py's reply conversions."""
    args = client.connection_pool.connection_kwargs
    kw.setdefault("socket_timeout", 20)
    c = redis.Redis(host=args.get("host", "127.0.0.1"), port=args["port"],
                    password=args.get("password"), **kw)
    c.response_callbacks = {}
    return c


def has_commands(client, *names) -> bool:
    c = raw_client(client)
    try:
        info = c.execute_command("COMMAND", "INFO", *names)
    finally:
        c.close()
    return all(entry is not None for entry in info)


# ------------------------------------------------------------ unit-test fakes


@pytest.fixture
def in_process_primary(tmp_path, monkeypatch):
    """A primary's Server without sockets, on a loop of its own (tests of
    the primary's replication parts in-process)."""
    monkeypatch.chdir(tmp_path)
    server = build_server(["--save", ""]).server
    server.loop = asyncio.new_event_loop()
    yield server
    server.loop.close()


class RecordingTransport:
    """A transport that keeps what is written (the unit tests of the primary's
    stream and the replica's link)."""

    def __init__(self):
        self.written = []

    def write(self, data):
        self.written.append(bytes(data))

    def get_write_buffer_size(self):
        return 0

    def resume_reading(self):
        pass

    def pause_reading(self):
        pass

    def close(self):
        pass


# ------------------------------------------------------------ comparing servers


def contents(client: redis.Redis, dbs=range(16)) -> dict:
    """{(db, key): (normalized value, absolute expiry in ms or -1)} of every key."""
    out = {}
    args = client.connection_pool.connection_kwargs
    for db in dbs:
        c = redis.Redis(host=args.get("host", "127.0.0.1"), port=args["port"],
                        password=args.get("password"), db=db, socket_timeout=20)
        try:
            keys = c.keys("*")
            for i in range(0, len(keys), 500):
                batch = keys[i:i + 500]
                pipe = c.pipeline(transaction=False)
                for key in batch:
                    pipe.dump(key)
                    pipe.execute_command("PEXPIRETIME", key)
                replies = pipe.execute()
                for j, key in enumerate(batch):
                    payload, when = replies[2 * j], replies[2 * j + 1]
                    if payload is None or when == -2:
                        # Expired between KEYS and DUMP, or between DUMP and
                        # PEXPIRETIME (then the deadline is lost: -2).
                        continue
                    out[(db, key)] = (norm(rdb.load_payload(payload)), when)
        finally:
            c.close()
    return out


def assert_same_contents(primary, replica, dbs=range(16)):
    """Same keys, same values, same expiry times (propagated as absolute times,
    so they match to the millisecond). Returns the number of keys."""
    a = contents(primary, dbs)
    b = contents(replica, dbs)
    # Keys that expired on the primary during the comparison may still be on
    # the replica (its DEL is on the way): ignore keys whose deadline passed.
    now = int(time.time() * 1000) - 50
    gone = {k for k, (_, when) in list(a.items()) + list(b.items()) if 0 <= when <= now + 5000}
    for k in gone:
        a.pop(k, None)
        b.pop(k, None)
    missing = sorted(set(a) - set(b))[:5]
    extra = sorted(set(b) - set(a))[:5]
    assert not missing and not extra, "missing on replica %r, extra on replica %r" % (
        missing, extra)
    for k, (value, when) in a.items():
        value_b, when_b = b[k]
        assert value == value_b, "value differs for %r" % (k,)
        assert when == when_b, "expiry differs for %r: %d vs %d" % (k, when, when_b)
    return len(a)


# ------------------------------------------------------------ data


def zset(pairs) -> ZSet:
    z = ZSet()
    for member, score in pairs:
        z.add(member, score)
    return z


def seed(client: redis.Redis, n: int = 2000, prefix: str = "seed") -> None:
    """n string keys (a third with TTLs) plus one of each collection type, in
    db 0, and a few keys in db 3."""
    future = int(time.time() * 1000) + 3_600_000
    pipe = client.pipeline(transaction=False)
    for i in range(n):
        if i % 3 == 0:
            pipe.set("%s:%d" % (prefix, i), "v%d" % i, px=600_000 + i)
        else:
            pipe.set("%s:%d" % (prefix, i), "v%d" % i)
    pipe.execute()
    values = {
        b"%s:list" % prefix.encode(): deque(b"item-%d" % i for i in range(500)),
        b"%s:hash" % prefix.encode(): {b"f%d" % i: b"%d" % i for i in range(300)},
        b"%s:set" % prefix.encode(): {b"m%d" % i for i in range(200)},
        b"%s:zset" % prefix.encode(): zset([(b"z%d" % i, i / 3) for i in range(150)]),
    }
    for key, value in values.items():
        client.execute_command("RESTORE", key, 0, rdb.dump_payload(value), "REPLACE")
    client.execute_command("RESTORE", b"%s:ttl-hash" % prefix.encode(), future,
                           rdb.dump_payload({b"a": b"1"}), "ABSTTL", "REPLACE")
    other = redis.Redis(port=client.connection_pool.connection_kwargs["port"], db=3,
                        password=client.connection_pool.connection_kwargs.get("password"))
    other.set("%s:db3" % prefix, "in db 3")
    other.set("%s:db3-ttl" % prefix, "x", ex=900)
    other.close()


class WriteLoad:
    """A thread of mixed writes against a primary until stop(): strings,
    counters, TTLs, deletes, MULTI/EXEC blocks, several databases, RESTOREd
    collections, and the collection commands the servers support."""

    def __init__(self, port: int, *, password=None, use=(), seed_value=1, pause=0.0):
        self.port = port
        self.password = password
        self.use = set(use)  # collection commands to use: "hash", "list", "set", "zset"
        self.random = random.Random(seed_value)
        self.pause = pause
        self.ops = 0
        self.errors: list = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "WriteLoad":
        self.thread.start()
        return self

    def stop(self) -> int:
        self._stop.set()
        self.thread.join(30)
        if self.errors:
            raise AssertionError("write load failed: %r" % self.errors[:3])
        return self.ops

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self._stop.set()
        self.thread.join(30)

    def _run(self) -> None:
        rnd = self.random
        clients = {db: redis.Redis(port=self.port, db=db, password=self.password,
                                   socket_timeout=20) for db in (0, 1, 7)}
        try:
            while not self._stop.is_set():
                db = rnd.choice((0, 0, 0, 1, 7))
                try:
                    self._one(clients[db], rnd)
                except redis.exceptions.RedisError as exc:
                    self.errors.append(repr(exc))
                    return
                self.ops += 1
                if self.pause:
                    time.sleep(self.pause)
        finally:
            for c in clients.values():
                c.close()

    def _one(self, c: redis.Redis, rnd: random.Random) -> None:
        k = "load:%d" % rnd.randrange(3000)
        op = rnd.randrange(12)
        if op <= 2:
            c.set(k, "val-%d" % rnd.randrange(10**6))
        elif op == 3:
            c.set(k, "ttl", ex=rnd.randrange(100, 1000))
        elif op == 4:
            c.incrby("counter:%d" % rnd.randrange(50), rnd.randrange(1, 10))
        elif op == 5:
            c.delete(k)
        elif op == 6:
            c.expire(k, rnd.randrange(200, 2000))
        elif op == 7:
            pipe = c.pipeline(transaction=True)
            pipe.set(k, "in-multi")
            pipe.append(k, "-more")
            pipe.incr("multi-counter")
            pipe.execute()
        elif op == 8:
            c.mset({"mset:%d" % rnd.randrange(500): "m", "mset:%d" % rnd.randrange(500): "n"})
        elif op == 9:
            value = {b"h%d" % i: b"%d" % rnd.randrange(1000) for i in range(rnd.randrange(1, 20))}
            c.execute_command("RESTORE", "restored:%d" % rnd.randrange(100), 0,
                              rdb.dump_payload(value), "REPLACE")
        elif op == 10:
            c.set(k, "short-lived", px=rnd.randrange(1, 300))  # expires during the test
        else:
            kind = rnd.choice(sorted(self.use)) if self.use else None
            ck = "coll:%s:%d" % (kind, rnd.randrange(40))
            if kind == "hash":
                c.hset(ck, "f%d" % rnd.randrange(30), rnd.randrange(1000))
            elif kind == "list":
                c.rpush(ck, "e%d" % rnd.randrange(1000))
            elif kind == "set":
                c.sadd(ck, "s%d" % rnd.randrange(100))
            elif kind == "zset":
                c.zadd(ck, {"z%d" % rnd.randrange(100): rnd.random() * 100})
            else:
                c.getset(k, "gs")


def collection_kinds(*clients) -> set:
    """The collection families every given server implements."""
    kinds = {"hash": "hset", "list": "rpush", "set": "sadd", "zset": "zadd"}
    return {k for k, cmd in kinds.items() if all(has_commands(c, cmd) for c in clients)}


def raw_reply(port: int, *args, password=None) -> bytes:
    """One command over a plain socket; the first line of the reply, exactly
    as the server wrote it (redis-py strips error prefixes)."""
    import socket

    from hakv.common.resp import encode_command
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        if password:
            s.sendall(encode_command(b"AUTH", password.encode()))
            _read_line(s)
        s.sendall(encode_command(*[a if isinstance(a, bytes) else str(a).encode() for a in args]))
        return _read_line(s)


def _read_line(s) -> bytes:
    buf = b""
    while not buf.endswith(b"\r\n"):
        chunk = s.recv(1)
        if not chunk:
            break
        buf += chunk
    return buf[:-2]
