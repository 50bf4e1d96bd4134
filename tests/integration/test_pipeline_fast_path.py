"""Pipelines of plain data commands (dispatch.run_plain, Client.run): one
read holding many commands takes the batch fast path. Everything the full
path keeps must hold there too: statistics (counted per run of equal
commands, so an INFO in the middle of the pipeline must see them), WATCH,
MONITOR, slowlog, OOM, errors in the middle of a pipeline, the exact reply
bytes in RESP2 and RESP3, and the commands that leave the fast path (MULTI,
CLIENT PAUSE).

Each test sends its whole pipeline with one sendall, so the server reads it
at once (a few KB at most).
"""

from __future__ import annotations

import os
import socket
import time

import pytest

from hakv.common.main import build_server
from hakv.common.resp import RequestParser, encode_command


def pipeline(*cmds) -> bytes:
    return b"".join(encode_command(*c) for c in cmds)


class Raw:
    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)

    def exchange(self, data: bytes, expected: bytes) -> bytes:
        """Send data, read until exactly len(expected) bytes came back."""
        self.sock.sendall(data)
        got = b""
        while len(got) < len(expected):
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            got += chunk
        return got

    def close(self):
        self.sock.close()


@pytest.fixture
def raw(hakv):
    conn = Raw(hakv.port)
    yield conn
    conn.close()


def info_fields(r, section: str) -> dict:
    return r.info(section)


def test_replies_are_the_same_bytes_as_one_by_one(raw):
    data = pipeline((b"SET", b"k", b"v"), (b"GET", b"k"), (b"GET", b"missing"),
                    (b"INCR", b"n"), (b"INCRBY", b"n", b"5000"), (b"LPUSH", b"l", b"a"),
                    (b"GET", b"l"), (b"DEL", b"k", b"n"), (b"SET", b"k", b"v", b"NX"))
    expected = (b"+OK\r\n$1\r\nv\r\n$-1\r\n:1\r\n:5001\r\n:1\r\n"
                b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
                b":2\r\n+OK\r\n")
    assert raw.exchange(data, expected) == expected


def test_resp3_null_and_integers(raw):
    hello = raw.exchange(encode_command(b"HELLO", b"3"), b"%")
    assert hello.startswith(b"%")
    raw.sock.settimeout(0.3)
    try:  # the rest of the HELLO map
        while raw.sock.recv(65536):
            pass
    except socket.timeout:
        pass
    raw.sock.settimeout(5)
    expected = b"_\r\n:1\r\n+OK\r\n$1\r\nv\r\n"
    data = pipeline((b"GET", b"nothing"), (b"INCR", b"c"), (b"SET", b"k", b"v"), (b"GET", b"k"))
    assert raw.exchange(data, expected) == expected


def test_info_in_the_middle_sees_the_counts_so_far(raw, r):
    r.config_resetstat()
    cmds = [(b"SET", b"a", b"1")] * 5 + [(b"GET", b"a")] * 3 + [(b"INFO", b"commandstats")]
    cmds += [(b"GET", b"a")] * 2
    raw.sock.sendall(pipeline(*cmds))
    got = b""
    # 5 +OK, 3 bulks, one bulk of INFO, 2 bulks: read until the last GET's reply.
    while got.count(b"$1\r\n1\r\n") < 5:
        got += raw.sock.recv(65536)
    info = got[got.index(b"# Commandstats"):]
    assert b"cmdstat_set:calls=5," in info
    assert b"cmdstat_get:calls=3," in info
    stats = r.info("commandstats")
    assert stats["cmdstat_get"]["calls"] == 5
    assert stats["cmdstat_set"]["calls"] == 5
    assert stats["cmdstat_info"]["calls"] == 1
    # total_commands_processed: the 11 above and the CONFIG RESETSTAT's
    # successors (this INFO) counted once each.
    assert r.info("stats")["total_commands_processed"] >= 11
    latency = r.info("latencystats")
    assert "latency_percentiles_usec_get" in latency
    assert "latency_percentiles_usec_set" in latency


def test_keyspace_hits_and_misses(raw, r):
    r.config_resetstat()
    r.set("present", "x")
    expected = b"$1\r\nx\r\n$-1\r\n+OK\r\n:1\r\n"
    data = pipeline((b"GET", b"present"), (b"GET", b"absent"), (b"SET", b"absent", b"y"),
                    (b"EXISTS", b"absent"))
    assert raw.exchange(data, expected) == expected
    stats = r.info("stats")
    assert stats["keyspace_hits"] == 2  # GET present, EXISTS absent (now there)
    assert stats["keyspace_misses"] == 1


