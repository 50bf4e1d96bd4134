"""The primary's stream to its replicas, in-process (no sockets): what a
loop turn propagates is written once per replica, as one write of the same
bytes; a replica whose snapshot starts gets only what follows the snapshot,
held until the snapshot is delivered; a partial resync gets the backlog and
nothing twice."""

from __future__ import annotations


import pytest

from hakv.common.connection import Client
from hakv.common.resp import encode_command
from hakv.primary.links import ReplicaLink
from hakv.primary.source import select_command
from replication_support import RecordingTransport, in_process_primary as primary


def add_replica(source, state=ReplicaLink.ONLINE) -> ReplicaLink:
    client = Client(source.server)
    client.transport = RecordingTransport()
    client.is_replica = True
    link = source.link_for(client)
    link.state = state
    source.replicas.append(link)
    return link


def propagate(server, *argv) -> bytes:
    server.keyspace.propagate(0, list(argv))
    server.flush_propagation()
    return encode_command(*argv)


def test_one_write_per_replica_per_turn_with_the_same_bytes(primary):
    source = primary.replication
    source.create_backlog()
    a, b = add_replica(source), add_replica(source)
    sent = [propagate(primary, b"SET", b"k%d" % i, b"v") for i in range(3)]
    assert a.client.transport.written == b.client.transport.written == []
    source._flush_links()
    expected = source.backlog.since(source.backlog.first)
    assert expected.endswith(b"".join(sent))
    assert a.client.transport.written == b.client.transport.written == [expected]
    assert a.client.transport.written[0] is b.client.transport.written[0]
    assert source.ids.offset == len(expected)


def test_a_snapshot_start_keeps_earlier_bytes_out_of_the_held_stream(primary):
    source = primary.replication
    source.create_backlog()
    online = add_replica(source)
    syncing = add_replica(source, ReplicaLink.WAIT_START)
    before = propagate(primary, b"SET", b"before", b"1")
    # The fork happens in this loop turn: its snapshot holds `before`.
    source.setup_full_resync(syncing, source.ids.offset)
    after = propagate(primary, b"SET", b"after", b"2")
    source._flush_links()
    # (The stream after a snapshot starts by naming its database.)
    assert syncing.pending == [select_command(0) + after]
    assert b"".join(online.client.transport.written).endswith(before + select_command(0) + after)
    syncing.client.transport.written.clear()
    source.snapshot_sent(syncing, wait_ack=False)
    later = propagate(primary, b"SET", b"later", b"3")
    source._flush_links()
    assert syncing.client.transport.written == [select_command(0) + after, later]


def test_partial_resync_gets_the_backlog_and_no_byte_twice(primary):
    source = primary.replication
    source.create_backlog()
    add_replica(source)
    first = propagate(primary, b"SET", b"a", b"1")
    resumed_from = source.ids.offset + 1
    second = propagate(primary, b"SET", b"b", b"2")  # not flushed yet
    client = Client(primary)
    client.transport = RecordingTransport()
    link = source.link_for(client)
    link.capa.add("psync2")
    source._continue(link, resumed_from)
    third = propagate(primary, b"SET", b"c", b"3")
    source._flush_links()
    written = b"".join(client.transport.written)
    assert written == b"+CONTINUE %s\r\n" % source.ids.replid.encode() + second + third
    assert first not in written


def test_backlog_readers_see_the_bytes_of_the_running_turn(primary):
    """The backlog takes a turn's stream when it is written to the replicas;
    PSYNC and INFO in the same turn still see every byte of it."""
    source = primary.replication
    source.create_backlog()
    add_replica(source)
    propagate(primary, b"SET", b"a", b"1")
    source._flush_links()
    caught_up_at = source.ids.offset + 1
    pending = propagate(primary, b"SET", b"b", b"2")  # not flushed yet
    info = dict(source.info_lines())
    assert int(info["repl_backlog_first_byte_offset"]) + int(info["repl_backlog_histlen"]) - 1 \
        == int(info["master_repl_offset"]) == source.ids.offset
    later = propagate(primary, b"SET", b"c", b"3")  # not flushed yet
    client = Client(primary)
    client.transport = RecordingTransport()
    source.sync(client, [b"PSYNC", source.ids.replid.encode(), str(caught_up_at).encode()])
    assert b"".join(client.transport.written) == (
        b"+CONTINUE\r\n" + pending + later)
    assert source.stat_sync_partial_ok == 1


def test_a_replica_gone_mid_turn_keeps_the_backlog_in_order(primary):
    source = primary.replication
    source.create_backlog()
    link = add_replica(source)
    first = propagate(primary, b"SET", b"a", b"1")
    source.replicas.remove(link)  # the last replica leaves before the turn ends
    second = propagate(primary, b"SET", b"b", b"2")
    source._flush_links()
    third = propagate(primary, b"SET", b"c", b"3")
    assert source.backlog.since(source.backlog.first).endswith(first + second + third)
    assert source.backlog.end == source.ids.offset + 1


@pytest.mark.parametrize("argv", [
    [b"SET", b"k", b"v"], [b"set", b"k" * 5000, b""], [b"DEL", b"x"], [b"PING"],
    [b"HSET", b"h", b"f", b"v" * 1023], [b"HSET", b"h", b"f", b"v" * 1024],
    [b"PEXPIREAT", b"k", 1700000000000], [b"SET", "k", b"v"], ["SET", b"k", b"v"],
    [b"MSET", b"a", b"1", b"b", b"2"], (b"INCRBY", b"n", b"5"), [bytearray(b"SET"), b"a", b"b"],
])
def test_encode_propagated_is_encode_command(argv):
    from hakv.common.server import encode_propagated
    assert encode_propagated(argv) == encode_command(*argv)
