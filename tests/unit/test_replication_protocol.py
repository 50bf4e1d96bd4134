"""The I/O-free parts of replication: backlog, PSYNC decision, the replica's
handshake, the snapshot framing and the stream's byte accounting."""

from __future__ import annotations

import pytest

from hakv.common.resp import encode_command
from hakv.primary.backlog import Backlog
from hakv.primary.psync import NO_ID, ReplIds, try_partial
from hakv.replica.handshake import Handshake
from hakv.replica.payload import PayloadError, PayloadReader
from hakv.replica.stream import CommandStream, StreamError, batch_length, command_length

# ---------------------------------------------------------------- backlog


def test_backlog_offsets_and_trimming():
    b = Backlog(10, next_offset=1)
    assert (b.first, b.histlen, b.end) == (1, 0, 1)
    b.append(b"abcdef")
    assert (b.first, b.histlen, b.end) == (1, 6, 7)
    assert b.since(3) == b"cdef"
    b.append(b"ghijkl")  # 12 bytes written, 10 kept
    assert (b.first, b.histlen, b.end) == (3, 10, 13)
    assert b.since(3) == b"cdefghijkl"
    assert b.covers(3) and b.covers(13) and not b.covers(2) and not b.covers(14)
    assert b.since(13) == b""


def test_backlog_resize_keeps_newest():
    b = Backlog(100, next_offset=51)
    b.append(b"0123456789")
    b.resize(4)
    assert b.first == 57 and b.since(57) == b"6789"


# ---------------------------------------------------------------- PSYNC decision


def _ids_with_history():
    ids = ReplIds("a" * 40, offset=100)
    backlog = Backlog(1000, next_offset=1)
    backlog.append(b"x" * 100)
    return ids, backlog


def test_psync_continue_within_backlog():
    ids, backlog = _ids_with_history()
    assert try_partial(ids, backlog, "a" * 40, 101) == (True, None)
    assert try_partial(ids, backlog, "a" * 40, 1) == (True, None)


def test_psync_full_for_unknown_id_or_question_mark():
    ids, backlog = _ids_with_history()
    ok, reason = try_partial(ids, backlog, "b" * 40, 50)
    assert not ok and "Replication ID mismatch" in reason
    ok, reason = try_partial(ids, backlog, "?", -1)
    assert not ok and "Full resync requested" in reason


def test_psync_full_outside_backlog():
    ids, backlog = _ids_with_history()
    ok, reason = try_partial(ids, backlog, "a" * 40, 102)
    assert not ok and "backlog" in reason
    ok, _ = try_partial(ids, None, "a" * 40, 101)
    assert not ok


def test_psync2_after_promotion_accepts_old_id_up_to_the_switch():
    ids, backlog = _ids_with_history()
    ids.shift()  # promotion: the old history is valid up to offset 101
    assert ids.replid2 == "a" * 40 and ids.second_offset == 101 and ids.replid != "a" * 40
    assert try_partial(ids, backlog, "a" * 40, 101)[0]
    assert try_partial(ids, backlog, "a" * 40, 60)[0]
    # New writes after the promotion belong to the new id only.
    backlog.append(b"y" * 10)
    ids.offset += 10
    ok, reason = try_partial(ids, backlog, "a" * 40, 105)
    assert not ok and "second ID" in reason
    assert try_partial(ids, backlog, ids.replid, 111)[0]
    ids.clear_second()
    assert ids.replid2 == NO_ID and ids.second_offset == -1


# ---------------------------------------------------------------- handshake


def _run(h, replies):
    """Feed reply lines; returns (everything sent, steps)."""
    sent = [h.start()]
    steps = []
    for line in replies:
        step = h.on_line(line)
        steps.append(step)
        if step.send:
            sent.append(step.send)
    return b"".join(sent), steps


def test_handshake_fresh_replica_full_sync():
    h = Handshake(listening_port=6380)
    sent, steps = _run(h, ["+PONG", "+OK", "+OK", "", "+FULLRESYNC " + "f" * 40 + " 1234"])
    assert sent == (encode_command(b"PING")
                    + encode_command(b"REPLCONF", b"listening-port", b"6380")
                    + encode_command(b"REPLCONF", b"capa", b"eof", b"capa", b"psync2")
                    + encode_command(b"PSYNC", b"?", b"-1"))
    result = steps[-1].result
    assert result.kind == "full" and result.replid == "f" * 40 and result.offset == 1234


def test_handshake_auth_ip_and_partial():
    h = Handshake(listening_port=7000, announce_ip="10.0.0.5", auth_user="repl",
                  auth_pass="secret", replid="c" * 40, offset=99)
    sent, steps = _run(h, ["-NOAUTH Authentication required.", "+OK", "+OK", "+OK", "+OK",
                           "+CONTINUE " + "d" * 40])
    assert encode_command(b"AUTH", b"repl", b"secret") in sent
    assert encode_command(b"REPLCONF", b"ip-address", b"10.0.0.5") in sent
    assert sent.endswith(encode_command(b"PSYNC", b"c" * 40, b"100"))
    assert steps[-1].result.kind == "continue" and steps[-1].result.replid == "d" * 40


