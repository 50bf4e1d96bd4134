"""Server commands on a started hakv-server: INFO (Redis's sections and field
names), DBSIZE, FLUSHDB / FLUSHALL [ASYNC|SYNC], SWAPDB, COMMAND and its
subcommands, TIME, LASTSAVE, DEBUG SLEEP, MONITOR, SHUTDOWN; compared with a
real redis-server 7.0 where its answer is observable.
"""

from __future__ import annotations

import re
import socket
import threading
import time

import hiredis
import pytest

from procs import hakv_server, redis_server


class Conn:
    def __init__(self, port: int, timeout: float = 10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.reader = hiredis.Reader(replyError=lambda m: ("ERR", m))

    def send(self, *argv):
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

    def close(self):
        self.sock.close()


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    d = tmp_path_factory.mktemp("server-pair")
    ours = hakv_server(str(d / "hakv")).start()
    theirs = redis_server(str(d / "redis"), None, "--enable-debug-command", "yes").start()
    yield ours, theirs
    ours.stop()
    theirs.stop()


# ------------------------------------------------------------------ INFO


def sections(text: bytes) -> dict:
    out = {}
    current = None
    for line in text.decode().split("\r\n"):
        if line.startswith("# "):
            current = out[line[2:]] = []
        elif line:
            current.append(line.split(":", 1)[0])
    return out


@pytest.mark.parametrize("args", [(), ("default",), ("all",), ("everything",), ("server",),
                                  ("CLIENTS", "memory"), ("stats", "cpu", "nosuch"),
                                  ("keyspace",), ("nosuch",), ("errorstats",),
                                  ("default", "commandstats")])
def test_info_sections_and_fields_match_redis(pair, args):
    ours, theirs = Conn(pair[0].port), Conn(pair[1].port)
    for c in (ours, theirs):
        c("FLUSHALL")
        c("SET", "k", "v", "EX", "100")
        c("SET", "k2", "v")
        c("NOSUCH")
        c("CONFIG", "RESETSTAT")  # both start the stats from zero
        c("SET", "k3", "v")
        c("GET", "nope")
        c("INCR", "k")
    got, want = sections(ours("INFO", *args)), sections(theirs("INFO", *args))
    assert list(got) == list(want)
    for name, fields in want.items():
        if name in ("Commandstats", "Latencystats"):
            continue  # depend on each server's own command history
        extra = [f for f in got[name] if f not in fields]
        assert [f for f in fields if f in got[name]] == fields, name
        assert extra in ([], ["hakv_version"]), name


def test_info_values(hakv):
    c = Conn(hakv.port)
    c("CONFIG", "RESETSTAT")
    c("SET", "a", "1")
    c("SET", "b", "2", "EX", "100")
    c("SELECT", 2)
    c("SET", "c", "3")
    c("GET", "c")
    c("GET", "nope")
    c("NOSUCH")
    c("INCR", "c")
    c("SET", "c", "x")
    c("INCR", "c")
    info = {}
    for line in c("INFO", "everything").decode().split("\r\n"):
        if ":" in line:
            k, v = line.split(":", 1)
            info[k] = v
    assert info["redis_version"] == "7.0.15" and info["redis_mode"] == "standalone"
    assert info["tcp_port"] == str(hakv.port)
    assert info["db0"] == "keys=2,expires=1,avg_ttl=0" and info["db2"] == "keys=1,expires=0,avg_ttl=0"
    assert int(info["connected_clients"]) >= 1 and info["role"] == "master"
    assert info["keyspace_hits"] == "1" and info["keyspace_misses"] == "1"
    assert info["errorstat_ERR"] == "count=2"
    assert info["total_error_replies"] == "2"
    assert info["cmdstat_incr"].startswith("calls=2,") and info["cmdstat_incr"].endswith(
        "rejected_calls=0,failed_calls=1")
    assert re.fullmatch(r"calls=0,usec=0,usec_per_call=0.00,rejected_calls=1,failed_calls=0",
                        info.get("cmdstat_nosuch", "calls=0,usec=0,usec_per_call=0.00,"
                                 "rejected_calls=1,failed_calls=0"))
    assert re.fullmatch(r"p50=[\d.]+,p99=[\d.]+,p99\.9=[\d.]+",
                        info["latency_percentiles_usec_set"])
    assert int(info["total_net_input_bytes"]) > 0 and int(info["total_net_output_bytes"]) > 0
    assert int(info["used_memory"]) > 0 and info["used_memory_human"][-1] in "BKMG"
    assert float(info["used_cpu_user"]) > 0


def test_info_rejected_calls_counted_on_the_command(hakv):
    c = Conn(hakv.port)
    c("GET")  # wrong arity: rejected, not failed
    c("CONFIG")  # the container itself
    text = c("INFO", "commandstats").decode()
    assert "cmdstat_get:calls=0,usec=0,usec_per_call=0.00,rejected_calls=1,failed_calls=0" \
        in text
    assert "cmdstat_config:calls=0,usec=0,usec_per_call=0.00,rejected_calls=1" in text


# ------------------------------------------------------------------ keyspace commands


def test_dbsize_flush_swapdb_match_redis(pair):
    script = [
        ("FLUSHALL",), ("DBSIZE",), ("SET", "a", "1"), ("SET", "b", "2"), ("DBSIZE",),
        ("SELECT", "1"), ("SET", "c", "3"), ("DBSIZE",), ("SELECT", "0"),
        ("SWAPDB", "0", "1"), ("DBSIZE",), ("GET", "c"), ("SWAPDB", "1", "0"), ("GET", "a"),
        ("SWAPDB", "0", "0"), ("SWAPDB", "0", "16"), ("SWAPDB", "x", "0"), ("SWAPDB", "0", "x"),
        ("SWAPDB", "-1", "0"), ("FLUSHDB", "ASYNC"), ("DBSIZE",), ("SELECT", "1"), ("DBSIZE",),
        ("FLUSHDB", "SYNC"), ("FLUSHDB", "LAZY"), ("FLUSHDB", "SYNC", "ASYNC"),
        ("FLUSHALL", "sync"), ("FLUSHALL", "x"), ("DBSIZE", "x"), ("SET", "z", "1"),
        ("FLUSHALL", "async"), ("DBSIZE",), ("SELECT", "0"), ("DBSIZE",),
    ]
    ours, theirs = Conn(pair[0].port), Conn(pair[1].port)
    for argv in script:
        assert ours(*argv) == theirs(*argv), argv


def test_flushall_async_frees_in_the_background(hakv):
    r = hakv.client(socket_timeout=60)
    for i in range(0, 300_000, 20_000):
        r.mset({b"k%d" % j: b"v" for j in range(i, i + 20_000)})
    assert r.dbsize() == 300_000
    pinger = hakv.client()
    t0 = time.perf_counter()
    assert r.flushall(asynchronous=True)
    took = time.perf_counter() - t0
    assert r.dbsize() == 0
    worst = 0.0
    end = time.time() + 1.0
    while time.time() < end:
        a = time.perf_counter()
        pinger.ping()
        worst = max(worst, time.perf_counter() - a)
    info = r.info("memory")
    assert info["lazyfree_pending_objects"] == 0 and info["lazyfreed_objects"] >= 1
    assert took < 0.5 and worst < 0.1, (took, worst)


def test_swapdb_wakes_blocked_clients(hakv):
    blocked = Conn(hakv.port)
    blocked.send("BLPOP", "q", 5)
    time.sleep(0.1)
    c = Conn(hakv.port)
    c("SELECT", 1)
    c("RPUSH", "q", "from-db1")
    assert c("SWAPDB", 0, 1) == b"OK"
    assert blocked.read() == [b"q", b"from-db1"]


# ------------------------------------------------------------------ COMMAND


def test_command_count_and_list(hakv):
    c = Conn(hakv.port)
    everything = c("COMMAND")
    assert c("COMMAND", "COUNT") == len(everything)
    names = {entry[0] for entry in everything}
    assert {b"get", b"set", b"config", b"multi", b"subscribe", b"client"} <= names
    listed = c("COMMAND", "LIST")
    assert set(listed) >= names and b"config|get" in listed
    assert sorted(c("COMMAND", "LIST", "FILTERBY", "PATTERN", "conf*")) == [
        b"config", b"config|get", b"config|help", b"config|resetstat", b"config|rewrite",
        b"config|set"]
    assert b"get" in c("COMMAND", "LIST", "FILTERBY", "ACLCAT", "string")
    assert b"set" not in c("COMMAND", "LIST", "FILTERBY", "ACLCAT", "read")


COMMAND_CASES = [
    ("COMMAND", "INFO", "get"), ("COMMAND", "INFO", "set", "nosuch", "mset"),
    ("COMMAND", "INFO", "config|get"), ("COMMAND", "INFO", "multi", "exec", "watch"),
    ("COMMAND", "INFO", "shutdown", "publish", "subscribe", "ssubscribe", "spublish"),
    ("COMMAND", "INFO", "client|kill", "client|list", "auth", "hello", "ping"),
    ("COMMAND", "GETKEYS", "get", "a"), ("COMMAND", "GETKEYS", "set", "a", "b", "EX", "1"),
    ("COMMAND", "GETKEYS", "mset", "a", "b", "c", "d"), ("COMMAND", "GETKEYS", "get"),
    ("COMMAND", "GETKEYS", "ping", "x"), ("COMMAND", "GETKEYS", "get", "a", "b"),
    ("COMMAND", "GETKEYS", "nosuch", "a"), ("COMMAND", "GETKEYS", "config", "get", "x"),
    ("COMMAND", "GETKEYS", "config", "x", "x"), ("COMMAND", "GETKEYS", "watch", "a", "b"),
    ("COMMAND", "GETKEYS", "ssubscribe", "a", "b"), ("COMMAND", "COUNT", "x"),
    ("COMMAND", "FOO"), ("COMMAND", "LIST", "FILTERBY", "FOO", "x"),
    ("COMMAND", "LIST", "x"), ("COMMAND", "DOCS", "nosuch"),
    ("TIME", "x"), ("LASTSAVE", "x"), ("ECHO",), ("MONITOR", "x"),
]


def no_keyspecs(reply):
    """COMMAND INFO without the tips and key specifications (hakv declares
    neither)."""
    if isinstance(reply, list) and len(reply) == 10 and isinstance(reply[0], bytes) \
            and isinstance(reply[1], int):
        return reply[:7] + [[], [], [no_keyspecs(s) for s in reply[9]]]
    if isinstance(reply, list):
        return [no_keyspecs(x) for x in reply]
    return reply


def test_command_subcommands_match_redis(pair):
    ours, theirs = Conn(pair[0].port), Conn(pair[1].port)
    for argv in COMMAND_CASES:
        got, want = ours(*argv), theirs(*argv)
        if argv[:2] == ("COMMAND", "INFO"):
            got, want = no_keyspecs(got), no_keyspecs(want)
        assert got == want, argv


def test_command_docs(hakv):
    docs = Conn(hakv.port)("COMMAND", "DOCS", "get", "config")
    as_map = dict(zip(docs[::2], docs[1::2]))
    get = dict(zip(as_map[b"get"][::2], as_map[b"get"][1::2]))
    assert get[b"group"] == b"string" and get[b"since"]
    config = dict(zip(as_map[b"config"][::2], as_map[b"config"][1::2]))
    assert b"config|get" in config[b"subcommands"]


# ------------------------------------------------------------------ TIME LASTSAVE DEBUG


def test_time_and_lastsave(hakv):
    c = Conn(hakv.port)
    secs, usecs = c("TIME")
    assert abs(int(secs) + int(usecs) / 1e6 - time.time()) < 2
    assert 0 <= int(usecs) < 1_000_000
    assert abs(c("LASTSAVE") - time.time()) < 60


def test_debug_sleep_blocks_the_server(hakv):
    sleeper, other = Conn(hakv.port), Conn(hakv.port)
    sleeper.send("DEBUG", "SLEEP", "0.5")
    time.sleep(0.05)
    t0 = time.perf_counter()
    assert other("PING") == b"PONG"
    assert time.perf_counter() - t0 > 0.3  # the whole server slept
    assert sleeper.read() == b"OK"
    for arg in ("0", "-1", "x", ""):  # like strtod: anything else is no sleep
        assert sleeper("DEBUG", "SLEEP", arg) == b"OK"
    assert sleeper("DEBUG", "SLEEP") == ("ERR", "ERR unknown subcommand or wrong number of "
                                                "arguments for 'SLEEP'. Try DEBUG HELP.")
    assert sleeper("DEBUG", "NOSUCH") == ("ERR", "ERR unknown subcommand or wrong number of "
                                                 "arguments for 'NOSUCH'. Try DEBUG HELP.")


def test_debug_errors_match_redis_with_debug_enabled(pair):
    ours, theirs = Conn(pair[0].port), Conn(pair[1].port)
    for argv in [("DEBUG",), ("DEBUG", "SLEEP"), ("DEBUG", "nosuch"), ("DEBUG", "SLEEP", "0"),
                 ("DEBUG", "sleep", "x")]:
        assert ours(*argv) == theirs(*argv), argv


# ------------------------------------------------------------------ MONITOR


MONITORED = [
    b"SET a b\r\n", b'*3\r\n$3\r\nset\r\n$3\r\nk\x00"\r\n$5\r\n\xff\n\r\t\\\r\n',
    b"SELECT 1\r\n", b"GET a\r\n", b"SELECT 0\r\n", b"AUTH x\r\n", b"AUTH a b\r\n",
    b"HELLO 2 AUTH default pw\r\n", b"CONFIG GET x\r\n", b"GET\r\n", b"NOSUCH\r\n",
    b"MULTI\r\n", b"SET x 1\r\n", b"INCR x\r\n", b"EXEC\r\n", b'ECHO "a b"\r\n', b"INCR a\r\n",
    b"CLIENT ID\r\n", b"CLIENT LIST\r\n", b"DEBUG SLEEP 0\r\n", b"PING\r\n",
    b"SUBSCRIBE q\r\n",
]


def monitor_lines(port: int) -> list:
    mon = socket.create_connection(("127.0.0.1", port), timeout=5)
    mon.sendall(b"MONITOR\r\n")
    assert mon.recv(100) == b"+OK\r\n"
    c = socket.create_connection(("127.0.0.1", port), timeout=5)
    for cmd in MONITORED:
        c.sendall(cmd)
        time.sleep(0.01)
    time.sleep(0.3)
    mon.settimeout(0.5)
    data = b""
    try:
        while True:
            chunk = mon.recv(1 << 16)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        pass
    mon.close()
    c.close()
    return data.split(b"\r\n")


def test_monitor_output_matches_redis(pair):
    ours, theirs = monitor_lines(pair[0].port), monitor_lines(pair[1].port)
    pattern = re.compile(rb"^\+(\d+\.\d{6}) \[(\d+) 127\.0\.0\.1:\d+\] (.*)$")

    def shape(lines):
        out = []
        for line in lines:
            if not line:
                continue
            m = pattern.match(line)
            assert m, line
            assert abs(float(m.group(1)) - time.time()) < 30
            out.append((m.group(2), m.group(3)))
        return out

    assert shape(ours) == shape(theirs)
    assert (b"1", b'"GET" "a"') in shape(ours)
    assert (b"0", b'"AUTH" "(redacted)" "(redacted)"') in shape(ours)


def test_monitor_sees_other_clients_live(hakv):
    mon = Conn(hakv.port)
    assert mon("MONITOR") == b"OK"
    hakv.client().set("live", "1")
    time.sleep(0.2)
    lines = mon.sock.recv(10000).split(b"\r\n")
    assert any(re.match(rb'^\+\d+\.\d{6} \[0 127\.0\.0\.1:\d+\] "SET" "live" "1"$', ln)
               for ln in lines), lines


# ------------------------------------------------------------------ SHUTDOWN


def test_shutdown_nosave_stops_the_process(make_hakv):
    proc = make_hakv()
    c = Conn(proc.port)
    other = Conn(proc.port)
    c.send("SHUTDOWN", "NOSAVE")
    with pytest.raises(ConnectionError):
        c.read()  # no reply: the connection just closes
    proc.proc.wait(10)
    assert proc.proc.returncode == 0
    with pytest.raises(ConnectionError):
        other("PING")
    assert "ready to exit, bye bye" in proc.output()


def test_shutdown_arguments(pair):
    ours, theirs = Conn(pair[0].port), Conn(pair[1].port)
    for argv in [("SHUTDOWN", "MAYBE"), ("MULTI",), ("SHUTDOWN",), ("EXEC",)]:
        assert ours(*argv) == theirs(*argv), argv


def test_sigterm_shuts_down_cleanly(make_hakv):
    proc = make_hakv()
    proc.client().set("k", "v")
    proc.proc.terminate()
    assert proc.proc.wait(10) == 0
    out = proc.output()
    assert "Received SIGTERM scheduling shutdown" in out and "bye bye" in out


def test_concurrent_clients_during_commands(hakv):
    """A burst of clients using the server commands at once."""
    errors = []

    def worker(n):
        try:
            c = Conn(hakv.port)
            for i in range(50):
                c("SET", "w%d:%d" % (n, i), i)
                c("DBSIZE")
                c("INFO", "stats")
                c("COMMAND", "COUNT")
                c("TIME")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert Conn(hakv.port)("DBSIZE") == 400


# ------------------------------------------------------------------ SLOWLOG

def test_slowlog_hides_secrets_as_redis_does(pair):
    """Passwords in AUTH / HELLO, ACL SETUSER's rules and the sensitive
    CONFIG SET values show as (redacted) in SLOWLOG GET."""
    commands = [
        ("ACL", "SETUSER", "w", "on", ">pw", "~*", "+@all"),
        ("HELLO", "2", "AUTH", "w", "pw"),
        ("AUTH", "w", "pw"),
        ("CONFIG", "SET", "masteruser", "u", "maxmemory-samples", "5"),
        ("CONFIG", "SET", "masterauth", "secret", "requirepass", ""),
        ("SET", "k", "v"),
    ]
    logged = []
    for node in pair:
        c = node.client()
        c.config_set("slowlog-log-slower-than", 0)
        c.slowlog_reset()
        for command in commands:
            c.execute_command(*command)
        entries = c.slowlog_get(20)
        logged.append([e["command"] for e in reversed(entries)
                       if not e["command"].startswith((b"SLOWLOG", b"CONFIG SET slowlog"))])
        c.config_set("slowlog-log-slower-than", 10000)
        c.close()
    ours, theirs = logged
    assert ours == theirs
    assert b"AUTH (redacted) (redacted)" in ours
    assert b"CONFIG SET masterauth (redacted) requirepass (redacted)" in ours
