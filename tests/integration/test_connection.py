"""Connections: databases and SELECT, CLIENT *, AUTH and requirepass, QUIT,
RESET, ECHO, PING, maxclients and the idle timeout, against a started
hakv-server (and, where Redis's answer is observable, a real redis-server).
"""

from __future__ import annotations

import re
import socket
import threading
import time

import hiredis
import pytest
import redis

from procs import wait_ready


class Conn:
    """A raw RESP connection (exact replies; errors as ('ERR', text))."""

    def __init__(self, port: int, timeout: float = 5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.reader = hiredis.Reader(replyError=lambda m: ("ERR", m))

    def send(self, *argv) -> None:
        self.sock.sendall(b"*%d\r\n" % len(argv) + b"".join(
            b"$%d\r\n%s\r\n" % (len(a), a) for a in (
                x if isinstance(x, bytes) else str(x).encode() for x in argv)))

    def read(self):
        while True:
            reply = self.reader.gets()
            if reply is not False:
                return reply
            data = self.sock.recv(1 << 20)
            if not data:
                raise ConnectionError("closed")
            self.reader.feed(data)

    def __call__(self, *argv):
        self.send(*argv)
        return self.read()

    def closed(self, wait: float = 2.0) -> bool:
        """True if the server closed this connection (within wait seconds)."""
        self.sock.settimeout(wait)
        try:
            return self.sock.recv(1) == b""
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True

    def close(self):
        self.sock.close()


def err(text: str):
    return ("ERR", text)


def with_password(factory, password: str, *args):
    """A server started with --requirepass (the fixtures' readiness check
    cannot authenticate by itself)."""
    proc = factory("--requirepass", password, *args, wait=False)
    proc.password = password
    wait_ready(proc.port, proc.proc, password=password)
    return proc


# ------------------------------------------------------------------ databases


def test_sixteen_databases_are_isolated(hakv):
    c = Conn(hakv.port)
    for db in range(16):
        assert c("SELECT", db) == b"OK"
        assert c("SET", "k", "db%d" % db) == b"OK"
        assert c("DBSIZE") == 1
    for db in range(16):
        c("SELECT", db)
        assert c("GET", "k") == b"db%d" % db
    assert c("SELECT", 16) == err("ERR DB index is out of range")
    assert c("SELECT", -1) == err("ERR DB index is out of range")
    assert c("SELECT", "x") == err("ERR value is not an integer or out of range")
    assert c("CONFIG", "GET", "databases") == [b"databases", b"16"]
    keyspace = hakv.client().info("keyspace")
    assert sorted(keyspace) == sorted("db%d" % i for i in range(16))
    assert keyspace["db3"]["keys"] == 1


def test_databases_directive(make_hakv):
    proc = make_hakv("--databases", "4")
    c = Conn(proc.port)
    assert c("SELECT", 3) == b"OK"
    assert c("SELECT", 4) == err("ERR DB index is out of range")
    assert c("SWAPDB", 0, 4) == err("ERR DB index is out of range")
    assert c("CONFIG", "SET", "databases", "8") == err(
        "ERR CONFIG SET failed (possibly related to argument 'databases') - "
        "can't set immutable config")


def test_select_is_per_connection(hakv):
    a, b = Conn(hakv.port), Conn(hakv.port)
    a("SELECT", 5)
    a("SET", "k", "five")
    assert b("GET", "k") is None
    b("SELECT", 5)
    assert b("GET", "k") == b"five"


# ------------------------------------------------------------------ CLIENT


def client_line(text: bytes, cid: int) -> dict:
    for line in text.decode().splitlines():
        fields = dict(kv.split("=", 1) for kv in line.split(" "))
        if int(fields["id"]) == cid:
            return fields
    raise AssertionError("client %d not listed" % cid)


def test_client_id_name_info_list(hakv):
    a, b = Conn(hakv.port), Conn(hakv.port)
    ida, idb = a("CLIENT", "ID"), b("CLIENT", "ID")
    assert isinstance(ida, int) and idb > ida
    assert a("CLIENT", "GETNAME") is None
    assert a("CLIENT", "SETNAME", "alpha") == b"OK"
    assert a("CLIENT", "GETNAME") == b"alpha"
    assert a("CLIENT", "SETNAME", "has space") == err(
        "ERR Client names cannot contain spaces, newlines or special characters.")
    assert a("CLIENT", "SETNAME", "") == b"OK"
    assert a("CLIENT", "GETNAME") is None
    a("CLIENT", "SETNAME", "alpha")
    b("SELECT", 3)
    b("SUBSCRIBE", "ch")
    listing = a("CLIENT", "LIST")
    la, lb = client_line(listing, ida), client_line(listing, idb)
    assert la["name"] == "alpha" and la["cmd"] == "client|list" and la["flags"] == "N"
    assert lb["db"] == "3" and lb["sub"] == "1" and lb["flags"] == "P"
    assert la["addr"].startswith("127.0.0.1:") and la["laddr"] == "127.0.0.1:%d" % hakv.port
    # the same fields, in Redis 7.0's order
    assert list(la) == ["id", "addr", "laddr", "fd", "name", "age", "idle", "flags", "db",
                        "sub", "psub", "ssub", "multi", "qbuf", "qbuf-free", "argv-mem",
                        "multi-mem", "rbs", "rbp", "obl", "oll", "omem", "tot-mem", "events",
                        "cmd", "user", "redir", "resp"]
    info = a("CLIENT", "INFO")
    assert client_line(info, ida)["name"] == "alpha" and info.count(b"\n") == 1
    assert [int(line.split(b" ")[0][3:]) for line in
            a("CLIENT", "LIST", "ID", idb, ida, 999999).splitlines()] == [idb, ida]
    assert client_line(a("CLIENT", "LIST", "TYPE", "pubsub"), idb)
    assert b"id=%d " % ida not in a("CLIENT", "LIST", "TYPE", "pubsub")
    assert a("CLIENT", "LIST", "TYPE", "bogus") == err("ERR Unknown client type 'bogus'")
    assert a("CLIENT", "LIST", "ID", "x") == err("ERR Invalid client ID")
    assert a("CLIENT", "LIST", "BOGUS") == err("ERR syntax error")


def test_client_list_matches_redis_format(hakv, real_redis):
    def shape(port):
        line = Conn(port)("CLIENT", "INFO").decode().strip()
        return [kv.split("=", 1)[0] for kv in line.split(" ")]
    assert shape(hakv.port) == shape(real_redis.port)


def test_client_kill(hakv):
    me = Conn(hakv.port)
    victims = [Conn(hakv.port) for _ in range(3)]
    ids = [v("CLIENT", "ID") for v in victims]
    assert me("CLIENT", "KILL", "ID", ids[0]) == 1
    assert victims[0].closed()
    addr = client_line(me("CLIENT", "LIST"), ids[1])["addr"]
    assert me("CLIENT", "KILL", addr) == b"OK"  # the old form answers OK
    assert victims[1].closed()
    assert me("CLIENT", "KILL", addr) == err("ERR No such client")
    victims[2]("SUBSCRIBE", "x")
    assert me("CLIENT", "KILL", "TYPE", "pubsub") == 1
    assert victims[2].closed()
    assert me("CLIENT", "KILL", "ID", "0") == err("ERR client-id should be greater than 0")
    assert me("CLIENT", "KILL", "ID", 99999, "SKIPME", "maybe") == err("ERR syntax error")
    assert me("CLIENT", "KILL", "USER", "nobody") == err("ERR No such user 'nobody'")
    assert me("CLIENT", "KILL", "TYPE", "normal") == 0  # skips the caller by default
    assert me("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "no") == 1
    assert me.closed()


def test_client_pause_write_and_unpause(hakv):
    admin, writer, reader = Conn(hakv.port), Conn(hakv.port), Conn(hakv.port)
    admin("SET", "k", "before")
    assert admin("CLIENT", "PAUSE", 5000, "WRITE") == b"OK"
    writer.send("SET", "k", "during")
    time.sleep(0.2)
    assert reader("GET", "k") == b"before"  # reads pass, the write waits
    assert reader("PING") == b"PONG"
    assert admin("CLIENT", "UNPAUSE") == b"OK"
    assert writer.read() == b"OK"
    assert reader("GET", "k") == b"during"


def test_client_pause_all_expires_by_itself(hakv):
    admin, other = Conn(hakv.port), Conn(hakv.port)
    start = time.monotonic()
    assert admin("CLIENT", "PAUSE", 300) == b"OK"
    assert other("PING") == b"PONG"
    waited = time.monotonic() - start
    assert 0.25 <= waited < 2.0


def test_client_pause_errors(hakv):
    c = Conn(hakv.port)
    assert c("CLIENT", "PAUSE", "x") == err("ERR timeout is not an integer or out of range")
    assert c("CLIENT", "PAUSE", -1) == err("ERR timeout is negative")
    assert c("CLIENT", "PAUSE", 10, "SOME") == err("ERR CLIENT PAUSE mode must be WRITE or ALL")
    assert c("CLIENT", "PAUSE", 10, "WRITE", "x") == err(
        "ERR unknown subcommand or wrong number of arguments for 'pause'. Try CLIENT HELP.")


def test_client_reply_off_skip_on(hakv):
    c = Conn(hakv.port)
    c.send("CLIENT", "REPLY", "OFF")
    c.send("SET", "a", "1")
    c.send("CLIENT", "REPLY", "SKIP")  # still off: SKIP does not turn it on
    c.send("SET", "b", "2")
    c.send("CLIENT", "REPLY", "ON")
    assert c.read() == b"OK"  # the reply of REPLY ON
    c.send("CLIENT", "REPLY", "SKIP")
    c.send("GET", "a")  # skipped
    assert c("GET", "b") == b"2"
    assert c("CLIENT", "REPLY", "MAYBE") == err("ERR syntax error")


def test_client_unblock(hakv):
    admin, blocked = Conn(hakv.port), Conn(hakv.port)
    bid = blocked("CLIENT", "ID")
    blocked.send("BLPOP", "nolist", 0)
    time.sleep(0.1)
    assert admin("CLIENT", "UNBLOCK", bid) == 1
    assert blocked.read() is None  # as if it timed out
    blocked.send("BLPOP", "nolist", 0)
    time.sleep(0.1)
    assert admin("CLIENT", "UNBLOCK", bid, "ERROR") == 1
    assert blocked.read() == err("UNBLOCKED client unblocked via CLIENT UNBLOCK")
    assert admin("CLIENT", "UNBLOCK", bid) == 0  # not blocked now
    assert admin("CLIENT", "UNBLOCK", bid, "MAYBE") == err(
        "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
    assert blocked("PING") == b"PONG"


# ------------------------------------------------------------------ AUTH


AUTH_SEQUENCE = [
    ("GET", "a"), ("PING",), ("ECHO", "x"), ("CLIENT", "ID"),
    ("AUTH",), ("AUTH", "wrong"), ("AUTH", "default", "wrong"), ("AUTH", "nouser", "secret"),
    ("HELLO",), ("HELLO", "3"), ("HELLO", "3", "AUTH", "default", "wrong"),
    ("HELLO", "3", "AUTH", "default"), ("MULTI",), ("EXEC",),
    ("AUTH", "secret"), ("GET", "a"), ("AUTH", "wrong"), ("GET", "a"),  # a failed AUTH keeps
    ("RESET",), ("GET", "a"),  # RESET de-authenticates
    ("HELLO", "2", "AUTH", "default", "secret", "SETNAME", "me"), ("CLIENT", "GETNAME"),
    ("AUTH", "a", "b", "c"), ("QUIT",),
]


def normalized(reply):
    if isinstance(reply, list):  # HELLO's map in RESP2: the id differs
        return [b"ID" if i and reply[i - 1] == b"id" else x for i, x in enumerate(reply)]
    if isinstance(reply, int):
        return "INT"
    return reply


def test_requirepass_matches_redis(make_hakv, make_redis):
    ours = Conn(with_password(make_hakv, "secret").port)
    theirs = Conn(with_password(make_redis, "secret").port)
    for argv in AUTH_SEQUENCE:
        assert normalized(ours(*argv)) == normalized(theirs(*argv)), argv


def test_requirepass_with_redis_py(make_hakv):
    proc = with_password(make_hakv, "secret")
    with pytest.raises(redis.AuthenticationError):
        proc.client(password=None).ping()
    with pytest.raises(redis.AuthenticationError):
        proc.client(password="nope").ping()
    ok = proc.client(password="secret")
    assert ok.ping()
    r3 = proc.client(password="secret", protocol=3, client_name="named")
    assert r3.client_getname() == b"named"
    # CONFIG SET requirepass applies to new connections; live ones stay in.
    ok.config_set("requirepass", "other")
    assert ok.ping()
    assert proc.client(password="other").ping()
    with pytest.raises(redis.AuthenticationError):
        proc.client(password="secret").ping()
    ok.config_set("requirepass", "")
    assert proc.client(password=None).ping()


def test_auth_without_requirepass(hakv):
    c = Conn(hakv.port)
    assert c("AUTH", "x") == err(
        "ERR AUTH <password> called without any password configured for the default user. "
        "Are you sure your configuration is correct?")
    assert c("AUTH", "default", "anything") == b"OK"  # default user: nopass
    assert c("AUTH", "someone", "x") == err(
        "WRONGPASS invalid username-password pair or user is disabled.")


def test_unauthenticated_clients_cannot_send_big_requests(make_hakv):
    proc = with_password(make_hakv, "secret")
    s = socket.create_connection(("127.0.0.1", proc.port), timeout=5)
    s.sendall(b"*20\r\n")
    assert s.recv(100) == b"-ERR Protocol error: unauthenticated multibulk length\r\n"
    s.close()
    s = socket.create_connection(("127.0.0.1", proc.port), timeout=5)
    s.sendall(b"*2\r\n$4\r\nAUTH\r\n$20000\r\n")
    assert s.recv(100) == b"-ERR Protocol error: unauthenticated bulk length\r\n"
    s.close()


# ------------------------------------------------------------------ QUIT RESET ECHO PING


def test_quit_replies_then_closes(hakv):
    c = Conn(hakv.port)
    c.sock.sendall(b"PING\r\nQUIT\r\nPING\r\n")
    assert c.read() == b"PONG"
    assert c.read() == b"OK"
    assert c.closed()


def test_reset_clears_connection_state(hakv):
    c = Conn(hakv.port)
    c("HELLO", "3")
    c("SELECT", 4)
    c("CLIENT", "SETNAME", "someone")
    c("WATCH", "w")
    c("SUBSCRIBE", "ch")
    c("MULTI")
    c.sock.sendall(b"RESET\r\n")
    assert c.sock.recv(100) == b"+RESET\r\n"  # a simple string
    assert c("CLIENT", "GETNAME") is None
    info = c("CLIENT", "INFO")
    assert b" db=0 " in info and b" sub=0 " in info and b" multi=-1 " in info
    assert b" resp=2" in info
    assert c("PUBSUB", "NUMSUB", "ch") == [b"ch", 0]
    # The watch is gone: a change to w does not fail a later transaction.
    Conn(hakv.port)("SET", "w", "1")
    c("MULTI")
    c("PING")
    assert c("EXEC") == [b"PONG"]


def test_echo_and_ping(hakv):
    c = Conn(hakv.port)
    assert c("ECHO", b"\x00bin\xff") == b"\x00bin\xff"
    assert c("PING") == b"PONG"
    assert c("PING", "msg") == b"msg"
    assert c("PING", "a", "b") == err("ERR wrong number of arguments for 'ping' command")
    c("SUBSCRIBE", "ch")
    assert c("PING") == [b"pong", b""]  # RESP2 subscribe mode
    assert c("PING", "m") == [b"pong", b"m"]
    assert c("GET", "x") == err(
        "ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / "
        "RESET are allowed in this context")
    r3 = Conn(hakv.port)
    r3("HELLO", "3")
    r3("SUBSCRIBE", "ch")
    assert r3("PING") == b"PONG"  # RESP3: a normal reply


# ------------------------------------------------------------------ limits


def test_maxclients_matches_redis(make_hakv, make_redis):
    def attempt(port):
        held = [Conn(port) for _ in range(2)]
        for h in held:
            h("PING")
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.settimeout(3)
        data = b""
        while True:
            chunk = s.recv(100)
            if not chunk:
                break
            data += chunk
        s.close()
        held[0].close()
        time.sleep(0.2)
        again = Conn(port)  # a slot is free again
        return data, again("PING")
    ours = attempt(make_hakv("--maxclients", "2").port)
    theirs = attempt(make_redis("--maxclients", "2").port)
    assert ours == theirs == (b"-ERR max number of clients reached\r\n", b"PONG")


def test_maxclients_via_config_set(hakv):
    admin = Conn(hakv.port)
    assert admin("CONFIG", "SET", "maxclients", 2) == b"OK"
    other = Conn(hakv.port)
    other("PING")
    s = socket.create_connection(("127.0.0.1", hakv.port), timeout=5)
    assert s.recv(100) == b"-ERR max number of clients reached\r\n"
    s.close()
    admin("CONFIG", "SET", "maxclients", 10000)
    stats = hakv.client().info("stats")
    assert stats["rejected_connections"] == 1


def test_idle_timeout_closes_idle_clients_only(make_hakv):
    proc = make_hakv("--timeout", "1", "--hz", "50")
    idle = Conn(proc.port)
    idle("PING")
    busy = Conn(proc.port)
    subscriber = Conn(proc.port)
    subscriber("SUBSCRIBE", "ch")
    blocked = Conn(proc.port)
    blocked.send("BLPOP", "q", 0)
    stop = threading.Event()

    def keep_busy():
        while not stop.is_set():
            busy("PING")
            time.sleep(0.2)

    t = threading.Thread(target=keep_busy)
    t.start()
    try:
        start = time.monotonic()
        assert idle.closed(wait=5)
        assert 0.9 <= time.monotonic() - start < 3
        time.sleep(0.5)
    finally:
        stop.set()
        t.join()
    assert busy("PING") == b"PONG"
    assert subscriber("PING") == [b"pong", b""]
    proc.client().rpush("q", "x")
    assert blocked.read() == [b"q", b"x"]


def test_timeout_config_set_applies_live(hakv):
    c = Conn(hakv.port)
    assert c("CONFIG", "SET", "timeout", 1) == b"OK"
    assert c.closed(wait=4)
    assert hakv.client().config_get("timeout") == {"timeout": "1"}


def test_client_list_shows_idle_and_age(hakv):
    old = Conn(hakv.port)
    oid = old("CLIENT", "ID")
    time.sleep(1.2)
    fields = client_line(Conn(hakv.port)("CLIENT", "LIST"), oid)
    assert int(fields["age"]) >= 1 and int(fields["idle"]) >= 1
    assert re.fullmatch(r"\d+", fields["fd"])


def test_client_pause_write_holds_an_exec_that_writes(hakv):
    admin, tx, reader = Conn(hakv.port), Conn(hakv.port), Conn(hakv.port)
    tx("MULTI")
    tx("GET", "k")
    assert tx("CLIENT", "PAUSE", 300, "WRITE") == b"QUEUED"  # queued, runs in EXEC
    assert tx("EXEC") == [None, b"OK"]
    tx("MULTI")
    tx("SET", "k", "v")
    start = time.monotonic()
    assert tx("EXEC") == [b"OK"]  # held until the pause ends: EXEC writes
    assert time.monotonic() - start >= 0.2
    assert reader("GET", "k") == b"v"
    admin("CLIENT", "UNPAUSE")


# ------------------------------------------------------------------ request path


def test_command_names_in_any_case_and_unknown_names(hakv):
    c = Conn(hakv.port)
    assert c("SET", "k", "v") == b"OK"
    for name in ("get", "GET", "GeT", "gEt"):
        assert c(name, "k") == b"v"
    assert c("GET", "k", "extra") == err("ERR wrong number of arguments for 'get' command")
    assert c("GETX", "k") == err("ERR unknown command 'GETX', with args beginning with: 'k' ")
    # Many distinct spellings (more than a client remembers) keep working.
    for i in range(200):
        name = "".join(ch.upper() if i >> j & 1 else ch for j, ch in enumerate("strlen"))
        assert c(name, "k") == 1
    stats = c("INFO", "commandstats").decode()
    assert re.search(r"cmdstat_get:calls=4,", stats)
    assert re.search(r"cmdstat_strlen:calls=200,", stats)
    c.close()


def test_pipelined_replies_in_order_with_every_reply_type(hakv):
    c = Conn(hakv.port)
    batch = []
    for i in range(50):
        batch += [("SET", b"k%d" % i, b"v" * i), ("GET", b"k%d" % i), ("GET", b"missing"),
                  ("INCR", b"n"), ("GET", b"n"), ("HSET", b"h", b"f%d" % i, b"x"),
                  ("LPUSH", b"k%d" % i, b"x"), ("PING",)]
    c.sock.sendall(b"".join(b"*%d\r\n" % len(a) + b"".join(
        b"$%d\r\n%s\r\n" % (len(x), x.encode() if isinstance(x, str) else x) for x in a)
        for a in batch))
    for i in range(50):
        assert c.read() == b"OK"
        assert c.read() == b"v" * i
        assert c.read() is None
        assert c.read() == i + 1
        assert c.read() == b"%d" % (i + 1)
        assert c.read() == 1
        assert c.read() == err("WRONGTYPE Operation against a key holding the wrong kind of value")
        assert c.read() == b"PONG"
    c.close()