def test_handshake_continue_without_id_and_noncritical_errors():
    h = Handshake(listening_port=1, replid="c" * 40, offset=0)
    _, steps = _run(h, ["+PONG", "-ERR unknown option", "-ERR no capa", "+CONTINUE"])
    assert any("Non critical" in m for s in steps for _, m in s.logs)
    assert steps[-1].result.kind == "continue" and steps[-1].result.replid is None


@pytest.mark.parametrize("replies, words", [
    (["-ERR something odd"], "Error reply to PING"),
    (["+PONG", "-WRONGPASS invalid username-password pair"], "Unable to AUTH"),
    (["+PONG", "+OK", "+OK", "+OK", "-ERR unknown command 'PSYNC'"], "Unexpected reply to PSYNC"),
    (["+PONG", "+OK", "+OK", "+OK", "+FULLRESYNC nonsense"], "wrong +FULLRESYNC"),
])
def test_handshake_errors(replies, words):
    h = Handshake(listening_port=1, auth_pass="pw")
    _, steps = _run(h, replies)
    assert steps[-1].error and words in steps[-1].error


def test_handshake_primary_without_link_means_retry():
    h = Handshake(listening_port=1)
    _, steps = _run(h, ["+PONG", "+OK", "+OK",
                        "-NOMASTERLINK Can't SYNC while not connected with my master"])
    assert steps[-1].retry_later and steps[-1].error


# ---------------------------------------------------------------- payload framing


def test_payload_sized_with_keepalives_and_stream_after():
    r = PayloadReader()
    assert r.feed(b"\n\n$1") == (b"", b"")
    assert r.feed(b"0\r\n0123") == (b"0123", b"")
    assert r.total == 10
    assert r.feed(b"456789*1\r\n$4\r\nPING\r\n") == (b"456789", b"*1\r\n$4\r\nPING\r\n")
    assert r.done and r.received == 10


def test_payload_eof_mark_split_anywhere():
    mark = b"m" * 40
    body = bytes(range(256)) * 40
    wire = b"\n$EOF:" + mark + b"\r\n" + body + mark + b"STREAM"
    for step in (1, 7, 39, 40, 41, 1000):
        r = PayloadReader()
        got = []
        rest = b""
        for i in range(0, len(wire), step):
            chunk, rest_part = r.feed(wire[i:i + step])
            got.append(chunk)
            rest += rest_part
        assert b"".join(got) == body, step
        assert r.done and rest == b"STREAM"


@pytest.mark.parametrize("header, words", [
    (b"-ERR BGSAVE failed\r\n", "aborted replication"),
    (b"+OK\r\n", "first byte is not '$'"),
    (b"$abc\r\n", "first byte is not '$'"),
    (b"$EOF:short\r\n", "EOF mark"),
])
def test_payload_bad_headers(header, words):
    with pytest.raises(PayloadError, match=words.replace("$", r"\$").replace("+", r"\+")):
        PayloadReader().feed(header)


# ---------------------------------------------------------------- stream


def test_stream_byte_accounting_matches_encoding():
    cmds = [[b"SELECT", b"0"], [b"SET", b"k", b"v" * 300], [b"PING"],
            [b"MSET"] + [b"x%d" % i for i in range(20)]]
    wire = b"".join(encode_command(*c) for c in cmds)
    s = CommandStream()
    out = []
    for i in range(0, len(wire), 5):
        out += s.feed(wire[i:i + 5])
    assert out == cmds
    assert [command_length(c) for c in out] == [len(encode_command(*c)) for c in cmds]
    assert batch_length(out) == len(wire)
    assert batch_length(out[1:3]) == len(encode_command(*cmds[1])) + len(encode_command(*cmds[2]))
    assert batch_length([]) == 0
    assert command_length([b""]) == len(encode_command(b""))


def test_batch_length_of_large_arguments():
    # 64 KiB and more: past the digit table, counted the slow way.
    cmds = [[b"SET", b"k", b"v" * 70000], [b"SET", b"k", b"v" * 9]]
    many = [[b"SADD", b"s"] + [b"m"] * 70000]
    assert batch_length(cmds) == sum(len(encode_command(*c)) for c in cmds)
    assert batch_length(many) == len(encode_command(*many[0]))


def test_stream_rejects_non_commands():
    with pytest.raises(StreamError):
        CommandStream().feed(b"+OK\r\n")


def test_propagated_commands_encode_as_encode_command():
    from hakv.common.server import encode_propagated
    shapes = [[b"PING"], [b"DEL", b"k"], [b"SET", b"k", b"v" * 70000], (b"SET", b"k", b""),
              [b"HSET", b"h", b"f", b"v"], [b"PEXPIREAT", b"k", 1700000000000],
              [b"SET", "k", b"v"], [b"SET", bytearray(b"k"), b"v"], [b"MSET"] + [b"x"] * 9,
              [b"INCRBYFLOAT", b"k", 1.5]]
    for argv in shapes:
        assert encode_propagated(argv) == encode_command(*argv)
