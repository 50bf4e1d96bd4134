"""What the data-type tests share: the server and client fixtures of
tests/integration/test_{hashes,lists,sets,zsets,blocking}.py, their error
and bookkeeping helpers, a raw connection that can send now and read later
(blocking pops), and the tagged RESP2/RESP3 reader the differential tests
(tests/interop/test_types_diff.py, test_zsets_diff.py) compare replies with.

A test module takes the fixtures by importing them, with those they use:
    from types_support import parsing_client, r, server  # noqa: F401 (fixtures)
"""

from __future__ import annotations

import socket
import time

import pytest
import redis

from procs import hakv_server

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One hakv-server per test module."""
    proc = hakv_server(str(tmp_path_factory.mktemp("types"))).start()
    yield proc
    proc.stop()


@pytest.fixture
def parsing_client(server):
    """redis-py's default client (RESP3 in redis-py 8) on an empty server."""
    client = server.client()
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def r(parsing_client):
    return parsing_client


@pytest.fixture
def raw(server):
    """RESP2 without redis-py's reply conversions: replies as sent (null
    bulk and null array both read as None, arrays and statuses as they are)."""
    client = server.client(protocol=2)
    client.response_callbacks.clear()
    yield client
    client.close()


@pytest.fixture
def conns(server):
    """conns(resp3=False) -> a new Conn to the server, closed after the test."""
    made = []

    def make(resp3: bool = False) -> Conn:
        c = Conn(server.port, resp3)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


# ------------------------------------------------------------------ helpers


def error_of(r, *args) -> str:
    """The error text of a command (redis-py drops the 'ERR ' prefix)."""
    with pytest.raises(redis.ResponseError) as info:
        r.execute_command(*args)
    return str(info.value)


def changes(r) -> int:
    """The server's dirty counter, as INFO shows it."""
    return r.info("persistence")["rdb_changes_since_last_save"]


