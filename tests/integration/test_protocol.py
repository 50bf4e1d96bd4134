"""The wire protocol of a started hakv-server: RESP2 and RESP3 (HELLO), inline
commands, pipelining, values arriving in small pieces.

Where Redis has an observable answer, the same bytes go to a real
redis-server 7.0 (fixture real_redis) and the replies must be identical.
"""

from __future__ import annotations

import re
import socket
import subprocess
import time

import hiredis
import pytest
import redis

from procs import hakv_server, redis_server


class Raw:
    """A socket speaking raw bytes: send exactly what a test wants, read replies."""

    def __init__(self, port: int, timeout: float = 5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = hiredis.Reader(replyError=lambda m: ("ERR", m))
        self.pending = []

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def replies(self, n: int) -> list:
        """The next n replies (RESP2 or RESP3, pushes included)."""
        out = []
        while len(out) < n:
            reply = self.reader.gets()
            if reply is not False:
                out.append(reply)
                continue
            data = self.sock.recv(1 << 20)
            if not data:
                raise ConnectionError("closed after %d replies" % len(out))
            self.reader.feed(data)
        return out

    def call(self, *argv):
        self.send(b"*%d\r\n" % len(argv) + b"".join(
            b"$%d\r\n%s\r\n" % (len(a), a) for a in (
                x if isinstance(x, bytes) else str(x).encode() for x in argv)))
        return self.replies(1)[0]

    def read_all(self, quiet: float = 0.15, first: float = 5.0) -> tuple[bytes, bool]:
        """Every byte until the peer closes, or is quiet for `quiet` seconds
        once something arrived (`first` seconds for the first byte); returns
        (data, closed)."""
        self.sock.settimeout(first)
        data = b""
        try:
            while True:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    return data, True
                data += chunk
                self.sock.settimeout(quiet)
        except socket.timeout:
            return data, False
        except ConnectionResetError:
            return data, True

    def close(self):
        self.sock.close()


def exchange(port: int, data: bytes) -> tuple[bytes, bool]:
    c = Raw(port)
    try:
        c.send(data)
        return c.read_all()
    finally:
        c.close()


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """One hakv-server and one redis-server shared by the comparison tests of
    this module (each test starts from empty databases)."""
    d = tmp_path_factory.mktemp("protocol-pair")
    ours = hakv_server(str(d / "hakv")).start()
    theirs = redis_server(str(d / "redis")).start()
    yield ours, theirs
    ours.stop()
    theirs.stop()


def same_bytes(pair, data: bytes, normalize=lambda b: b):
    for proc in pair:
        c = Raw(proc.port)
        assert c.call("FLUSHALL") == b"OK"
        c.close()
    ours = exchange(pair[0].port, data)
    theirs = exchange(pair[1].port, data)
    assert (normalize(ours[0]), ours[1]) == (normalize(theirs[0]), theirs[1]), data


def no_ids(data: bytes) -> bytes:
    """Client ids differ between servers: hide them (HELLO replies, CLIENT ID)."""
    return re.sub(rb"\$2\r\nid\r\n:\d+\r\n", b"$2\r\nid\r\n:ID\r\n", data)


# ------------------------------------------------------------------ RESP2 / RESP3


def test_resp2_with_redis_py(hakv):
    r = hakv.client(protocol=2)
    hello = r.execute_command("HELLO")  # a flat list in RESP2
    assert hello[hello.index(b"proto") + 1] == 2
    assert r.ping() is True
    assert r.set("k", "v") is True
    assert r.get("k") == b"v"
    assert r.get("missing") is None
    assert r.echo(b"\x00\xff") == b"\x00\xff"
    assert r.incr("n") == 1
    assert r.config_get("maxmemory") == {"maxmemory": "0"}


def test_resp3_with_redis_py(hakv):
    r3 = hakv.client(protocol=3)
    assert r3.ping() is True
    assert r3.set("k", "v") is True
    assert r3.get("k") == b"v"
    assert r3.get("nope") is None
    info = r3.execute_command("HELLO", "3")
    assert info[b"proto"] == 3 and info[b"server"] == b"redis" and info[b"version"] == b"7.0.15"
    assert r3.config_get("maxmemory*")["maxmemory"] == "0"
    ps = r3.pubsub()
    ps.subscribe("ch")
    assert ps.get_message(timeout=2)["type"] == "subscribe"
    assert r3.publish("ch", "hello") == 1
    msg = ps.get_message(timeout=2)
    assert msg["type"] == "message" and msg["data"] == b"hello"
    ps.close()
    r3.close()


HELLO_CASES = [
    b"HELLO\r\n",
    b"HELLO 2\r\n",
    b"HELLO 3\r\n",
    b"HELLO 4\r\n",
    b"HELLO x\r\n",
    b"HELLO 3 foo\r\n",
    b"HELLO 3 SETNAME\r\n",
    b"HELLO 3 SETNAME myname\r\nCLIENT GETNAME\r\n",
    b"HELLO 3 SETNAME my name\r\n",
    b"HELLO 3 AUTH default\r\n",
    b"HELLO 3 AUTH default whatever\r\n",  # the default user has no password
    b"HELLO 3 AUTH nobody pw\r\n",
    b"HELLO 3\r\nHELLO 2\r\nGET nope\r\n",
]


@pytest.mark.parametrize("data", HELLO_CASES)
def test_hello_matches_redis(pair, data):
    same_bytes(pair, data, no_ids)


RESP3_CASES = [
    # nulls, maps, verbatim strings, pushes, errors, arrays: byte for byte
    b"GET nope\r\nMGET a nope\r\n",
    b"CONFIG GET maxmemory\r\n",
    b"SUBSCRIBE ch\r\nPING\r\nPING x\r\nUNSUBSCRIBE ch\r\nUNSUBSCRIBE\r\n",
    b"PSUBSCRIBE p*\r\nPUNSUBSCRIBE\r\n",
    b"SET k v\r\nGET k\r\nINCR k\r\nINCRBYFLOAT f 1.5\r\nEXISTS k nope\r\n",
    b"MULTI\r\nGET nope\r\nPING\r\nEXEC\r\n",
    b"EXEC\r\nNOSUCH a b\r\n",
    b"CONFIG GET maxmemory-polic*\r\n",
]


@pytest.mark.parametrize("data", RESP3_CASES)
def test_resp3_replies_match_redis(pair, data):
    same_bytes(pair, b"HELLO 3\r\n" + data, no_ids)


@pytest.mark.parametrize("data", [c for c in RESP3_CASES if b"HELLO" not in c])
def test_resp2_replies_match_redis(pair, data):
    same_bytes(pair, data)


def test_resp3_push_arrives_between_replies(hakv):
    sub = Raw(hakv.port)
    assert sub.call("HELLO", "3")[b"proto"] == 3
    assert sub.call("SUBSCRIBE", "news") == [b"subscribe", b"news", 1]
    # In RESP3 a subscribed connection may run any command.
    assert sub.call("SET", "x", "1") == b"OK"
    pub = Raw(hakv.port)
    assert pub.call("PUBLISH", "news", "flash") == 1
    sub.send(b"*2\r\n$3\r\nGET\r\n$1\r\nx\r\n")
    assert sub.replies(2) == [[b"message", b"news", b"flash"], b"1"]
    sub.close()
    pub.close()


def test_client_info_is_verbatim_in_resp3(hakv):
    c = Raw(hakv.port)
    c.call("HELLO", "3")
    c.send(b"CLIENT INFO\r\n")
    data, _ = c.read_all()
    assert data.startswith(b"=") and b"\r\ntxt:id=" in data and b" resp=3" in data
    c.close()


# ------------------------------------------------------------------ inline commands


INLINE_CASES = [
    b"PING\r\n",
    b"PING\n",
    b"ping hello\r\n",
    b"SET a b\r\nGET a\r\n",
    b'SET "a key" "a value"\r\nGET "a key"\r\n',
    b"SET 'q' 'it\\'s'\r\nGET q\r\n",
    b'ECHO "\\x41\\x42\\n\\t\\"\\\\"\r\n',
    b"ECHO 'no \\n escapes'\r\n",
    b'ECHO ""\r\n',
    b"   ECHO    spaced    \r\n",
    b"\r\n\r\nPING\r\n",
    b"\n\nPING\n",
    b'ECHO "a"b\r\nPING\r\n',
    b"ECHO 'a\r\nPING\r\n",
    b"NOSUCHCMD a b\r\n",
    b"GET\r\n",
    b"SET a b c d\r\n",
    b"ECHO \"caf\xc3\xa9\"\r\n",
]


@pytest.mark.parametrize("data", INLINE_CASES)
def test_inline_matches_redis(pair, data):
    same_bytes(pair, data)


def test_inline_split_across_reads(hakv):
    c = Raw(hakv.port)
    for ch in b'SET "x y" z\r\nGET "x y"\r\n':
        c.send(bytes([ch]))
        time.sleep(0.001)
    assert c.replies(2) == [b"OK", b"z"]
    c.close()


def redis_cli(port: int, *args: str, stdin: str | None = None) -> str:
    proc = subprocess.run(["redis-cli", "-p", str(port), *args], input=stdin,
                          capture_output=True, text=True, timeout=20)
    return proc.stdout


def test_redis_cli_against_both(pair):
    """redis-cli: arguments with spaces and quotes, its interactive (stdin)
    mode, --no-raw formatting of nil / integers / errors / nested arrays."""
    hakv, real_redis = pair
    for port in (hakv.port, real_redis.port):
        redis_cli(port, "FLUSHALL")
    cases = [
        ("SET", "spaced key", 'a "quoted" value'),
        ("GET", "spaced key"),
        ("GET", "nope"),
        ("INCR", "counter"),
        ("INCR", "spaced key"),
        ("CONFIG", "GET", "maxmemory"),
        ("NOSUCH",),
    ]
    for case in cases:
        assert redis_cli(hakv.port, "--no-raw", *case) == redis_cli(
            real_redis.port, "--no-raw", *case), case
    script = 'SET k "hello world"\nGET k\nECHO \'single quoted\'\nGET\nMULTI\nINCR c\nEXEC\n'
    assert redis_cli(hakv.port, stdin=script) == redis_cli(real_redis.port, stdin=script)


def test_redis_cli_pipe_mode(hakv):
    cmds = "".join("SET key:%d %d\r\n" % (i, i) for i in range(2000))
    out = subprocess.run(["redis-cli", "-p", str(hakv.port), "--pipe"], input=cmds.encode(),
                         capture_output=True, timeout=60)
    assert b"errors: 0, replies: 2000" in out.stdout
    assert hakv.client().dbsize() == 2000


# ------------------------------------------------------------------ pipelining


def stats(client) -> dict:
    return client.info("stats")


def test_thousands_of_commands_in_one_write(hakv):
    n = 10000
    c = Raw(hakv.port)
    c.call("PING")
    before = stats(hakv.client())
    data = b"".join(b"*2\r\n$4\r\nINCR\r\n$3\r\nctr\r\n" for _ in range(n))
    c.send(data)
    replies = c.replies(n)
    assert replies == list(range(1, n + 1))  # every reply, in order
    after = stats(hakv.client())
    # One write per read batch: however the kernel split our bytes, the
    # server answered each piece it read with a single write.
    reads = after["total_reads_processed"] - before["total_reads_processed"]
    writes = after["total_writes_processed"] - before["total_writes_processed"]
    assert writes <= reads <= n // 20
    c.close()


def test_pipeline_with_redis_py(r):
    pipe = r.pipeline(transaction=False)
    for i in range(5000):
        pipe.set("p:%d" % i, i)
        pipe.get("p:%d" % i)
    out = pipe.execute()
    assert out == [x for i in range(5000) for x in (True, str(i).encode())]


def test_mixed_pipeline_matches_redis(pair):
    data = (b"SET a 1\r\n*2\r\n$4\r\nINCR\r\n$1\r\na\r\nGET a\r\n*1\r\n$4\r\nPING\r\n"
            b"ECHO x\r\n*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$0\r\n\r\nGET b\r\nGET\r\n") * 50
    same_bytes(pair, data)


def test_large_value_in_many_small_chunks(hakv):
    value = bytes(range(256)) * (12 * 1024 * 1024 // 256)  # 12 MB
    payload = b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%d\r\n%s\r\n" % (len(value), value)
    c = Raw(hakv.port, timeout=60)
    start = time.perf_counter()
    for i in range(0, len(payload), 8192):
        c.send(payload[i:i + 8192])
    assert c.replies(1) == [b"OK"]
    elapsed = time.perf_counter() - start
    assert elapsed < 10, elapsed  # linear in the size, not quadratic
    got = hakv.client(socket_timeout=60).get("big")
    assert got == value
    # Meanwhile the server stayed responsive for others.
    assert hakv.client().ping()
    c.close()


def test_value_arriving_byte_by_byte(hakv):
    value = b"0123456789" * 30
    payload = b"*3\r\n$3\r\nSET\r\n$1\r\nv\r\n$%d\r\n%s\r\n" % (len(value), value)
    c = Raw(hakv.port)
    for i in range(len(payload)):
        c.send(payload[i:i + 1])
    assert c.replies(1) == [b"OK"]
    assert c.call("GET", "v") == value
    c.close()


def test_replies_follow_a_blocked_command_in_order(hakv):
    """Commands pipelined after a blocking one wait for it: replies stay in order."""
    c = Raw(hakv.port)
    c.send(b"BLPOP q 5\r\nSET after 1\r\nGET after\r\n")
    time.sleep(0.2)
    assert hakv.client().get("after") is None  # not run yet
    hakv.client().rpush("q", "item")
    assert c.replies(3) == [[b"q", b"item"], b"OK", b"1"]
    c.close()


def test_many_connections_at_once(hakv):
    clients = [Raw(hakv.port) for _ in range(200)]
    for i, c in enumerate(clients):
        c.send(b"SET c:%d %d\r\n" % (i, i))
    for c in clients:
        assert c.replies(1) == [b"OK"]
    for c in clients:
        c.close()
    r = hakv.client()
    assert r.dbsize() == 200
    assert int(r.info("stats")["total_connections_received"]) >= 200


def test_redis_py_resp3_client_survives_errors(hakv):
    r3 = hakv.client(protocol=3)
    with pytest.raises(redis.ResponseError, match="unknown command"):
        r3.execute_command("NOSUCH")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        r3.rpush("l", "x")
        r3.incr("l")
    assert r3.ping()
    r3.close()
