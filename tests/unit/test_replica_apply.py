"""A replica applying its primary's stream, in-process (no sockets): the
replication offset counts exactly the applied bytes however the stream is
split into reads, a MULTI block counts once its EXEC ran, and REPLCONF
GETACK answers with the offset of what came before it."""

from __future__ import annotations

import pytest

from hakv.common.main import build_server
from hakv.common.resp import encode_command
from hakv.replica.link import PrimaryLink
from replication_support import RecordingTransport


def streaming_link(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    server = build_server(["--save", "", "--replicaof", "127.0.0.1", "1"]).server
    follower = server.replication.follower
    link = PrimaryLink(follower, follower.generation)
    link.transport = RecordingTransport()
    follower.link = link
    follower.state = "connected"
    link.start_stream(0)
    return server, link


def wire(*commands) -> list:
    return [encode_command(*c) for c in commands]


HEAD = wire([b"SET", b"a", b"1"], [b"SELECT", b"1"])
BLOCK = wire([b"MULTI"], [b"SET", b"b", b"2"], [b"INCRBY", b"c", b"40"],
             [b"CLIENT", b"NO-EVICT", b"on"], [b"EXEC"])
GETACK = wire([b"REPLCONF", b"GETACK", b"*"])
TAIL = wire([b"SET", b"d", b"v" * 300], [b"PING"])


@pytest.mark.parametrize("read_size", [1, 3, 7, 64, 10_000])
def test_offset_counts_applied_bytes_whatever_the_reads(tmp_path, monkeypatch, read_size):
    server, link = streaming_link(tmp_path, monkeypatch)
    source = server.replication
    stream = b"".join(HEAD + BLOCK + GETACK + TAIL)
    for i in range(0, len(stream), read_size):
        link.data_received(stream[i:i + read_size])
    assert source.ids.offset == len(stream)
    assert link.unapplied_bytes() == 0
    db1 = server.keyspace[1]
    assert (server.keyspace[0].get(b"a"), db1.get(b"b"), db1.get(b"c"), db1.get(b"d")) == (
        b"1", b"2", b"40", b"v" * 300)
    # GETACK reports what came before it, itself excluded (as Redis).
    before_getack = len(b"".join(HEAD + BLOCK))
    assert link.transport.written == [
        encode_command(b"REPLCONF", b"ACK", str(before_getack).encode())]
    # Our own replicas get exactly the applied bytes (the backlog holds them).
    assert source.backlog.since(1) == stream


def test_an_open_multi_block_is_not_counted_until_its_exec(tmp_path, monkeypatch):
    server, link = streaming_link(tmp_path, monkeypatch)
    source = server.replication
    head = b"".join(HEAD)
    # The block up to (not including) EXEC, and half of the EXEC.
    partial = b"".join(BLOCK[:-1]) + BLOCK[-1][:5]
    link.data_received(head + partial)
    assert source.ids.offset == len(head)
    assert link.unapplied_bytes() == len(partial)
    assert server.keyspace[1].get(b"b") is None  # queued, not run
    link.data_received(BLOCK[-1][5:])
    assert source.ids.offset == len(head) + len(b"".join(BLOCK))
    assert server.keyspace[1].get(b"b") == b"2"
    assert link.unapplied_bytes() == 0


def test_unknown_commands_are_skipped_but_counted(tmp_path, monkeypatch):
    server, link = streaming_link(tmp_path, monkeypatch)
    stream = b"".join(wire([b"NOSUCHCMD", b"x"], [b"SET", b"k", b"v"], [b"GET"]))
    link.data_received(stream)
    assert server.replication.ids.offset == len(stream)
    assert server.keyspace[0].get(b"k") == b"v"