def test_a_blocked_client_served_in_a_pipeline_is_not_a_keyspace_read(raw, r, hakv):
    # run_plain turns hit / miss counting on for a run of reads only; serving
    # the BLPOP between the pipelined commands is not a read either.
    waiter = hakv.client()
    blocked = waiter.connection_pool.get_connection()
    blocked.send_command("BLPOP", "queue", 5)
    deadline = time.monotonic() + 5
    while r.info("clients")["blocked_clients"] != 1:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    expected = b"$-1\r\n$-1\r\n:1\r\n$-1\r\n$1\r\nv\r\n"
    data = pipeline((b"GET", b"nope"), (b"GET", b"nope"), (b"LPUSH", b"queue", b"x"),
                    (b"GET", b"nope"), (b"GET", b"here"))
    r.set("here", "v")
    r.config_resetstat()
    assert raw.exchange(data, expected) == expected
    assert blocked.read_response() == [b"queue", b"x"]
    waiter.connection_pool.release(blocked)
    waiter.close()
    stats = r.info("stats")
    assert (stats["keyspace_hits"], stats["keyspace_misses"]) == (1, 3)


def test_pipelined_writes_reach_the_aof_in_order(make_hakv):
    # With propagation on, each command of a batch is propagated on its own:
    # a SET EX (propagated as SET PXAT) does not swallow the plain SET after it.
    proc = make_hakv("--appendonly", "yes", "--appendfsync", "always")
    conn = Raw(proc.port)
    try:
        expected = b"+OK\r\n+OK\r\n:1\r\n$1\r\n2\r\n:2\r\n"
        data = pipeline((b"SET", b"a", b"1", b"EX", b"100"), (b"SET", b"b", b"2"),
                        (b"INCR", b"c"), (b"GET", b"b"), (b"INCR", b"c"))
        assert conn.exchange(data, expected) == expected
    finally:
        conn.close()
    path = os.path.join(proc.workdir, "appendonlydir", "appendonly.aof.1.incr.aof")
    with open(path, "rb") as f:
        logged = RequestParser().feed(f.read())
    assert logged[0] == [b"SELECT", b"0"]
    assert [argv[:3] for argv in logged[1:]] == [[b"SET", b"a", b"1"], [b"SET", b"b", b"2"],
                                                  [b"INCR", b"c"], [b"INCR", b"c"]]
    assert logged[1][3:4] == [b"PXAT"] and len(logged[1]) == 5
    assert len(logged[2]) == 3


def test_errors_in_the_middle_of_a_pipeline(raw, r):
    r.config_resetstat()
    data = pipeline((b"SET", b"k", b"v"), (b"GET",), (b"NOSUCHCMD", b"x"), (b"GET", b"k"),
                    (b"GET", b"k", b"extra"), (b"GET", b"k"))
    expected = (b"+OK\r\n-ERR wrong number of arguments for 'get' command\r\n"
                b"-ERR unknown command 'NOSUCHCMD', with args beginning with: 'x' \r\n"
                b"$1\r\nv\r\n-ERR wrong number of arguments for 'get' command\r\n$1\r\nv\r\n")
    assert raw.exchange(data, expected) == expected
    stats = r.info("commandstats")
    assert stats["cmdstat_get"]["calls"] == 2
    assert stats["cmdstat_get"]["rejected_calls"] == 2
    errors = r.info("errorstats")
    assert errors["errorstat_ERR"]["count"] == 3


def test_multi_in_the_middle_of_a_pipeline(raw):
    data = pipeline((b"SET", b"a", b"1"), (b"MULTI",), (b"SET", b"a", b"2"), (b"GET", b"a"),
                    (b"EXEC",), (b"GET", b"a"), (b"INCR", b"a"))
    expected = (b"+OK\r\n+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n$1\r\n2\r\n"
                b"$1\r\n2\r\n:3\r\n")
    assert raw.exchange(data, expected) == expected


