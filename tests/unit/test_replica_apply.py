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


# -- runs of plain commands are applied batch-wise (replica/apply.py): the same
# effects as one by one through dispatch.call()


def command_counts(server) -> dict:
    """name -> [calls, failed_calls, rejected_calls] (INFO commandstats' counts;
    the command table is the process's, shared by the tests: compare deltas)."""
    return {name.decode(): [c.calls, c.failed_calls, c.rejected_calls]
            for name, c in server.table.commands.items()}


def test_applied_commands_are_counted_and_errors_logged(tmp_path, monkeypatch):
    server, link = streaming_link(tmp_path, monkeypatch)
    logged = []
    monkeypatch.setattr(server, "log", lambda level, msg: logged.append((level, msg)))
    stream = b"".join(wire([b"SET", b"a", b"x"], [b"set", b"b", b"2"], [b"INCR", b"b"],
                           [b"INCR", b"a"], [b"SELECT", b"2"], [b"SET", b"c", b"3"],
                           [b"PING"], [b"SADD", b"s", b"m"], [b"INCRBY", b"b"]))
    before = command_counts(server)
    link.data_received(stream)
    assert server.replication.ids.offset == len(stream)
    after = command_counts(server)
    delta = {name: [a - b for a, b in zip(after[name], before[name])] for name in after
             if after[name] != before[name]}
    # INCR of "x" failed; INCRBY with a wrong arity was rejected, not run.
    assert delta == {"set": [3, 0, 0], "incr": [2, 1, 0], "incrby": [0, 0, 1],
                     "select": [1, 0, 0], "ping": [1, 0, 0], "sadd": [1, 0, 0]}
    assert server.keyspace[0].get(b"b") == b"3"
    assert server.keyspace[2].get(b"c") == b"3" and server.keyspace[2].exists(b"s")
    assert server.stat_commands == 8
    assert server.error_counts.get("ERR") == 2
    errors = [m for level, m in logged if "sending an error to its master" in m]
    assert len(errors) == 2 and "'incr'" in errors[0].lower() and "INCRBY" in errors[1]
    # Replies to the primary's stream are never written (GETACK's ACK only).
    assert link.transport.written == []
    assert link.dbid == 2  # SELECT in the stream moves the link


def test_monitor_sees_each_replicated_command(tmp_path, monkeypatch):
    from memory_support import connect, run
    server, link = streaming_link(tmp_path, monkeypatch)
    mon = connect(server)
    assert run(mon, "MONITOR") == b"+OK\r\n"
    mon.transport.written.clear()
    link.data_received(b"".join(wire([b"SET", b"k", b"1"], [b"SELECT", b"1"],
                                     [b"DEL", b"k"])))
    lines = b"".join(mon.transport.written).decode().splitlines()
    assert [line.split("] ", 1)[1] for line in lines] == [
        '"SET" "k" "1"', '"SELECT" "1"', '"DEL" "k"']
    assert [line.split()[1] for line in lines] == ["[0", "[1", "[1"]  # the db after each


def test_a_multi_block_between_plain_runs_applies_atomically(tmp_path, monkeypatch):
    server, link = streaming_link(tmp_path, monkeypatch)
    seen = []
    real_call = __import__("hakv.common.dispatch", fromlist=["call"]).call

    def spying_call(client, cmd, argv):
        seen.append((argv[0], client.in_exec))
        return real_call(client, cmd, argv)

    monkeypatch.setattr("hakv.common.dispatch.call", spying_call)
    stream = b"".join(wire([b"SET", b"a", b"1"], [b"MULTI"], [b"SET", b"a", b"2"],
                           [b"INCR", b"a"], [b"EXEC"], [b"SET", b"b", b"x"]))
    link.data_received(stream)
    assert server.keyspace[0].get(b"a") == b"3" and server.keyspace[0].get(b"b") == b"x"
    # The block goes through call() (its commands run inside EXEC), the
    # plain commands around it batch-wise.
    assert seen == [(b"MULTI", False), (b"EXEC", False)]
    assert server.replication.ids.offset == len(stream)
