"""Real client libraries, unchanged, against hakv and against real Redis.

Each program in this folder (one per client library) runs every command family,
pub/sub, MULTI/EXEC, a pipeline of thousands, Lua, RESP3 where the client speaks
it and some raw input (inline commands, HELLO, CLIENT SETNAME/SETINFO, READONLY),
checks every reply itself and prints a transcript of the replies it got. Here
each program runs against a fresh hakv-server and a fresh redis-server: it must
pass against both, and the two transcripts must be identical once the values
that legitimately differ (connection ids, the server version) are normalised.

A language or library missing from this machine makes its test skip with the
reason; set HAKV_REQUIRE_CLIENTS=1 to turn those skips into failures (CI on
Debian 12, where `./run test` installs them all).
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest

from procs import hakv_server, redis_server, wait_ready

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_DIR = os.path.join(HERE, "node")
RUN_TIMEOUT = 90

# Lines whose values legitimately differ between two servers, and how they are
# normalised before the transcripts are compared. Nothing else is.
VOLATILE = [
    # HELLO's connection id (counts every connection the server accepted) ...
    (re.compile(r"^(hello[^=]*=>.*?\bid\b[^0-9]{1,12})\d+"), r"\1<id>"),
    # ... and the version string (hakv answers as 7.0.15 too, but that is a choice).
    (re.compile(r"^(hello[^=]*=>.*?\bversion\b[^0-9]{1,12})\d+\.\d+\.\d+"), r"\1<version>"),
]


def normalise(transcript: str) -> list[str]:
    lines = []
    for line in transcript.splitlines():
        for pattern, repl in VOLATILE:
            line = pattern.sub(repl, line)
        lines.append(line)
    return lines


@dataclass
class Program:
    name: str
    argv: list[str]                     # HOST PORT are appended
    needs: list[str] = field(default_factory=list)   # executables on PATH
    probe: list[str] | None = None      # a command that fails if the library is missing
    build: list[str] | None = None      # compile step (output in the build dir)
    env: dict = field(default_factory=dict)


def programs(build_dir: str) -> list[Program]:
    go_env = {
        # Debian's redigo is GOPATH source under /usr/share/gocode: build offline, no modules.
        "GO111MODULE": "off", "GOPATH": "/usr/share/gocode", "GOFLAGS": "",
        "GOPROXY": "off", "GOCACHE": os.path.join(build_dir, "gocache"),
    }
    go_bin = os.path.join(build_dir, "redigo_client")
    c_bin = os.path.join(build_dir, "hiredis_client")
    node_mods = os.path.join(NODE_DIR, "node_modules")
    return [
        Program("redis-py-sync", [sys.executable, os.path.join(HERE, "redis_py_sync.py")]),
        Program("redis-py-asyncio", [sys.executable, os.path.join(HERE, "redis_py_async.py")]),
        Program("ioredis", ["node", os.path.join(NODE_DIR, "ioredis_client.js")], ["node"],
                probe=["node", "-e", "require(%r)" % os.path.join(node_mods, "ioredis")]),
        Program("node-redis", ["node", os.path.join(NODE_DIR, "node_redis_client.js")], ["node"],
                probe=["node", "-e", "require(%r)" % os.path.join(node_mods, "redis")]),
        Program("ruby-redis", ["ruby", os.path.join(HERE, "ruby_redis.rb")], ["ruby"],
                probe=["ruby", "-e", "require 'redis'"]),
        Program("phpredis", ["php", os.path.join(HERE, "phpredis.php")], ["php"],
                probe=["php", "-r", "exit(extension_loaded('redis') ? 0 : 1);"]),
        Program("redigo", [go_bin], ["go"],
                probe=["test", "-d", "/usr/share/gocode/src/github.com/gomodule/redigo/redis"],
                build=["go", "build", "-o", go_bin, os.path.join(HERE, "redigo_client.go")],
                env=go_env),
        Program("hiredis", [c_bin], ["gcc"],
                probe=["test", "-f", "/usr/include/hiredis/hiredis.h"],
                build=["gcc", "-O1", "-Wall", "-o", c_bin, os.path.join(HERE, "hiredis_client.c"),
                       "-lhiredis"]),
        Program("perl-redis", ["perl", os.path.join(HERE, "perl_redis.pl")], ["perl"],
                probe=["perl", "-MRedis", "-e", "1"]),
    ]


PROGRAM_NAMES = [p.name for p in programs("/nonexistent")]


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("client-builds"))


def _unavailable(program: Program, build_dir: str) -> str | None:
    for exe in program.needs:
        if shutil.which(exe) is None:
            return "%s is not installed (%s)" % (exe, program.name)
    env = {**os.environ, **program.env}
    if program.probe is not None:
        done = subprocess.run(program.probe, capture_output=True, env=env, timeout=60)
        if done.returncode != 0:
            return "the %s library is not installed: %s" % (
                program.name, (done.stderr or b"").decode(errors="replace").strip()[-300:])
    if program.build is not None and not os.path.exists(program.argv[0]):
        done = subprocess.run(program.build, capture_output=True, env=env, timeout=240,
                              cwd=build_dir)
        if done.returncode != 0:
            # The library is there but our program does not compile: a real failure.
            pytest.fail("building %s failed:\n%s" % (
                program.name, done.stderr.decode(errors="replace")))
    return None


def _run(program: Program, port: int) -> subprocess.CompletedProcess:
    env = {**os.environ, **program.env}
    argv = program.argv + ["127.0.0.1", str(port)]
    try:
        return subprocess.run(argv, capture_output=True, env=env, timeout=RUN_TIMEOUT, cwd=HERE)
    except subprocess.TimeoutExpired as exc:  # killed: report it like a failed run
        note = b"\n%s: no exit after %d s (killed)\n" % (program.name.encode(), RUN_TIMEOUT)
        return subprocess.CompletedProcess(argv, -9, exc.stdout or b"", (exc.stderr or b"") + note)


@pytest.fixture
def servers(tmp_path):
    """A fresh hakv-server and a fresh redis-server, started side by side."""
    hakv = hakv_server(str(tmp_path / "hakv"))
    real = redis_server(str(tmp_path / "redis"))
    try:
        for proc in (hakv, real):
            proc.start(wait=False)
        for proc in (hakv, real):
            wait_ready(proc.port, proc.proc)
        yield hakv, real
    finally:
        for proc in (hakv, real):
            proc.stop()


@pytest.fixture
def program(name, build_dir):
    """The program for this test, built; a skip (with the reason) when its language or
    library is missing. Requested before `servers`, so a skip starts no server."""
    found = next(p for p in programs(build_dir) if p.name == name)
    reason = _unavailable(found, build_dir)
    if reason is not None:
        if os.environ.get("HAKV_REQUIRE_CLIENTS"):
            pytest.fail(reason)
        pytest.skip(reason)
    return found


@pytest.mark.interop
@pytest.mark.parametrize("name", PROGRAM_NAMES)
def test_client_program(name, program, servers):
    hakv, real = servers
    with ThreadPoolExecutor(2) as pool:
        on_hakv, on_redis = pool.map(lambda port: _run(program, port), (hakv.port, real.port))
    for server, done in (("real Redis", on_redis), ("hakv", on_hakv)):
        assert done.returncode == 0, "%s against %s exited %d:\n%s\n--- stdout tail:\n%s" % (
            name, server, done.returncode, done.stderr.decode(errors="replace")[-4000:],
            done.stdout.decode(errors="replace")[-2000:])
    want = normalise(on_redis.stdout.decode(errors="replace"))
    got = normalise(on_hakv.stdout.decode(errors="replace"))
    assert len(want) > 50, "the %s transcript is suspiciously short:\n%s" % (name, want)
    if got != want:
        diff = "\n".join(difflib.unified_diff(want, got, "real Redis", "hakv", lineterm=""))
        pytest.fail("%s saw different replies from hakv than from real Redis:\n%s"
                    % (name, diff))
