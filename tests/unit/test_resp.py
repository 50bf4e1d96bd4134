"""The RESP request parser and reply encoder (common/resp.py), without I/O.

Expected bytes and error texts are Redis 7.0's (the integration and interop
tests compare the same cases with a real redis-server over sockets).
"""

from __future__ import annotations

import math
import time

import pytest

from hakv.common.resp import (
    NULL_ARRAY, Bool, ErrorReply, ProtocolError, Push, Raw, RequestParser, Verbatim, encode,
    encode_command, split_args,
)


def feed_all(data: bytes, chunk: int | None = None, parser: RequestParser | None = None):
    parser = parser or RequestParser()
    if chunk is None:
        return parser.feed(data)
    out = []
    for i in range(0, len(data), chunk):
        out += parser.feed(data[i:i + chunk])
    return out


def protocol_error(data: bytes, parser: RequestParser | None = None):
    parser = parser or RequestParser()
    with pytest.raises(ProtocolError) as info:
        parser.feed(data)
    return str(info.value), info.value.commands


# ------------------------------------------------------------------ requests


def test_multibulk_commands_in_one_chunk():
    data = encode_command(b"SET", b"k", b"v") + encode_command(b"GET", b"k")
    assert feed_all(data) == [[b"SET", b"k", b"v"], [b"GET", b"k"]]


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64])
def test_multibulk_split_anywhere(chunk):
    data = encode_command(b"SET", b"key", b"a\r\nb\x00c") + encode_command(b"PING") * 3
    assert feed_all(data, chunk) == [[b"SET", b"key", b"a\r\nb\x00c"]] + [[b"PING"]] * 3


def test_binary_and_empty_arguments():
    data = encode_command(b"ECHO", b"") + encode_command(b"ECHO", bytes(range(256)))
    assert feed_all(data) == [[b"ECHO", b""], [b"ECHO", bytes(range(256))]]


def test_large_value_in_small_chunks_is_linear():
    value = b"x" * (4 * 1024 * 1024)
    data = encode_command(b"SET", b"big", value)
    parser = RequestParser()
    start = time.perf_counter()
    out = feed_all(data, 4096, parser)
    elapsed = time.perf_counter() - start
    assert out == [[b"SET", b"big", value]]
    assert parser.pending_bytes() == 0
    # 1024 chunks: reparsing the buffer each time would be quadratic (seconds).
    assert elapsed < 1.0


def test_zero_and_null_multibulk_are_skipped():
    assert feed_all(b"*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n") == [[b"PING"]]


def test_pipeline_of_thousands():
    data = encode_command(b"INCR", b"n") * 5000
    assert feed_all(data) == [[b"INCR", b"n"]] * 5000
    assert feed_all(data, 1000) == [[b"INCR", b"n"]] * 5000


def test_inline_commands():
    assert feed_all(b"PING\r\nSET a b\nGET   a\r\n\r\n") == [
        [b"PING"], [b"SET", b"a", b"b"], [b"GET", b"a"]]


def test_inline_mixed_with_multibulk():
    data = b"PING\r\n" + encode_command(b"ECHO", b"x") + b"ECHO y\r\n"
    assert feed_all(data) == [[b"PING"], [b"ECHO", b"x"], [b"ECHO", b"y"]]
    assert feed_all(data, 3) == [[b"PING"], [b"ECHO", b"x"], [b"ECHO", b"y"]]


@pytest.mark.parametrize("line, argv", [
    (b'set "a b" c', [b"set", b"a b", b"c"]),
    (b'echo "\\x41\\n\\t\\"q\\""', [b"echo", b'A\n\t"q"']),
    (b"echo 'it''s'", None),  # a closing quote must be followed by a space
    (b"echo 'a\\'b'", [b"echo", b"a'b"]),
    (b"echo 'a\\nb'", [b"echo", b"a\\nb"]),  # no escapes in single quotes
    (b'echo ""', [b"echo", b""]),
    (b'echo "a"b', None),
    (b'echo "unterminated', None),
    (b"echo 'unterminated", None),
    (b"  a\t b  ", [b"a", b"b"]),
    (b"", []),
    (b'echo "\\xZZ"', [b"echo", b"xZZ"]),  # not a hex escape: the backslash is dropped
])
def test_split_args_like_sdssplitargs(line, argv):
    assert split_args(line) == argv


