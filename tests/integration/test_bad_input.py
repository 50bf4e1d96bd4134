"""Bad input of every kind, compared byte for byte with a real redis-server 7.0
over raw sockets: malformed RESP, limits, unknown commands, wrong arity,
WRONGTYPE, non-integers. Redis closes the connection on protocol errors and so
must we; the server survives and its data is intact.
"""

from __future__ import annotations

import socket
import time

import hiredis
import pytest

from procs import hakv_server, redis_server


def exchange(port: int, data: bytes, quiet: float = 0.15) -> tuple[bytes, bool]:
    """Send data, read until the peer closes (closed=True) or goes quiet."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        sock.sendall(data)
        out = b""
        sock.settimeout(5)
        while True:
            try:
                chunk = sock.recv(1 << 20)
            except socket.timeout:
                return out, False
            except ConnectionResetError:
                return out, True
            if not chunk:
                return out, True
            out += chunk
            sock.settimeout(quiet)
    finally:
        sock.close()


def call(port: int, *argv):
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    reader = hiredis.Reader(replyError=lambda m: ("ERR", m))
    sock.sendall(b"*%d\r\n" % len(argv) + b"".join(
        b"$%d\r\n%s\r\n" % (len(a), a) for a in (
            x if isinstance(x, bytes) else str(x).encode() for x in argv)))
    while True:
        reply = reader.gets()
        if reply is not False:
            sock.close()
            return reply
        reader.feed(sock.recv(1 << 20))


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad-input")
    ours = hakv_server(str(d / "hakv"), None, "--proto-max-bulk-len", "2mb").start()
    theirs = redis_server(str(d / "redis"), None, "--proto-max-bulk-len", "2mb").start()
    yield ours, theirs
    ours.stop()
    theirs.stop()


SEED = [(b"SET", b"str", b"hello"), (b"RPUSH", b"list", b"a", b"b"), (b"SET", b"num", b"41")]


def seed(port: int) -> None:
    call(port, "FLUSHALL")
    for argv in SEED:
        call(port, *argv)


def assert_intact(port: int) -> None:
    assert call(port, "PING") == b"PONG"
    assert call(port, "GET", "str") == b"hello"
    assert call(port, "LRANGE", "list", 0, -1) == [b"a", b"b"]
    assert call(port, "DBSIZE") == 3


def compare(pair, data: bytes):
    ours, theirs = pair
    for proc in pair:
        seed(proc.port)
    got = exchange(ours.port, data)
    want = exchange(theirs.port, data)
    assert got == want, data
    return got


PROTOCOL_ERRORS = [
    # a bad type byte inside a multibulk
    b"*2\r\n$3\r\nGET\r\n:1\r\n",
    b"*1\r\n+PING\r\n",
    b"*2\r\n$4\r\nECHO\r\n-oops\r\n",
    b"*1\r\n*1\r\n$4\r\nPING\r\n",
    b"*1\r\nPING\r\n",
    # bulk lengths
    b"*1\r\n$-1\r\n",
    b"*1\r\n$-0\r\n",
    b"*1\r\n$abc\r\n",
    b"*1\r\n$04\r\nPING\r\n",
    b"*1\r\n$ 4\r\nPING\r\n",
    b"*2\r\n$4\r\nECHO\r\n$2097153\r\n",  # over proto-max-bulk-len (2mb)
    b"*2\r\n$4\r\nECHO\r\n$99999999999999999999\r\n",
    # multibulk counts
    b"*3000000000\r\n",
    b"*1048577\r\n$4\r\nPING\r\n",  # fine for Redis (waits for more), then junk
    b"*99999999999999999999\r\n",
    b"*-0\r\n",
    b"*+1\r\n$4\r\nPING\r\n",
    b"*01\r\n$4\r\nPING\r\n",
    b"*1x\r\n",
    # inline
    b'SET a "b\r\n',
    b"SET a 'b\r\n",
    b'ECHO "a"b\r\n',
    b"a" * (64 * 1024 + 1),  # an inline line over 64 KB without a newline
    b"*" + b"9" * (64 * 1024 + 1),
    b"*1\r\n$" + b"9" * (64 * 1024 + 1),
    # good commands before the bad one are answered first
    b"PING\r\nSET num 41\r\n*1\r\n$x\r\nPING\r\n",
    b"*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n:1\r\n",
]


@pytest.mark.parametrize("data", PROTOCOL_ERRORS, ids=lambda d: repr(d[:30]))
def test_protocol_errors_match_redis_and_close(pair, data):
    reply, closed = compare(pair, data)
    if b"-ERR Protocol error" in reply:
        assert closed
    for proc in pair:
        assert_intact(proc.port)


COMMAND_ERRORS = [
    b"NOSUCH\r\n",
    b"NOSUCH a b c\r\n",
    b"nosuch " + b"x" * 200 + b"\r\n",  # the argument list in the error is capped
    b"nosuch " + b"a " * 100 + b"\r\n",
    b"*2\r\n$6\r\nnosuch\r\n$3\r\na\x00b\r\n",
    b"GET\r\n",
    b"GET a b\r\n",
    b"SET a\r\n",
    b"CONFIG\r\n",
    b"CONFIG NOSUCH\r\n",
    b"CONFIG GET\r\n",
    b"CLIENT SETNAME\r\n",
    b"INCR str\r\n",
    b"INCRBY num x\r\n",
    b"INCRBY num 1.5\r\n",
    b"INCRBY num 99999999999999999999\r\n",
    b"INCRBY num 9223372036854775807\r\n",
    b"DECRBY num -9223372036854775808\r\n",
    b"INCRBYFLOAT num x\r\n",
    b"INCRBYFLOAT num inf\r\n",
    b"SELECT x\r\n",
    b"SELECT 99\r\n",
    b"SETEX k x v\r\n",
    b"SETEX k -1 v\r\n",
    b"SET k v EX 0\r\n",
    b"SET k v EX x\r\n",
    b"SET k v NX XX\r\n",
    b"SET k v EX 10 PX 10\r\n",
    b"GETRANGE str a b\r\n",
    b"SETRANGE str -1 x\r\n",
    b"MSET a\r\n",
    b"GET list\r\n",
    b"APPEND list x\r\n",
    b"STRLEN list\r\n",
    b"INCR list\r\n",
    b"LPUSH str x\r\n",
    b"GETSET list x\r\n",
    b"MGET str list num nope\r\n",
    b"EXPIRE str x\r\n",
    b"OBJECT\r\n",
    b"PING a b\r\n",
    b"ECHO\r\n",
    b"AUTH\r\n",
    b"AUTH a b c\r\n",
    b"HELLO 1\r\n",
    b"CLIENT KILL\r\n",
    b"SUBSCRIBE\r\n",
    b"PUBLISH a\r\n",
    b"SWAPDB 0 x\r\n",
    b"SWAPDB 0 16\r\n",
    b"FLUSHALL x\r\n",
    b"DBSIZE x\r\n",
    b"WATCH\r\n",
    b"MULTI x\r\n",
    b"EXEC x\r\n",
    b"DISCARD\r\n",
]


@pytest.mark.parametrize("data", COMMAND_ERRORS, ids=lambda d: repr(d[:30]))
def test_command_errors_match_redis(pair, data):
    reply, closed = compare(pair, data)
    assert not closed
    for proc in pair:
        assert call(proc.port, "PING") == b"PONG"


def test_all_command_errors_in_one_pipeline(pair):
    """The same errors pipelined on one connection: same replies, same order."""
    data = b"".join(c for c in COMMAND_ERRORS if not c.startswith((b"EXEC", b"MULTI")))
    reply, closed = compare(pair, data + b"PING\r\n")
    assert not closed and reply.endswith(b"+PONG\r\n")


def test_oversized_bulk_via_config_set(pair):
    """CONFIG SET proto-max-bulk-len takes effect for new connections."""
    ours, theirs = pair
    try:
        for proc in pair:
            assert call(proc.port, "CONFIG", "SET", "proto-max-bulk-len", "1mb") == b"OK"
        compare(pair, b"*2\r\n$4\r\nECHO\r\n$1048577\r\n")
        compare(pair, b"*2\r\n$4\r\nECHO\r\n$1048576\r\n" + b"x" * 1048576 + b"\r\n")
    finally:
        for proc in pair:
            call(proc.port, "CONFIG", "SET", "proto-max-bulk-len", "2mb")


def test_slow_garbage_then_disconnect_does_not_hurt(pair):
    ours, _ = pair
    seed(ours.port)
    sock = socket.create_connection(("127.0.0.1", ours.port), timeout=5)
    sock.sendall(b"*3\r\n$3\r\nSET\r\n$3\r\nstr\r\n$100\r\nonly part of it")
    time.sleep(0.1)
    sock.close()  # half a command, then gone: nothing is applied
    assert_intact(ours.port)
    for blob in (bytes(range(256)) * 64, b"\r\n" * 5000, b"\x00" * 70000):
        exchange(ours.port, blob)
    assert_intact(ours.port)


def test_many_protocol_errors_in_a_row(pair):
    ours, _ = pair
    seed(ours.port)
    for data in PROTOCOL_ERRORS * 5:
        exchange(ours.port, data, quiet=0.02)
    assert_intact(ours.port)
    info = call(ours.port, "INFO", "stats").decode()
    assert "total_error_replies:" in info
