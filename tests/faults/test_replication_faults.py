"""Replication under bad input and broken links: a fake primary that sends
garbage instead of an RDB, a truncated RDB, an -ERR to PSYNC, or nothing at
all; a stopped replica timed out by its primary. The replica must log why,
retry, and never serve half-loaded data."""

from __future__ import annotations

import io
import os
import socket
import threading
import time

import hiredis
import pytest

from hakv.common import rdb
from replication_support import (
    link_up, repl_info, seed, stats, wait_caught_up, wait_for, wait_link_up,
)

FAKE_ID = "fa4e" * 10


def valid_rdb(n: int = 20000) -> bytes:
    out = io.BytesIO()
    w = rdb.RdbWriter(out)
    w.write_header({"redis-ver": "7.0.15"})
    w.write_db_dicts(0, {b"fake:%d" % i: b"value-%d" % i for i in range(n)}, {})
    w.finish()
    return out.getvalue()


class FakePrimary:
    """Speaks the primary's side of the handshake, then answers PSYNC with
    `answer(sock)`; counts the replica's connection attempts."""

    def __init__(self, answer):
        self.answer = answer
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.psyncs: list = []
        self.closing = False
        self.conns: list = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.closing:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        reader = hiredis.Reader()
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                if not data.strip(b"\n"):
                    continue  # the replica's keepalive newlines while it loads
                reader.feed(data)
                while True:
                    msg = reader.gets()
                    if msg is False:
                        break
                    if not isinstance(msg, list):
                        continue
                    name = msg[0].lower()
                    if name == b"ping":
                        conn.sendall(b"+PONG\r\n")
                    elif name in (b"replconf", b"auth"):
                        if len(msg) > 1 and msg[1].lower() == b"ack":
                            continue
                        conn.sendall(b"+OK\r\n")
                    elif name == b"psync":
                        self.psyncs.append(msg[1:])
                        self.answer(conn)
        except OSError:
            return
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def close(self):
        self.closing = True
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


@pytest.fixture
def fake_primary():
    fakes = []

    def make(answer):
        f = FakePrimary(answer)
        fakes.append(f)
        return f

    yield make
    for f in fakes:
        f.close()


def _full(conn, payload_header: bytes, body: bytes, close: bool):
    conn.sendall(b"+FULLRESYNC %s 0\r\n" % FAKE_ID.encode() + b"\n\n" + payload_header + body)
    if close:
        conn.shutdown(socket.SHUT_RDWR)
        conn.close()


def garbage_sized(conn):
    body = os.urandom(200_000)
    _full(conn, b"$%d\r\n" % len(body), body, close=False)


def garbage_eof(conn):
    body = b"REDIS0010" + os.urandom(100_000)
    mark = b"x" * 40
    _full(conn, b"$EOF:" + mark + b"\r\n", body + mark, close=False)