@pytest.mark.parametrize("data, message", [
    (b"*1\r\n+PING\r\n", "Protocol error: expected '$', got '+'"),
    (b"*2\r\n$3\r\nget\r\n:1\r\n", "Protocol error: expected '$', got ':'"),
    (b"*1\r\n*1\r\n", "Protocol error: expected '$', got '*'"),
    (b"*1\r\n$-1\r\n", "Protocol error: invalid bulk length"),
    (b"*1\r\n$-0\r\n", "Protocol error: invalid bulk length"),
    (b"*1\r\n$04\r\nPING\r\n", "Protocol error: invalid bulk length"),
    (b"*-0\r\n", "Protocol error: invalid multibulk length"),
    (b"*01\r\n$4\r\nPING\r\n", "Protocol error: invalid multibulk length"),
    (b"*2\r\n$4\r\nECHO\r\n$-1\r\n", "Protocol error: invalid bulk length"),
    (b"*1\r\n$x\r\n", "Protocol error: invalid bulk length"),
    (b"*1\r\n$536870913\r\n", "Protocol error: invalid bulk length"),
    (b"*3000000000\r\n", "Protocol error: invalid multibulk length"),
    (b"*99999999999999999999999\r\n", "Protocol error: invalid multibulk length"),
    (b"*x\r\n", "Protocol error: invalid multibulk length"),
    (b'set a "b\r\n', "Protocol error: unbalanced quotes in request"),
    (b"a" * 70000, "Protocol error: too big inline request"),
    (b"*" + b"1" * 70000, "Protocol error: too big mbulk count string"),
    (b"*1\r\n$" + b"1" * 70000, "Protocol error: too big bulk count string"),
])
def test_protocol_errors(data, message):
    assert protocol_error(data)[0] == message


def test_commands_before_a_protocol_error_are_kept():
    msg, commands = protocol_error(encode_command(b"SET", b"a", b"1") + b"*1\r\n$-5\r\n")
    assert msg == "Protocol error: invalid bulk length"
    assert commands == [[b"SET", b"a", b"1"]]


def test_bulk_limit_follows_proto_max_bulk_len():
    parser = RequestParser(max_bulk=1024 * 1024)
    assert protocol_error(b"*1\r\n$1048577\r\n", parser)[0] == \
        "Protocol error: invalid bulk length"
    assert RequestParser(max_bulk=1024 * 1024).feed(b"*1\r\n$1048576\r\n") == []


def test_unauthenticated_limits():
    parser = RequestParser()
    parser.unauthenticated = True
    assert protocol_error(b"*11\r\n", parser)[0] == \
        "Protocol error: unauthenticated multibulk length"
    parser = RequestParser()
    parser.unauthenticated = True
    assert protocol_error(b"*1\r\n$16385\r\n", parser)[0] == \
        "Protocol error: unauthenticated bulk length"
    parser = RequestParser()
    parser.unauthenticated = True
    assert parser.feed(encode_command(b"AUTH", b"x" * 16384)) == [[b"AUTH", b"x" * 16384]]


def test_huge_multibulk_count_does_not_stall():
    # hiredis would allocate a list of three billion slots; freeing it takes
    # seconds. The parser must answer in well under a millisecond or two.
    for header in (b"*2147483647\r\n", b"*1000000\r\n", b"*1\r\n*2000000000\r\n"):
        start = time.perf_counter()
        try:
            RequestParser().feed(header)
        except ProtocolError:
            pass
        assert time.perf_counter() - start < 0.05, header