def wait_blocked(r, n: int, timeout: float = 5.0) -> None:
    """Wait until exactly n clients are blocked."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if r.info("clients")["blocked_clients"] == n:
            return
        time.sleep(0.01)
    raise AssertionError("blocked_clients never reached %d" % n)


class KeyEvents:
    """Keyevent notifications of db 0 while the block runs, as (event, key)
    pairs: `with KeyEvents(r, server) as events: ...; events.take(n)`.
    Notifications are switched off again on exit."""

    def __init__(self, r, server):
        self.r = r
        self.server = server

    def __enter__(self) -> KeyEvents:
        self.r.config_set("notify-keyspace-events", "KEA")
        self.sub = self.server.client().pubsub()
        self.sub.psubscribe("__keyevent@0__:*")
        assert self.sub.get_message(timeout=2)["type"] == "psubscribe"
        return self

    def take(self, n: int, timeout: float = 5.0) -> list:
        """The next n events (fewer if they do not come within timeout)."""
        events = []
        deadline = time.time() + timeout
        while len(events) < n and time.time() < deadline:
            msg = self.sub.get_message(timeout=1)
            if msg and msg["type"] == "pmessage":
                events.append((msg["channel"].split(b":", 1)[1], msg["data"]))
        return events

    def __exit__(self, *exc) -> None:
        self.sub.close()
        self.r.config_set("notify-keyspace-events", "")


def redis_replica_of(make_redis, server):
    """A real Redis replica of server, once its link is up: (proc, client)."""
    replica = make_redis("--replicaof", "127.0.0.1", str(server.port))
    rr = replica.client()
    deadline = time.time() + 30
    while rr.info("replication").get("master_link_status") != "up":
        assert time.time() < deadline, "the replica never synced"
        time.sleep(0.1)
    return replica, rr


def wait_replicated(r, rr, timeout: float = 30.0) -> None:
    """Write a marker through r and wait until the replica rr has it."""
    r.set("sync-marker", "1")
    deadline = time.time() + timeout
    while rr.get("sync-marker") is None:
        assert time.time() < deadline, "the replica fell behind"
        time.sleep(0.05)


# ------------------------------------------------------------------ RESP


class Incomplete(Exception):
    pass


class Err(str):
    """An error reply (its full text, prefix included)."""


NIL_BULK = ("nil-bulk",)
NIL_ARRAY = ("nil-array",)
NULL = ("null",)


def _line(buf: bytes, pos: int):
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise Incomplete
    return buf[pos:end], end + 2


def parse(buf: bytes, pos: int = 0):
    """One RESP2/RESP3 reply from buf at pos -> (value, next position).
    Bulk strings are bytes, integers ints, arrays lists, errors Err; the
    other kinds are tagged so that types compare too: ("status", text),
    ("double", text), NIL_BULK, NIL_ARRAY, NULL, ("map", [(k, v)...]),
    ("set", items), ("push", items), ("verbatim", data), ("bool", text),
    ("bignum", text)."""
    if pos >= len(buf):
        raise Incomplete
    kind = buf[pos:pos + 1]
    line, pos = _line(buf, pos + 1)
    if kind == b"+":
        return ("status", line), pos
    if kind == b"-":
        return Err(line.decode()), pos
    if kind == b":":
        return int(line), pos
    if kind in (b"$", b"="):
        n = int(line)
        if n < 0:
            return NIL_BULK, pos
        if len(buf) < pos + n + 2:
            raise Incomplete
        data = buf[pos:pos + n]
        return (data if kind == b"$" else ("verbatim", data)), pos + n + 2
    if kind == b"_":
        return NULL, pos
    if kind == b",":
        return ("double", line), pos
    if kind == b"#":
        return ("bool", line), pos
    if kind == b"(":
        return ("bignum", line), pos
    if kind in (b"*", b"~", b">", b"%"):
        n = int(line)
        if n < 0:
            return NIL_ARRAY, pos
        count = 2 * n if kind == b"%" else n
        items = []
        for _ in range(count):
            item, pos = parse(buf, pos)
            items.append(item)
        if kind == b"*":
            return items, pos
        if kind == b"%":
            return ("map", [(items[i], items[i + 1]) for i in range(0, count, 2)]), pos
        return ("set" if kind == b"~" else "push", items), pos
    raise ValueError("bad RESP type %r" % kind)


def encode(args) -> bytes:
    """A command as a RESP array of bulk strings (str and int arguments too)."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def parse_plain(buf: bytes, pos: int = 0):
    """One reply the way the integration tests read it: statuses are str,
    errors RuntimeError, doubles ("double", text), null bulks and RESP3
    nulls "NULL", null arrays "NULL-ARRAY", maps flat lists."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise Incomplete
    kind, line, pos = buf[pos:pos + 1], buf[pos + 1:end], end + 2
    if kind == b"+":
        return line.decode(), pos
    if kind == b"-":
        return RuntimeError(line.decode()), pos
    if kind == b":":
        return int(line), pos
    if kind == b",":
        return ("double", line), pos
    if kind == b"_":
        return "NULL", pos
    if kind == b"$":
        n = int(line)
        if n < 0:
            return "NULL", pos
        if len(buf) < pos + n + 2:
            raise Incomplete
        return buf[pos:pos + n], pos + n + 2
    if kind in (b"*", b"%", b"~"):
        n = int(line)
        if n < 0:
            return "NULL-ARRAY", pos
        items = []
        for _ in range(2 * n if kind == b"%" else n):
            item, pos = parse_plain(buf, pos)
            items.append(item)
        return items, pos
    raise ValueError(kind)


class RespConn:
    """A raw connection for the differential tests: replies as `parse`
    reads them; resp3 switches the protocol with HELLO 3 first."""

    reader = staticmethod(parse)

    def __init__(self, port: int, resp3: bool = False, timeout: float = 20.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        if resp3:
            self.call(b"HELLO", b"3")

    def send(self, *args) -> None:
        self.sock.sendall(encode(args))

    def read(self):
        """The next reply or pushed message."""
        while True:
            try:
                value, pos = self.reader(self.buf, 0)
            except Incomplete:
                data = self.sock.recv(1 << 16)
                if not data:
                    raise ConnectionError("connection closed")
                self.buf += data
                continue
            self.buf = self.buf[pos:]
            return value

    def call(self, *args):
        self.send(*args)
        return self.read()

    def close(self):
        self.sock.close()


class Conn(RespConn):
    """A raw connection for the integration tests (RESP2, or RESP3): send
    now, read the reply later (or never); replies as `parse_plain` reads
    them. `id` is the connection's CLIENT ID."""

    reader = staticmethod(parse_plain)

    def __init__(self, port: int, resp3: bool = False):
        super().__init__(port, resp3, timeout=10)
        self.id = self.call("CLIENT", "ID")

    def read(self, timeout: float = 10.0):
        self.sock.settimeout(timeout)
        return super().read()

    def pending(self, wait: float = 0.15) -> bool:
        """True if a reply arrived within `wait` seconds."""
        self.sock.settimeout(wait)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        self.buf += data
        return True
