"""A diskless full sync's pipe, in-process (no fork): the snapshot child
writes the closing EOF mark itself, so the replicas count as served as soon
as the mark comes through the pipe -- before the child has exited and been
reaped -- and their first ACK starts the stream; a pipe that ends without the
mark is a failed sync, whatever the child's exit status."""

from __future__ import annotations

import os

import pytest

from hakv.common.connection import Client
from hakv.primary.fullsync import SOCKET, SnapshotJob
from hakv.primary.links import ReplicaLink
from replication_support import RecordingTransport, in_process_primary as primary


class ClosingTransport(RecordingTransport):
    def __init__(self, client):
        super().__init__()
        self.client = client

    def close(self):
        self.client.closed = True


def syncing_replica(source) -> ReplicaLink:
    client = Client(source.server)
    client.transport = ClosingTransport(client)
    client.is_replica = True
    link = source.link_for(client)
    link.capa.add("eof")
    link.state = ReplicaLink.WAIT_START
    source.replicas.append(link)
    return link


def piped_job(source, links) -> tuple[SnapshotJob, int]:
    """A SOCKET job as start() leaves it, its child played by the test: the
    write end of the pipe is returned."""
    job = SnapshotJob(source, SOCKET, links)
    rfd, wfd = os.pipe()
    os.set_blocking(rfd, False)
    job.rfd = rfd
    job.mark = b"m" * 40
    for link in links:
        source.setup_full_resync(link, job.offset)
    source.job = job
    return job, wfd


def drain(job) -> None:
    while job.rfd >= 0:
        before = job.bytes
        job._on_pipe()
        if job.rfd >= 0 and job.bytes == before:
            break  # nothing more to read now


def sent(link) -> bytes:
    return b"".join(link.client.transport.written)


def test_the_mark_from_the_pipe_serves_the_replicas_before_the_child_is_reaped(primary):
    source = primary.replication
    source.create_backlog()
    a, b = syncing_replica(source), syncing_replica(source)
    job, wfd = piped_job(source, [a, b])
    os.write(wfd, b"REDIS0011...snapshot bytes...")
    drain(job)
    assert a.state == b.state == ReplicaLink.WAIT_END
    os.write(wfd, b"the end" + job.mark)  # the child's last write
    drain(job)
    assert a.state == b.state == ReplicaLink.ONLINE and a.wait_first_ack
    assert sent(a).endswith(b"REDIS0011...snapshot bytes...the end" + job.mark)
    # A write meanwhile is held for the replica until its first ACK.
    primary.keyspace.propagate(0, [b"SET", b"k", b"v"])
    primary.flush_propagation()
    source._flush_links()
    assert sent(a).endswith(job.mark)
    source.on_ack(a, job.offset)
    assert sent(a).endswith(b"$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n")
    assert not sent(b).endswith(b"v\r\n")  # b has not acked yet
    # The child exits later: nothing more is sent, nobody is dropped.
    os.close(wfd)
    drain(job)
    before = sent(a), sent(b)
    job._child_done(True)
    assert (sent(a), sent(b)) == before
    assert not a.closed and not b.closed and source.job is None


def test_a_mark_split_across_reads_is_recognised(primary):
    source = primary.replication
    source.create_backlog()
    a = syncing_replica(source)
    job, wfd = piped_job(source, [a])
    for piece in (b"x" * 100 + job.mark[:25], job.mark[25:30], job.mark[30:]):
        os.write(wfd, piece)
        drain(job)
    assert a.state == ReplicaLink.ONLINE
    os.close(wfd)
    drain(job)


@pytest.mark.parametrize("child_ok", [True, False])
def test_a_pipe_ending_without_the_mark_fails_the_sync(primary, child_ok):
    source = primary.replication
    source.create_backlog()
    a = syncing_replica(source)
    job, wfd = piped_job(source, [a])
    os.write(wfd, b"REDIS0011 cut short")
    os.close(wfd)
    drain(job)
    assert job.pipe_done and a.state == ReplicaLink.WAIT_END and not a.closed
    job._child_done(child_ok)
    assert a.closed
    assert sent(a).endswith(b"-ERR BGSAVE failed, replication can't continue\r\n")


def test_a_child_failing_after_the_whole_snapshot_keeps_the_replicas(primary):
    source = primary.replication
    source.create_backlog()
    a = syncing_replica(source)
    job, wfd = piped_job(source, [a])
    os.write(wfd, b"REDIS0011 all of it" + job.mark)
    os.close(wfd)
    drain(job)
    job._child_done(False)
    assert not a.closed and a.state == ReplicaLink.ONLINE