@pytest.mark.parametrize("later, lines", [
    # Redis reads a line that does not start with '*' as an inline command;
    # hiredis would give these RESP3 aggregates as lists, dicts or pushes.
    (b"~1\r\n$1\r\na\r\n", [[b"~1"], [b"$1"], [b"a"]]),
    (b"%1\r\n$1\r\na\r\n$1\r\nb\r\n", [[b"%1"], [b"$1"], [b"a"], [b"$1"], [b"b"]]),
    (b">1\r\n$1\r\na\r\n", [[b">1"], [b"$1"], [b"a"]]),
    (b"|1\r\n$1\r\na\r\n$1\r\nb\r\n", [[b"|1"], [b"$1"], [b"a"], [b"$1"], [b"b"]]),
    (b"$3\r\nabc\r\n", [[b"$3"], [b"abc"]]),
    (b":5\r\n", [[b":5"]]),
    (b":0\r\n" + encode_command(b"PING"), [[b":0"], [b"PING"]]),  # hiredis's 0 == False
])
def test_later_message_that_is_not_an_array_is_inline(later, lines):
    first = encode_command(b"PING")
    assert feed_all(first + later) == [[b"PING"]] + lines
    assert feed_all(first + later, 5) == [[b"PING"]] + lines


def test_map_with_an_array_key_is_a_protocol_error_not_a_crash():
    # hiredis raises TypeError (unhashable key) for this one.
    message, commands = protocol_error(encode_command(b"PING") + b"*1\r\n%1\r\n*1\r\n$1\r\na\r\n"
                                       b"$1\r\nb\r\n")
    assert message == "Protocol error: expected '$', got '%'"
    assert commands == [[b"PING"]]


@pytest.mark.parametrize("count", [1, 3])
def test_arguments_that_start_like_other_types_take_the_fast_path(count, monkeypatch):
    # ZRANGEBYSCORE's +inf and (1, a value "=x", "~", "|": bulk payloads, not lines.
    from hakv.common import resp
    cmd = [b"ZRANGEBYSCORE", b"z", b"(1", b"+inf", b"=x", b"~1", b"|1", b"\n+", b"%1"]
    data = encode_command(*cmd) * count
    refused = []
    fast_parse = resp._fast_parse

    def watched(reader, chunk, *odd):
        commands, used = fast_parse(reader, chunk, *odd)
        if commands is None:
            refused.append(chunk)
        return commands, used

    monkeypatch.setattr(resp, "_fast_parse", watched)
    assert feed_all(data) == [cmd] * count
    assert not refused  # hiredis's parse was taken, not redone in Python


@pytest.mark.parametrize("later, expected", [
    # After a first whole command, in the same chunk: what the batch check
    # (one join over every message's elements) must not let through.
    (b"*2\r\n$3\r\nGET\r\n:1\r\n", "Protocol error: expected '$', got ':'"),
    (b"*2\r\n$3\r\nGET\r\n*1\r\n$1\r\na\r\n", "Protocol error: expected '$', got '*'"),
    (b"*2\r\n$3\r\nGET\r\n_\r\n", "Protocol error: expected '$', got '_'"),
    (b"*2\r\n$3\r\nGET\r\n,1.5\r\n", "Protocol error: expected '$', got ','"),
    (b"*2\r\n$3\r\nGET\r\n#t\r\n", "Protocol error: expected '$', got '#'"),
    (b"*2\r\n$3\r\nGET\r\n-ERR x\r\n", "Protocol error: expected '$', got '-'"),
    (b"*2\r\n$3\r\nGET\r\n%1\r\n$1\r\na\r\n$1\r\nb\r\n",
     "Protocol error: expected '$', got '%'"),
])
def test_a_later_command_with_an_element_of_another_type_is_a_protocol_error(later, expected):
    message, commands = protocol_error(encode_command(b"PING") + later + encode_command(b"PING"))
    assert message == expected
    assert commands == [[b"PING"]]


