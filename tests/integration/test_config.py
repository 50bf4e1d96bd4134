"""Configuration of a started hakv-server: `hakv-server [redis.conf] [--directive
value ...]`, bad configs failing at start exactly like redis-server 7.0 (same
message, nonzero exit), CONFIG GET / SET / RESETSTAT / REWRITE compared with a
real redis-server.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys

import hiredis
import pytest

from procs import free_port, hakv_server, redis_server, wait_ready

HAKV = [sys.executable, "-m", "hakv.common.main"]
REDIS = [shutil.which("redis-server") or "/usr/bin/redis-server"]


def run_binary(cmd: list, args: list, cwd) -> tuple:
    """Start a server that should refuse its config: (failed, stderr, log line)."""
    try:
        proc = subprocess.run(cmd + args, capture_output=True, timeout=20, cwd=cwd)
    except subprocess.TimeoutExpired:
        pytest.fail("%s %s started instead of failing" % (cmd[-1], args))
    logged = [re.sub(r"^\d+:C .*? # ", "", line) for line in proc.stdout.decode().splitlines()
              if "Fatal error" in line]
    return proc.returncode != 0, proc.stderr.decode(), logged


BAD_FILES = [
    "foo bar",  # unknown directive
    "port abc",  # bad integer
    "port 70000",  # out of range
    "timeout -1",
    "maxmemory 12zb",  # bad memory value
    "protected-mode maybe",  # bad yes/no
    "appendonly 1",
    "appendfsync sometimes",  # bad enum
    "maxmemory-policy lru",
    "loglevel shouty",
    "port",  # wrong number of arguments
    "port 1 2",
    "requirepass",
    "save 10",
    "save x 1",
    'requirepass "unbalanced',
    "notify-keyspace-events Q",
    "client-output-buffer-limit foo 1 2 3",
    "client-output-buffer-limit normal 1 2",
    "replicaof 127.0.0.1 notaport",
    "rename-command GET",
    "sentinel monitor m 127.0.0.1 6379 2",
    "dbfilename dir/dump.rdb",
    "dir /nonexistent-hakv-dir",
    "logfile /nonexistent-hakv-dir/log",
    "databases 0",
    "include /nonexistent-hakv.conf",
    "# a comment\n\n  timeout   x  ",
    "hz 10\nhz 20\nhz nope",
]


@pytest.mark.parametrize("text", BAD_FILES)
def test_bad_config_file_fails_like_redis(tmp_path, text):
    conf = tmp_path / "bad.conf"
    conf.write_text(text + "\n")
    args = [str(conf), "--port", str(free_port())]
    ours = run_binary(HAKV, args, tmp_path)
    theirs = run_binary(REDIS, args, tmp_path)
    assert ours == theirs
    assert ours[0]  # a nonzero exit


BAD_ARGS = [
    ["--port", "abc"],
    ["--foo", "bar"],
    ["--port"],
    ["--port", "1", "2"],
    ["--save", "10", "x"],
    ["--save", "", "--timeout", "x"],
    ["--requirepass", "a b", "--hz", "x"],
    ["--appendonly", "maybe"],
    ["--save", "--loglevel", "x"],
    ["--requirepass", "--loglevel", "--hz", "q"],
    ["/nonexistent-hakv.conf"],
]


@pytest.mark.parametrize("args", BAD_ARGS, ids=lambda a: " ".join(a))
def test_bad_command_line_fails_like_redis(tmp_path, args):
    ours = run_binary(HAKV, args, tmp_path)
    theirs = run_binary(REDIS, args, tmp_path)
    assert ours == theirs
    assert ours[0]


def test_file_then_command_line_line_numbers(tmp_path):
    conf = tmp_path / "r.conf"
    conf.write_text("port 7099\n\n# x\n")
    args = [str(conf), "--port", "7098", "--hz", "x"]
    ours = run_binary(HAKV, args, tmp_path)
    assert ours == run_binary(REDIS, args, tmp_path)
    assert "at line 6\n>>> 'hz \"x\"'" in ours[1]


def test_the_console_script_runs_a_config_file(tmp_path):
    port = free_port()
    conf = tmp_path / "node.conf"
    data = tmp_path / "data"
    data.mkdir()
    conf.write_text("# hakv node\nport %d\nbind 127.0.0.1\nsave \"\"\ndir %s\n"
                    "maxmemory 64mb\nslave-read-only no\n" % (port, data))
    exe = shutil.which("hakv-server")
    assert exe, "the hakv-server console script is not installed"
    proc = subprocess.Popen([exe, str(conf), "--hz", "25", "--maxclients", "77"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(port, proc)
        c = Conn(port)
        assert c("CONFIG", "GET", "hz") == [b"hz", b"25"]
        assert c("CONFIG", "GET", "maxclients") == [b"maxclients", b"77"]
        assert c("CONFIG", "GET", "maxmemory") == [b"maxmemory", b"67108864"]
        assert c("CONFIG", "GET", "replica-read-only") == [b"replica-read-only", b"no"]
        assert c("CONFIG", "GET", "dir") == [b"dir", str(data).encode()]
        info = c("INFO", "server").decode()
        assert "config_file:%s\r\n" % conf in info
    finally:
        proc.terminate()
        proc.wait(10)


# ------------------------------------------------------------------ CONFIG commands


class Conn:
    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.reader = hiredis.Reader(replyError=lambda m: ("ERR", m))

    def __call__(self, *argv):
        self.sock.sendall(b"*%d\r\n" % len(argv) + b"".join(
            b"$%d\r\n%s\r\n" % (len(a), a) for a in (
                x if isinstance(x, bytes) else str(x).encode() for x in argv)))
        while True:
            reply = self.reader.gets()
            if reply is not False:
                return reply
            data = self.sock.recv(1 << 20)
            if not data:
                raise ConnectionError("closed")
            self.reader.feed(data)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    d = tmp_path_factory.mktemp("config-pair")
    ours = hakv_server(str(d / "hakv")).start()
    theirs = redis_server(str(d / "redis")).start()
    yield ours, theirs
    ours.stop()
    theirs.stop()


def as_map(reply):
    if isinstance(reply, list):
        return dict(zip(reply[::2], reply[1::2]))
    return reply


# CONFIG GET/SET sequences; GET replies compared as maps (Redis lists them in
# its hash table's order, which depends on a random seed).
CONFIG_CASES = [
    ["CONFIG"], ["CONFIG", "FOO"], ["CONFIG", "GET"], ["CONFIG", "GET", "nosuch"],
    ["CONFIG", "GET", "maxmemory"], ["CONFIG", "GET", "MAXMEMORY"],
    ["CONFIG", "GET", "hz", "timeout", "hz"], ["CONFIG", "GET", "*max-*-entries*"],
    ["CONFIG", "GET", "slave-*"], ["CONFIG", "GET", "save"], ["CONFIG", "GET", "appendonly"],
    ["CONFIG", "GET", "client-output-buffer-limit"], ["CONFIG", "GET", "*oom*"],
    ["CONFIG", "GET", "[lz]*-max-*"], ["CONFIG", "GET", "notify-keyspace-events"],
    ["CONFIG", "SET"], ["CONFIG", "SET", "foo"], ["CONFIG", "SET", "foo", "bar"],
    ["CONFIG", "SET", "maxmemory"], ["CONFIG", "SET", "maxmemory", "abc"],
    ["CONFIG", "SET", "maxmemory", "10mb"], ["CONFIG", "GET", "maxmemory"],
    ["CONFIG", "SET", "maxmemory", "0"],
    ["CONFIG", "SET", "timeout", "-1"], ["CONFIG", "SET", "timeout", "x"],
    ["CONFIG", "SET", "timeout", "05"], ["CONFIG", "SET", "timeout", "10", "hz"],
    ["CONFIG", "SET", "timeout", "10", "timeout", "20"],
    ["CONFIG", "SET", "timeout", "10", "TIMEOUT", "x"],
    ["CONFIG", "SET", "timeout", "x", "nosuch", "1"],
    ["CONFIG", "SET", "databases", "5", "timeout", "x"],
    ["CONFIG", "SET", "timeout", "x", "databases", "5"],
    ["CONFIG", "SET", "slave-priority", "x"], ["CONFIG", "SET", "SLAVE-PRIORITY", "-1"],
    ["CONFIG", "SET", "hz", "0"], ["CONFIG", "GET", "hz"],
    ["CONFIG", "SET", "hz", "1000"], ["CONFIG", "GET", "hz"], ["CONFIG", "SET", "hz", "10"],
    ["CONFIG", "SET", "appendfsync", "sometimes"], ["CONFIG", "SET", "appendfsync", "ALWAYS"],
    ["CONFIG", "GET", "appendfsync"], ["CONFIG", "SET", "appendfsync", "everysec"],
    ["CONFIG", "SET", "maxmemory-policy", "lru"],
    ["CONFIG", "SET", "maxmemory-policy", "ALLKEYS-LRU"], ["CONFIG", "GET", "maxmemory-pol*"],
    ["CONFIG", "SET", "maxmemory-policy", "noeviction"],
    ["CONFIG", "SET", "protected-mode", "maybe"], ["CONFIG", "SET", "protected-mode", "1"],
    ["CONFIG", "SET", "activerehashing", "YES"], ["CONFIG", "SET", "databases", "20"],
    ["CONFIG", "SET", "daemonize", "yes"], ["CONFIG", "SET", "replicaof", "no one"],
    ["CONFIG", "SET", "save", "10 x"], ["CONFIG", "SET", "save", "10"],
    ["CONFIG", "SET", "save", "0 1"], ["CONFIG", "SET", "save", "  "],
    ["CONFIG", "SET", "save", "60 10 30 5"], ["CONFIG", "GET", "save"],
    ["CONFIG", "SET", "save", "+5 1"], ["CONFIG", "GET", "save"],
    ["CONFIG", "SET", "save", ""], ["CONFIG", "GET", "save"],
    ["CONFIG", "SET", "notify-keyspace-events", "Q"],
    ["CONFIG", "SET", "notify-keyspace-events", "KEA"],
    ["CONFIG", "GET", "notify-keyspace-events"],
    ["CONFIG", "SET", "notify-keyspace-events", "Kg$lshzxetdmn"],
    ["CONFIG", "GET", "notify-keyspace-events"],
    ["CONFIG", "SET", "notify-keyspace-events", ""],
    ["CONFIG", "SET", "slowlog-log-slower-than", "-5"],
    ["CONFIG", "SET", "maxclients", "0"], ["CONFIG", "SET", "port", "70000"],
    ["CONFIG", "SET", "proto-max-bulk-len", "10"], ["CONFIG", "SET", "loglevel", "foo"],
    ["CONFIG", "SET", "requirepass", "x", "y"],
    ["CONFIG", "RESETSTAT", "x"], ["CONFIG", "REWRITE"], ["CONFIG", "REWRITE", "x"],
    ["CONFIG", "SET", "maxmemory-samples", "0"], ["CONFIG", "SET", "lfu-log-factor", "-1"],
    ["CONFIG", "SET", "list-max-ziplist-size", "-6"],
    ["CONFIG", "GET", "list-max-*-size"], ["CONFIG", "SET", "list-max-listpack-size", "-2"],
    ["CONFIG", "SET", "client-output-buffer-limit", "normal 1mb 2mb 3 slave 1 1 1"],
    ["CONFIG", "GET", "client-output-buffer-limit"],
    ["CONFIG", "SET", "client-output-buffer-limit", "foo 0 0 0"],
    ["CONFIG", "SET", "client-output-buffer-limit", "normal 0 0"],
    ["CONFIG", "SET", "client-output-buffer-limit", "normal 0 x 0"],
    ["CONFIG", "SET", "client-output-buffer-limit",
     "normal 0 0 0 slave 268435456 67108864 60"],
    ["CONFIG", "SET", "oom-score-adj-values", "1 2"],
    ["CONFIG", "SET", "oom-score-adj-values", "a 2 3"],
    ["CONFIG", "SET", "maxmemory-clients", "101%"],
    ["CONFIG", "SET", "maxmemory-clients", "10%"], ["CONFIG", "GET", "maxmemory-clients"],
    ["CONFIG", "SET", "maxmemory-clients", "0"],
    ["CONFIG", "SET", "latency-tracking-info-percentiles", "1.123456789 0.1 1e2 50.0"],
    ["CONFIG", "GET", "latency-tracking-info-percentiles"],
    ["CONFIG", "SET", "latency-tracking-info-percentiles", "50 101"],
    ["CONFIG", "SET", "latency-tracking-info-percentiles", "50 99 99.9"],
    ["CONFIG", "SET", "repl-backlog-size", "1"], ["CONFIG", "GET", "repl-backlog-size"],
    ["CONFIG", "SET", "repl-backlog-size", "1mb"],
    ["CONFIG", "SET", "unixsocketperm", "777"], ["CONFIG", "SET", "io-threads", "2"],
    ["CONFIG", "SET", "cluster-announce-hostname", "a b"],
    ["CONFIG", "SET", "maxmemory", "1gb", "maxmemory-policy", "nope"],
    ["CONFIG", "GET", "maxmemory"],
    ["CONFIG", "HELP", "x"],
]


def test_config_get_set_match_redis(pair):
    ours, theirs = Conn(pair[0].port), Conn(pair[1].port)
    for argv in CONFIG_CASES:
        got, want = ours(*argv), theirs(*argv)
        if argv[:2] == ["CONFIG", "GET"]:
            got, want = as_map(got), as_map(want)
        assert got == want, argv


def test_config_get_star_lists_every_redis_directive(pair):
    ours = as_map(Conn(pair[0].port)("CONFIG", "GET", "*"))
    theirs = as_map(Conn(pair[1].port)("CONFIG", "GET", "*"))
    assert sorted(ours) == sorted(theirs)
    differ = {k for k in ours if ours[k] != theirs[k]}
    # Only what differs between any two servers: ports, paths, the process.
    assert differ <= {b"port", b"dir", b"pidfile", b"logfile", b"daemonize"}, differ


def test_config_set_takes_effect(hakv):
    c = Conn(hakv.port)
    assert c("CONFIG", "SET", "slowlog-log-slower-than", "0") == b"OK"
    c("PING")
    assert c("SLOWLOG", "LEN") > 0
    c("CONFIG", "SET", "notify-keyspace-events", "E$")
    sub = Conn(hakv.port)
    sub("SUBSCRIBE", "__keyevent@0__:set")
    c("SET", "watched", "1")
    assert sub.reader.gets() is False
    sub.sock.settimeout(3)
    sub.reader.feed(sub.sock.recv(1000))
    assert sub.reader.gets() == [b"message", b"__keyevent@0__:set", b"watched"]
    assert c("CONFIG", "SET", "proto-max-bulk-len", "1mb") == b"OK"
    s = socket.create_connection(("127.0.0.1", hakv.port), timeout=5)
    s.sendall(b"*2\r\n$4\r\nECHO\r\n$1048577\r\n")
    assert s.recv(100) == b"-ERR Protocol error: invalid bulk length\r\n"


def test_config_resetstat(hakv):
    c = Conn(hakv.port)
    for _ in range(10):
        c("SET", "k", "v")
        c("GET", "k")
    c("NOSUCH")
    before = c("INFO", "all").decode()
    assert "cmdstat_set:calls=10," in before and "errorstat_ERR:count=" in before
    assert c("CONFIG", "RESETSTAT") == b"OK"
    after = c("INFO", "all").decode()
    assert "cmdstat_set" not in after and "errorstat_ERR" not in after
    stats = dict(line.split(":", 1) for line in after.splitlines() if ":" in line)
    assert stats["keyspace_hits"] == "0" and stats["total_error_replies"] == "0"
    assert int(stats["total_commands_processed"]) <= 2


def test_config_rewrite_round_trip(tmp_path):
    port = free_port()
    data = tmp_path / "data"
    data.mkdir()
    conf = tmp_path / "node.conf"
    conf.write_text("# hand-written\nport %d\nbind 127.0.0.1\ntimeout 5\n\n# keep me\n"
                    "save 100 1\nsave 200 2\nmaxmemory 1gb\ndir %s\n" % (port, data))
    proc = hakv_server(str(tmp_path / "run"), port, config=str(conf))
    # hakv_server adds --port/--bind/--save on the command line; REWRITE writes
    # the live values back into the file, command-line ones included.
    proc.start()
    try:
        c = Conn(port)
        assert c("CONFIG", "SET", "timeout", "10") == b"OK"
        assert c("CONFIG", "SET", "maxmemory-policy", "allkeys-lru") == b"OK"
        assert c("CONFIG", "SET", "requirepass", 'pa ss"word') == b"OK"
        assert c("AUTH", 'pa ss"word') == b"OK"
        assert c("CONFIG", "REWRITE") == b"OK"
        text = conf.read_text()
        assert text.startswith("# hand-written\n")
        assert "# keep me\n" in text and "maxmemory 1gb\n" in text
        assert "timeout 10\n" in text and "timeout 5" not in text
        assert "# Generated by CONFIG REWRITE\n" in text
        assert 'requirepass "pa ss\\"word"\n' in text
        assert "maxmemory-policy allkeys-lru\n" in text
        assert 'save ""\n' in text  # the command line's save "" is what runs now
    finally:
        proc.stop()
    # The rewritten file alone brings the same settings back.
    again = subprocess.Popen(HAKV + [str(conf)], cwd=tmp_path, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        wait_ready(port, again, password='pa ss"word')
        c = Conn(port)
        c("AUTH", 'pa ss"word')
        assert as_map(c("CONFIG", "GET", "timeout", "maxmemory*", "save")) == {
            b"timeout": b"10", b"maxmemory": b"1073741824", b"maxmemory-policy": b"allkeys-lru",
            b"maxmemory-samples": b"5", b"maxmemory-eviction-tenacity": b"10",
            b"maxmemory-clients": b"0", b"save": b""}
    finally:
        again.terminate()
        again.wait(10)


def test_config_rewrite_without_a_file_matches_redis(pair):
    assert Conn(pair[0].port)("CONFIG", "REWRITE") == Conn(pair[1].port)("CONFIG", "REWRITE")


def test_config_set_dir_changes_directory(hakv, tmp_path):
    c = Conn(hakv.port)
    target = tmp_path / "elsewhere"
    target.mkdir()
    assert c("CONFIG", "SET", "dir", str(target)) == b"OK"
    assert c("CONFIG", "GET", "dir") == [b"dir", str(target).encode()]
    assert c("CONFIG", "SET", "dir", "/nonexistent-hakv-dir") == (
        "ERR", "ERR CONFIG SET failed (possibly related to argument 'dir') - "
               "No such file or directory")
    assert os.path.isdir(target)