def test_a_pipelined_write_breaks_another_clients_watch(raw, r, hakv):
    watcher = hakv.client()
    try:
        with watcher.pipeline() as tx:
            tx.watch("w")
            expected = b"+OK\r\n+OK\r\n$1\r\n2\r\n"
            data = pipeline((b"SET", b"other", b"1"), (b"SET", b"w", b"2"), (b"GET", b"w"))
            assert raw.exchange(data, expected) == expected
            tx.multi()
            tx.set("w", "3")
            with pytest.raises(Exception) as info:
                tx.execute()
            assert "WatchError" in type(info.value).__name__
        assert r.get("w") == b"2"
    finally:
        watcher.close()


def test_monitor_sees_every_pipelined_command(raw, hakv):
    mon = Raw(hakv.port)
    try:
        assert mon.exchange(encode_command(b"MONITOR"), b"+OK\r\n") == b"+OK\r\n"
        expected = b"+OK\r\n$1\r\n1\r\n:2\r\n"
        data = pipeline((b"SET", b"m", b"1"), (b"GET", b"m"), (b"INCR", b"m"))
        assert raw.exchange(data, expected) == expected
        got = b""
        while got.count(b"\r\n") < 3:
            got += mon.sock.recv(65536)
        lines = got.split(b"\r\n")[:3]
        assert lines[0].endswith(b'"SET" "m" "1"')
        assert lines[1].endswith(b'"GET" "m"')
        assert lines[2].endswith(b'"INCR" "m"')
    finally:
        mon.close()


def test_slowlog_logs_every_pipelined_command_at_threshold_zero(raw, r):
    r.config_set("slowlog-log-slower-than", 0)
    r.slowlog_reset()
    expected = b"+OK\r\n+OK\r\n$1\r\n2\r\n"
    data = pipeline((b"SET", b"s", b"1"), (b"SET", b"s", b"2"), (b"GET", b"s"))
    assert raw.exchange(data, expected) == expected
    entries = r.slowlog_get(10)
    # Oldest first; SLOWLOG RESET itself is logged too, as in Redis.
    commands = [e["command"] for e in reversed(entries) if not e["command"].startswith(b"SLOWLOG")]
    assert commands[:3] == [b"SET s 1", b"SET s 2", b"GET s"]


def test_a_restricted_users_pipeline_is_checked_command_by_command(raw, r):
    r.execute_command("ACL", "SETUSER", "app", "on", ">pw", "~app:*", "+get", "+set")
    r.config_resetstat()
    r.execute_command("ACL", "LOG", "RESET")
    assert raw.exchange(encode_command(b"AUTH", b"app", b"pw"), b"+OK\r\n") == b"+OK\r\n"
    # Typed once first, so the pipeline below takes the fast path.
    first = pipeline((b"SET", b"app:1", b"a"), (b"GET", b"app:1"))
    assert raw.exchange(first, b"+OK\r\n$1\r\na\r\n") == b"+OK\r\n$1\r\na\r\n"
    denied = (b"-NOPERM this user has no permissions to access one of the keys used as "
              b"arguments\r\n")
    data = pipeline((b"SET", b"app:2", b"b"), (b"SET", b"other", b"x"), (b"GET", b"app:2"),
                    (b"GET", b"other"), (b"SET", b"app:3", b"c"))
    expected = b"+OK\r\n" + denied + b"$1\r\nb\r\n" + denied + b"+OK\r\n"
    assert raw.exchange(data, expected) == expected
    stats = r.info("commandstats")
    assert stats["cmdstat_set"]["calls"] == 3 and stats["cmdstat_set"]["rejected_calls"] == 1
    assert stats["cmdstat_get"]["calls"] == 2 and stats["cmdstat_get"]["rejected_calls"] == 1
    assert r.info("errorstats")["errorstat_NOPERM"]["count"] == 2
    # Both denials name the same key: Redis groups them in one ACL LOG entry.
    log = r.execute_command("ACL", "LOG")
    assert len(log) == 1 and log[0][b"count"] == 2 and log[0][b"object"] == b"other"
    assert r.exists("other") == 0 and r.get("app:3") == b"c"


def test_oom_rejects_pipelined_writes_only(raw, r):
    r.set("k", "v")
    r.config_set("maxmemory-policy", "noeviction")
    r.config_set("maxmemory", 1)
    try:
        expected = (b"-OOM command not allowed when used memory > 'maxmemory'.\r\n$1\r\nv\r\n"
                    b":1\r\n-OOM command not allowed when used memory > 'maxmemory'.\r\n")
        data = pipeline((b"SET", b"x", b"1"), (b"GET", b"k"), (b"DEL", b"k"),
                        (b"SET", b"y", b"1"))
        assert raw.exchange(data, expected) == expected
        stats = r.info("commandstats")
        assert stats["cmdstat_set"]["rejected_calls"] == 2
    finally:
        r.config_set("maxmemory", 0)