def test_empty_and_null_arrays_between_commands_are_skipped():
    ping = encode_command(b"PING")
    assert feed_all(ping + b"*0\r\n" + ping + b"*-1\r\n" + ping) == [[b"PING"]] * 3


def test_a_simple_string_line_after_a_command_is_still_inline():
    assert feed_all(encode_command(b"PING") + b"+OK\r\n") == [[b"PING"], [b"+OK"]]


@pytest.mark.parametrize("line", [b"~1", b">1", b"|1"])
def test_a_resp3_aggregate_line_after_a_command_is_inline(line):
    # hiredis reads a set / push / attribute as a list; Redis reads an inline command.
    data = encode_command(b"PING") + line + b"\r\n$4\r\nPING\r\n"
    assert feed_all(data) == [[b"PING"], [line], [b"$4"], [b"PING"]]


def test_a_pipeline_split_anywhere():
    # Every split point: after a header, inside a length, inside a payload,
    # between \r and \n, on a boundary. The reader must never be left
    # holding part of a message.
    cmds = [[b"SET", b"key:1", b"v" * 12], [b"GET", b"key:1"], [b"MSET"] + [b"a"] * 10,
            [b"PING"]]
    data = b"".join(encode_command(*c) for c in cmds)
    for k in range(len(data) + 1):
        parser = RequestParser()
        assert parser.feed(data[:k]) + parser.feed(data[k:]) == cmds, k
        assert parser.feed(data) == cmds, k  # and the parser is usable after


@pytest.mark.parametrize("count", [1, 2, 16, 100])
def test_pipelines_of_varied_arguments(count):
    # Argument lengths around the digit boundaries of the length check.
    cmds = [[b"SET", b"k" * (i % 13), b"v" * (i * 37 % 1200)] for i in range(count)]
    cmds += [[b"MSET"] + [b"x" * n for n in (0, 9, 10, 99, 100, 999, 1000)]]
    data = b"".join(encode_command(*c) for c in cmds)
    assert feed_all(data) == cmds
    assert feed_all(data, 7) == cmds


@pytest.mark.parametrize("count", [1, 2, 9, 10, 11, 12])
def test_one_message_per_chunk_takes_the_fast_path(count, monkeypatch):
    # A client that does not pipeline: the chunk's length is checked against
    # the message's encoding, summed argument by argument (lengths around
    # the digit boundaries), and the reader stays usable for the next one.
    from hakv.common import resp
    refused = []
    fast_parse = resp._fast_parse

    def watched(reader, chunk, *odd):
        commands, used = fast_parse(reader, chunk, *odd)
        if commands is None or used != len(chunk):
            refused.append(chunk)
        return commands, used

    monkeypatch.setattr(resp, "_fast_parse", watched)
    parser = RequestParser()
    for n in (0, 1, 9, 10, 99, 100, 999, 1000, 9999, 10000, 100000):
        cmd = [b"SET"] + [b"v" * n] * (count - 1) if count > 1 else [b"v" * n or b"x"]
        assert parser.feed(encode_command(*cmd)) == [cmd], n
    assert not refused


def test_one_message_then_the_start_of_the_next():
    # One whole message and a few bytes of the next in one chunk: the
    # reader is replaced and the rest waits in the Python parser.
    first = encode_command(b"GET", b"k")
    for tail in (b"*", b"*1", b"*1\r", b"*1\r\n", b"*1\r\n$4\r\nPI", b"*1\r\n$4\r\nPING\r"):
        parser = RequestParser()
        assert parser.feed(first + tail) == [[b"GET", b"k"]], tail
        assert parser.feed(b"*1\r\n$4\r\nPING\r\n"[len(tail):]) == [[b"PING"]], tail
        assert parser.feed(first) == [[b"GET", b"k"]], tail


