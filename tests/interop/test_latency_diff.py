"""LATENCY on hakv against redis-server 7.0: same shapes, same errors."""

from __future__ import annotations

import re
import socket

import pytest
import redis


@pytest.fixture
def pair(make_hakv, make_redis):
    """(hakv client, redis client), both with DEBUG enabled."""
    clients = [make_hakv("--enable-debug-command", "yes").client(),
               make_redis("--enable-debug-command", "yes").client()]
    yield clients
    for client in clients:
        client.close()


def _shape(value):
    """The reply with numbers blanked: what both servers must agree on."""
    if isinstance(value, list):
        return [_shape(v) for v in value]
    if isinstance(value, dict):
        return {_shape(k): _shape(v) for k, v in value.items()}
    if isinstance(value, int):
        return "int"
    return value


def _both(pair, *argv):
    out = []
    for client in pair:
        try:
            out.append(client.execute_command(*argv))
        except redis.ResponseError as exc:
            out.append(("error", str(exc)))
    return out


def test_debug_sleep_event_same_shape(pair):
    for client in pair:
        client.config_set("latency-monitor-threshold", 100)
        client.execute_command("DEBUG", "SLEEP", "0.2")
    ours, theirs = _both(pair, "LATENCY", "LATEST")
    assert _shape(ours) == _shape(theirs) == [[b"command", "int", "int", "int"]]
    for reply in (ours, theirs):
        [[_, _, latest, top]] = reply
        assert 200 <= latest < 500 and top == latest
    ours, theirs = _both(pair, "LATENCY", "HISTORY", "command")
    assert _shape(ours) == _shape(theirs) == [["int", "int"]]
    assert _both(pair, "LATENCY", "HISTORY", "nosuch") == [[], []]
    ours, theirs = _both(pair, "LATENCY", "GRAPH", "command")
    digits = re.compile(rb"\d+")
    assert digits.sub(b"N", ours) == digits.sub(b"N", theirs)
    ours, theirs = _both(pair, "LATENCY", "RESET", "nosuch", "command", "command")
    assert ours == theirs == 1
    assert _both(pair, "LATENCY", "LATEST") == [[], []]
    assert _both(pair, "LATENCY", "RESET") == [0, 0]


def test_histogram_same_shape(pair):
    for client in pair:
        client.execute_command("CONFIG", "RESETSTAT")
        client.set("a", "1")
        client.set("a", "2")
    ours, theirs = _both(pair, "LATENCY", "HISTOGRAM", "set", "nosuch")
    assert set(ours) == set(theirs) == {b"set"}
    for reply in (ours, theirs):
        entry = reply[b"set"]
        assert set(entry) == {b"calls", b"histogram_usec"} and entry[b"calls"] == 2
        assert list(entry[b"histogram_usec"].values())[-1] == 2  # cumulative
    ours, theirs = _both(pair, "LATENCY", "HISTOGRAM", "config")
    assert set(ours) == set(theirs) == {b"config|resetstat"}
    assert _both(pair, "LATENCY", "HISTOGRAM", "get") == [{}, {}]


def test_errors_and_help_are_redis_texts(pair):
    for argv in [("LATENCY", "foo"), ("LATENCY",), ("LATENCY", "LATEST", "x"),
                 ("LATENCY", "HISTORY"), ("LATENCY", "HISTORY", "a", "b"),
                 ("LATENCY", "GRAPH"), ("LATENCY", "GRAPH", "nosuch"),
                 ("LATENCY", "DOCTOR", "x"), ("LATENCY", "HELP", "x"),
                 ("CONFIG", "SET", "latency-monitor-threshold", "-1"),
                 ("CONFIG", "SET", "latency-monitor-threshold", "x")]:
        ours, theirs = _both(pair, *argv)
        assert ours == theirs, argv
    ours, theirs = _both(pair, "LATENCY", "HELP")
    assert ours == theirs


def _raw_resp3(port: int, *argv: bytes) -> bytes:
    """HELLO 3 then argv on a fresh socket: all the bytes that came back."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        payload = b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n"
        payload += b"*%d\r\n" % len(argv) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in argv)
        sock.sendall(payload)
        sock.settimeout(0.5)
        data = b""
        try:
            while True:  # until the server has been quiet for a moment
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except socket.timeout:
            pass
    return data


def test_doctor_and_graph_are_verbatim_in_resp3(pair):
    for client in pair:
        client.config_set("latency-monitor-threshold", 100)
        client.execute_command("DEBUG", "SLEEP", "0.12")
        port = client.connection_pool.connection_kwargs["port"]
        for argv in ((b"LATENCY", b"DOCTOR"), (b"LATENCY", b"GRAPH", b"command")):
            data = _raw_resp3(port, *argv)
            assert re.search(rb"\r\n=\d+\r\ntxt:", data), (argv, data[-200:])