def _refuses_pipelined_writes(raw, error: bytes) -> None:
    """A pipeline of SETs and GETs (both typed before, so it takes the fast
    path): the writes get `error`, the reads their value."""
    expected = b"-" + error + b"\r\n$1\r\nv\r\n-" + error + b"\r\n"
    data = pipeline((b"SET", b"x", b"1"), (b"GET", b"k"), (b"SET", b"y", b"1"))
    assert raw.exchange(data, expected) == expected


def _takes_pipelined_writes(raw) -> None:
    expected = b"+OK\r\n$1\r\nv\r\n+OK\r\n"
    data = pipeline((b"SET", b"x", b"1"), (b"GET", b"k"), (b"SET", b"y", b"1"))
    assert raw.exchange(data, expected) == expected


def test_write_checks_follow_their_state_between_pipelines(raw, r, hakv):
    # run_plain calls only the write checks that may refuse (once per batch):
    # each refusal must start and stop with the state behind it.
    r.set("k", "v")
    _takes_pipelined_writes(raw)
    # NOREPLICAS: min-replicas-to-write without replicas.
    r.config_set("min-replicas-to-write", 1)
    _refuses_pipelined_writes(raw, b"NOREPLICAS Not enough good replicas to write.")
    r.config_set("min-replicas-to-write", 0)
    _takes_pipelined_writes(raw)
    # READONLY: a replica (of a primary that is not there; it serves stale data).
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        r.execute_command("REPLICAOF", "127.0.0.1", spare.getsockname()[1])
        try:
            _refuses_pipelined_writes(raw, b"READONLY You can't write against a read only replica.")
        finally:
            r.execute_command("REPLICAOF", "NO", "ONE")
    _takes_pipelined_writes(raw)
    # MISCONF: a failed BGSAVE with save points configured.
    r.config_set("save", "3600 1")
    os.mkdir(os.path.join(hakv.workdir, "blocked.rdb"))  # renaming onto a directory fails
    r.config_set("dbfilename", "blocked.rdb")
    r.bgsave()
    deadline = time.monotonic() + 10
    while r.info("persistence")["rdb_last_bgsave_status"] != "err":
        assert time.monotonic() < deadline, "the BGSAVE did not fail"
        time.sleep(0.05)
    misconf = (b"MISCONF Redis is configured to save RDB snapshots, but it's currently unable "
               b"to persist to disk. Commands that may modify the data set are disabled, "
               b"because this instance is configured to report errors during writes if RDB "
               b"snapshotting fails (stop-writes-on-bgsave-error option). Please check the "
               b"Redis logs for details about the RDB error.")
    _refuses_pipelined_writes(raw, misconf)
    r.config_set("stop-writes-on-bgsave-error", "no")
    _takes_pipelined_writes(raw)


def test_client_pause_write_holds_the_pipeline_in_order(raw, r):
    r.execute_command("CLIENT", "PAUSE", "400", "WRITE")
    start = time.monotonic()
    expected = b"$-1\r\n+OK\r\n$1\r\n1\r\n"
    data = pipeline((b"GET", b"p"), (b"SET", b"p", b"1"), (b"GET", b"p"))
    assert raw.exchange(data, expected) == expected
    assert time.monotonic() - start >= 0.3  # the SET (and the GET after it) waited


def test_plain_flags_of_the_command_table():
    table = build_server(["--port", "0", "--save", ""]).server.table.commands
    for name in (b"get", b"set", b"incr", b"hset", b"lpush", b"zadd", b"del", b"info", b"ping",
                 b"select", b"mget", b"expire"):
        assert table[name].plain, name
    # Anything that may change the client's or the server's state, or blocks.
    for name in (b"multi", b"exec", b"discard", b"watch", b"auth", b"hello", b"client",
                 b"config", b"subscribe", b"psubscribe", b"monitor", b"eval", b"evalsha",
                 b"fcall", b"blpop", b"bzpopmin", b"wait", b"replicaof", b"reset", b"quit",
                 b"debug", b"acl", b"script", b"shutdown", b"failover", b"publish"):
        assert not table[name].plain, name