def truncated_sized(conn):
    body = valid_rdb()
    _full(conn, b"$%d\r\n" % len(body), body[: len(body) // 2], close=True)


def truncated_eof(conn):
    body = valid_rdb()
    _full(conn, b"$EOF:" + b"y" * 40 + b"\r\n", body[: len(body) // 2], close=True)


def psync_error(conn):
    conn.sendall(b"-ERR unknown command 'PSYNC'\r\n")


def silent(conn):
    conn.sendall(b"+FULLRESYNC %s 0\r\n" % FAKE_ID.encode())


def _never_fake_keys(client, fake, seconds: float = 10.0) -> set:
    """Poll the replica until it tried twice (at least 1 s): it must never
    show keys of the bad RDB."""
    seen_sizes = set()
    start = time.time()
    while time.time() < start + seconds:
        if fake.connections >= 2 and time.time() > start + 1.0:
            break
        try:
            keys = client.keys("fake:*")
            assert not keys, "the replica served half-loaded data: %d keys" % len(keys)
            seen_sizes.add(client.dbsize())
        except Exception as exc:  # LOADING while it tries: fine
            if "LOADING" not in str(exc) and "loading" not in str(exc):
                raise
        time.sleep(0.02)
    return seen_sizes


@pytest.mark.parametrize("load_mode", ["disabled", "on-empty-db", "swapdb"])
@pytest.mark.parametrize("answer, reason", [
    (garbage_sized, "Failed trying to load the MASTER synchronization DB"),
    (garbage_eof, "Failed trying to load the MASTER synchronization DB"),
    (truncated_sized, None),
    (truncated_eof, None),
])
def test_bad_snapshot_is_never_served(make_hakv, fake_primary, answer, reason, load_mode):
    fake = fake_primary(answer)
    replica = make_hakv("--repl-diskless-load", load_mode)
    r = replica.client()
    if load_mode != "on-empty-db":
        r.set("mine", "before")  # the replica's own data
    r.replicaof("127.0.0.1", fake.port)
    _never_fake_keys(r, fake)
    wait_for(lambda: fake.connections >= 2, what="the replica to retry")
    assert repl_info(r)["master_link_status"] == "down"
    log = replica.output()
    if reason:
        assert reason in log
    assert "Full resync from master: %s:0" % FAKE_ID in log
    # What the replica serves is its old data (kept until a snapshot loads
    # completely) or nothing (flushed before a load that failed): never a part.
    remaining = set(r.keys("*"))
    assert remaining in (set(), {b"mine"})
    if load_mode == "swapdb":
        assert remaining == {b"mine"}  # swapdb keeps serving the old data


def test_psync_error_is_logged_and_retried(make_hakv, fake_primary):
    fake = fake_primary(psync_error)
    replica = make_hakv()
    r = replica.client()
    r.replicaof("127.0.0.1", fake.port)
    wait_for(lambda: fake.connections >= 3, what="retries")
    assert "Unexpected reply to PSYNC from master: ERR unknown command 'PSYNC'" in replica.output()
    assert not link_up(r)


def test_replica_times_out_a_silent_primary(make_hakv, fake_primary):
    fake = fake_primary(silent)
    replica = make_hakv("--repl-timeout", "2")
    r = replica.client()
    r.replicaof("127.0.0.1", fake.port)
    wait_for(lambda: "Timeout receiving bulk data from MASTER" in replica.output(), timeout=10)
    wait_for(lambda: fake.connections >= 2, what="a reconnect")


def test_primary_drops_a_stopped_replica_which_then_resumes(make_hakv):
    # The short repl-timeout applies only while the replica is stopped: on a
    # loaded machine a running replica can miss a 2 s deadline too (its ACKs
    # starved), and such a spurious drop would add a resync of its own.
    primary = make_hakv("--repl-diskless-sync-delay", "0")
    replica = make_hakv("--replicaof", "127.0.0.1", str(primary.port))
    p, r = primary.client(), replica.client()
    seed(p, 200)
    wait_caught_up(p, r)
    replica.pause()
    try:
        p.config_set("repl-timeout", 2)
        p.set("while-stopped", "1")
        wait_for(lambda: "Disconnecting timedout replica" in primary.output(), timeout=20)
        assert repl_info(p)["connected_slaves"] == 0
        p.config_set("repl-timeout", 60)
    finally:
        replica.resume()
    # Resumed, the replica first applies what was already in its socket
    # buffer (it can look caught up then), and only then reads the EOF and
    # asks for a partial resync: wait for that.
    wait_for(lambda: stats(p)["sync_partial_ok"] >= 1, timeout=20, what="the partial resync")
    wait_link_up(r)
    wait_caught_up(p, r)
    assert r.get("while-stopped") == b"1"
    s = stats(p)
    assert s["sync_full"] == 1 and s["sync_partial_ok"] == 1


def test_replica_survives_its_primary_being_killed_mid_sync(make_hakv):
    primary = make_hakv("--repl-diskless-sync-delay", "0")
    p = primary.client()
    pipe = p.pipeline(transaction=False)
    for i in range(100_000):
        pipe.set("k:%d" % i, "v" * 50)
        if i % 10000 == 9999:
            pipe.execute()
    pipe.execute()
    replica = make_hakv("--repl-diskless-load", "on-empty-db")
    r = replica.client()
    r.replicaof("127.0.0.1", primary.port)
    wait_for(lambda: repl_info(r)["master_sync_in_progress"] == 1 or link_up(r), interval=0.005)
    primary.kill()
    wait_for(lambda: not link_up(r) and repl_info(r)["master_sync_in_progress"] == 0)
    n = r.dbsize()
    assert n in (0, 100_000)  # all or nothing
    primary.start()
    p = primary.client()
    p.set("fresh", "start")
    wait_link_up(r, timeout=30)
    wait_caught_up(p, r)
    assert r.dbsize() == p.dbsize()


def test_replica_over_its_output_buffer_limit_is_dropped(make_hakv):
    primary = make_hakv("--repl-diskless-sync-delay", "0",
                        "--client-output-buffer-limit", "replica", "2mb", "0", "0")
    replica = make_hakv("--replicaof", "127.0.0.1", str(primary.port))
    p, r = primary.client(), replica.client()
    wait_link_up(r)
    replica.pause()
    try:
        value = "x" * 100_000
        for i in range(100):  # 10 MB the stopped replica cannot take
            p.set("big:%d" % (i % 10), value)
        wait_for(lambda: "overcoming of output buffer limits" in primary.output(), timeout=10)
        assert repl_info(p)["connected_slaves"] == 0
    finally:
        replica.resume()
    wait_caught_up(p, r, timeout=30)
    assert r.get("big:9") == p.get("big:9")


class FakeReplica:
    """Syncs from a real primary as a replica would (handshake, diskless
    snapshot, the stream, an ACK every 50 ms), and listens on its announced
    port where it answers PSYNC with `psync_answer` (recording the request)."""

    def __init__(self, primary_port: int, psync_answer: bytes):
        self.answer = psync_answer
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.port = self.listener.getsockname()[1]
        self.psyncs: list = []
        self.offset = -1
        self.closing = False
        self.link = socket.create_connection(("127.0.0.1", primary_port), timeout=10)
        threading.Thread(target=self._accept, daemon=True).start()
        threading.Thread(target=self._follow, daemon=True).start()

    def _accept(self):
        while not self.closing:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        reader = hiredis.Reader()
        with conn:
            while not self.closing:
                data = conn.recv(65536)
                if not data:
                    return
                reader.feed(data)
                while (msg := reader.gets()) is not False:
                    name = msg[0].lower()
                    if name == b"ping":
                        conn.sendall(b"+PONG\r\n")
                    elif name == b"psync":
                        self.psyncs.append(msg)
                        conn.sendall(self.answer)
                    else:
                        conn.sendall(b"+OK\r\n")

    def _follow(self):
        s = self.link
        s.sendall(b"*1\r\n$4\r\nPING\r\n")
        for cmd in ([b"REPLCONF", b"listening-port", str(self.port).encode()],
                    [b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"], [b"PSYNC", b"?", b"-1"]):
            s.sendall(b"*%d\r\n" % len(cmd) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in cmd))
        buf = b""
        while b"$EOF:" not in buf or len(buf.split(b"$EOF:", 1)[1]) < 42:
            buf += s.recv(65536)
        base = int(buf.split(b"+FULLRESYNC ", 1)[1].split(b"\r\n", 1)[0].split()[1])
        mark = buf.split(b"$EOF:", 1)[1][:40]
        body = buf.split(b"$EOF:", 1)[1][42:]
        while mark not in body:
            body += s.recv(65536)
        stream = len(body.split(mark, 1)[1])
        self.offset = base + stream
        s.settimeout(0.05)
        while not self.closing:
            try:
                data = s.recv(65536)
                if not data:
                    return
                self.offset += len(data)
            except socket.timeout:
                pass
            except OSError:
                return
            ack = str(self.offset).encode()
            try:
                s.sendall(b"*3\r\n$8\r\nREPLCONF\r\n$3\r\nACK\r\n$%d\r\n%s\r\n" % (len(ack), ack))
            except OSError:
                return

    def close(self):
        self.closing = True
        for sock in (self.listener, self.link):
            try:
                sock.close()
            except OSError:
                pass


def test_failover_sends_psync_failover_and_aborts_when_refused(make_hakv):
    primary = make_hakv("--repl-diskless-sync-delay", "0")
    p = primary.client()
    fake = FakeReplica(primary.port, b"-ERR not today\r\n")
    try:
        p.set("k", "v")
        wait_for(lambda: repl_info(p).get("slave0", {}).get("offset")
                 == repl_info(p)["master_repl_offset"], what="the fake replica's ACK")
        info = repl_info(p)
        assert p.execute_command("FAILOVER", "TO", "127.0.0.1", fake.port) == b"OK"
        wait_for(lambda: fake.psyncs, what="PSYNC ... FAILOVER")
        # Our history and the next offset we need, then FAILOVER.
        assert fake.psyncs[0] == [b"PSYNC", info["master_replid"].encode(),
                                  str(info["master_repl_offset"] + 1).encode(), b"FAILOVER"]
        wait_for(lambda: repl_info(p)["role"] == "master"
                 and repl_info(p)["master_failover_state"] == "no-failover",
                 what="the abort")
        assert ("FAILOVER to 127.0.0.1:%d aborted: Failover target rejected psync request"
                % fake.port) in primary.output()
        assert "Unexpected reply to PSYNC from master: ERR not today" in primary.output()
        assert p.set("writable-again", "1")
        # Turning back into a primary started a new history (as Redis).
        assert repl_info(p)["master_replid2"] == info["master_replid"]
    finally:
        fake.close()