def test_a_shorter_element_and_a_partial_message_are_not_mistaken_for_one_message():
    # "+foo" is 3 bytes shorter than "$3\r\nfoo": with the first 3 bytes of a
    # next message the chunk has the length of *1 $3 foo. Redis refuses the
    # '+' element; the parser must not take hiredis's reading of it.
    message, commands = protocol_error(b"*1\r\n+foo\r\n*1\r")
    assert message == "Protocol error: expected '$', got '+'"
    assert commands == []


def test_parser_keeps_partial_state_across_chunks():
    parser = RequestParser()
    assert parser.feed(b"*2\r\n$4\r\nECHO\r\n$5\r\nhel") == []
    assert parser.pending_bytes() > 0
    assert parser.feed(b"lo\r\n*1\r\n$4\r\nPI") == [[b"ECHO", b"hello"]]
    assert parser.feed(b"NG\r\n") == [[b"PING"]]
    assert parser.pending_bytes() == 0


# ------------------------------------------------------------------ replies


@pytest.mark.parametrize("value, resp2, resp3", [
    (b"abc", b"$3\r\nabc\r\n", b"$3\r\nabc\r\n"),
    ("OK", b"+OK\r\n", b"+OK\r\n"),
    (42, b":42\r\n", b":42\r\n"),
    (-1, b":-1\r\n", b":-1\r\n"),
    (None, b"$-1\r\n", b"_\r\n"),
    (NULL_ARRAY, b"*-1\r\n", b"_\r\n"),
    ([b"a", 1, None], b"*3\r\n$1\r\na\r\n:1\r\n$-1\r\n", b"*3\r\n$1\r\na\r\n:1\r\n_\r\n"),
    ({b"k": 1}, b"*2\r\n$1\r\nk\r\n:1\r\n", b"%1\r\n$1\r\nk\r\n:1\r\n"),
    ({b"m"}, b"*1\r\n$1\r\nm\r\n", b"~1\r\n$1\r\nm\r\n"),
    (1.5, b"$3\r\n1.5\r\n", b",1.5\r\n"),
    (0.1, b"$19\r\n0.10000000000000001\r\n", b",0.10000000000000001\r\n"),
    (math.inf, b"$3\r\ninf\r\n", b",inf\r\n"),
    (-math.inf, b"$4\r\n-inf\r\n", b",-inf\r\n"),
    (Bool(True), b":1\r\n", b"#t\r\n"),
    (Bool(False), b":0\r\n", b"#f\r\n"),
    (Verbatim(b"hi"), b"$2\r\nhi\r\n", b"=6\r\ntxt:hi\r\n"),
    (Push([b"message", b"c", b"m"]), b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n",
     b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n"),
    (ErrorReply("ERR bad\r\nthing"), b"-ERR bad  thing\r\n", b"-ERR bad  thing\r\n"),
    (Raw(b"+RAW\r\n"), b"+RAW\r\n", b"+RAW\r\n"),
    ([], b"*0\r\n", b"*0\r\n"),
])
def test_encode(value, resp2, resp3):
    assert encode(value, False) == resp2
    assert encode(value, True) == resp3


def test_encode_nested():
    value = [[b"a", [1, 2]], {b"x": [None]}]
    assert encode(value, False) == (b"*2\r\n*2\r\n$1\r\na\r\n*2\r\n:1\r\n:2\r\n"
                                    b"*2\r\n$1\r\nx\r\n*1\r\n$-1\r\n")
    assert encode(value, True) == (b"*2\r\n*2\r\n$1\r\na\r\n*2\r\n:1\r\n:2\r\n"
                                   b"%1\r\n$1\r\nx\r\n*1\r\n_\r\n")


def test_encode_command_round_trips_through_the_parser():
    argv = [b"SET", b"k\r\n", b"", bytes(range(256))]
    assert RequestParser().feed(encode_command(*argv)) == [argv]
    assert encode_command("SET", 1, b"x") == b"*3\r\n$3\r\nSET\r\n$1\r\n1\r\n$1\r\nx\r\n"
