"""LATENCY on a running hakv-server: events from real slow operations."""

from __future__ import annotations

import time

import pytest
import redis


@pytest.fixture
def node(make_hakv):
    return make_hakv("--enable-debug-command", "yes")


@pytest.fixture
def rc(node):
    client = node.client()
    yield client
    client.close()


def test_monitor_is_off_by_default(rc):
    assert rc.config_get("latency-monitor-threshold") == {"latency-monitor-threshold": "0"}
    rc.execute_command("DEBUG", "SLEEP", "0.05")
    assert rc.execute_command("LATENCY", "LATEST") == []
    assert rc.execute_command("LATENCY", "HISTORY", "command") == []
    doctor = rc.execute_command("LATENCY", "DOCTOR").decode()
    assert "No latency spikes" in doctor and "disabled" in doctor


def test_debug_sleep_records_a_command_event(rc):
    rc.config_set("latency-monitor-threshold", 100)
    before = int(time.time())
    rc.execute_command("DEBUG", "SLEEP", "0.05")  # under the threshold
    assert rc.execute_command("LATENCY", "LATEST") == []
    rc.execute_command("DEBUG", "SLEEP", "0.15")
    [[name, when, latest, top]] = rc.execute_command("LATENCY", "LATEST")
    assert name == b"command" and before <= when <= int(time.time())
    assert 150 <= latest < 400 and top == latest
    assert rc.execute_command("LATENCY", "HISTORY", "command") == [[when, latest]]
    assert rc.execute_command("LATENCY", "HISTORY", "fork") == []
    graph = rc.execute_command("LATENCY", "GRAPH", "command").decode()
    lines = graph.split("\n")
    assert lines[0] == "command - high %d ms, low %d ms (all time high %d ms)" % (
        latest, latest, latest)
    assert lines[1] == "-" * 80
    assert lines[2:9] in ([" ", " ", " ", "_", " ", "0", "s"], [" ", " ", " ", "_", " ", "1", "s"])
    doctor = rc.execute_command("LATENCY", "DOCTOR").decode()
    assert "1. command: 1 spike recorded" in doctor and "SLOWLOG" in doctor
    # A later second is a new sample; the all-time max stays.
    time.sleep(1.05)
    rc.execute_command("DEBUG", "SLEEP", "0.1")
    history = rc.execute_command("LATENCY", "HISTORY", "command")
    assert len(history) == 2 and history[0] == [when, latest] and history[1][1] >= 100
    [[_, _, newest, top]] = rc.execute_command("LATENCY", "LATEST")
    assert newest == history[1][1] and top == max(latest, newest)


def test_reset_and_config(rc, node):
    rc.config_set("latency-monitor-threshold", 20)
    rc.execute_command("DEBUG", "SLEEP", "0.03")
    assert rc.execute_command("LATENCY", "RESET", "nosuch", "command", "command") == 1
    assert rc.execute_command("LATENCY", "LATEST") == []
    rc.execute_command("DEBUG", "SLEEP", "0.03")
    assert rc.execute_command("LATENCY", "RESET") == 1
    assert rc.execute_command("LATENCY", "RESET") == 0
    rc.config_set("latency-monitor-threshold", 0)
    rc.execute_command("DEBUG", "SLEEP", "0.03")
    assert rc.execute_command("LATENCY", "LATEST") == []
    with pytest.raises(redis.ResponseError, match="argument couldn't be parsed into an integer"):
        rc.config_set("latency-monitor-threshold", "abc")


def test_config_rewrite_keeps_the_threshold(make_hakv, tmp_path):
    conf = tmp_path / "hakv.conf"
    conf.write_text("enable-debug-command yes\n")
    node = make_hakv(config=str(conf))
    client = node.client()
    try:
        client.config_set("latency-monitor-threshold", 250)
        client.config_rewrite()
        assert "latency-monitor-threshold 250" in conf.read_text().splitlines()
    finally:
        client.close()


def test_commands_inside_multi_are_events_too(rc):
    rc.config_set("latency-monitor-threshold", 50)
    with rc.pipeline(transaction=True) as pipe:
        pipe.execute_command("DEBUG", "SLEEP", "0.06")
        pipe.execute_command("PING")
        pipe.execute()
    names = [e[0] for e in rc.execute_command("LATENCY", "LATEST")]
    assert b"command" in names


def test_expire_cycle_event(rc):
    rc.config_set("latency-monitor-threshold", 1)
    # Many keys expiring together: an active expiry run uses its whole 3 ms budget.
    deadline = int(time.time() * 1000) + 2000
    for start in range(0, 60000, 5000):
        with rc.pipeline(transaction=False) as pipe:
            for i in range(start, start + 5000):
                pipe.set("k%d" % i, "v", pxat=deadline)
            pipe.execute()
    end = time.time() + 10
    while time.time() < end:
        events = {e[0] for e in rc.execute_command("LATENCY", "LATEST")}
        if b"expire-cycle" in events:
            break
        time.sleep(0.05)
    assert b"expire-cycle" in events
    [_, ms] = rc.execute_command("LATENCY", "HISTORY", "expire-cycle")[-1]
    assert ms >= 1


def test_eviction_events(rc):
    rc.config_set("latency-monitor-threshold", 1)
    for start in range(0, 300000, 50000):
        rc.sadd("big", *range(start, start + 50000))
    used = rc.info("memory")["used_memory"]
    rc.config_set("maxmemory-policy", "allkeys-random")
    rc.execute_command("LATENCY", "RESET")
    rc.config_set("maxmemory", used - 1_000_000)  # evicts the big set right away
    assert rc.exists("big") == 0
    events = {e[0] for e in rc.execute_command("LATENCY", "LATEST")}
    assert {b"eviction-del", b"eviction-cycle"} <= events


def test_histogram(rc):
    rc.execute_command("CONFIG", "RESETSTAT")
    rc.set("a", "1")
    rc.set("b", "2")
    rc.get("a")
    reply = rc.execute_command("LATENCY", "HISTOGRAM", "set", "GET", "nosuch", "set")
    assert set(reply) == {b"set", b"get"}
    for name, calls in ((b"set", 2), (b"get", 1)):
        entry = reply[name]
        assert entry[b"calls"] == calls
        bounds = list(entry[b"histogram_usec"])
        counts = list(entry[b"histogram_usec"].values())
        assert bounds == sorted(bounds) and all(b & (b - 1) == 0 for b in bounds)
        assert counts == sorted(counts) and counts[-1] == calls  # cumulative
    every = rc.execute_command("LATENCY", "HISTOGRAM")
    assert {b"set", b"get", b"config|resetstat"} <= set(every)
    # A container's name stands for its subcommands.
    assert set(rc.execute_command("LATENCY", "HISTOGRAM", "config")) == {
        b"config|resetstat"}
    assert rc.execute_command("LATENCY", "HISTOGRAM", "config|get") == {}


def test_errors_and_help(rc):
    cases = [
        (("LATENCY", "foo"), "unknown subcommand 'foo'. Try LATENCY HELP."),
        (("LATENCY",), "wrong number of arguments for 'latency' command"),
        (("LATENCY", "LATEST", "x"), "wrong number of arguments for 'latency|latest' command"),
        (("LATENCY", "HISTORY"), "wrong number of arguments for 'latency|history' command"),
        (("LATENCY", "GRAPH", "a", "b"), "wrong number of arguments for 'latency|graph' command"),
        (("LATENCY", "GRAPH", "nosuch"), "No samples available for event 'nosuch'"),
    ]
    for argv, message in cases:
        with pytest.raises(redis.ResponseError) as exc:
            rc.execute_command(*argv)
        assert str(exc.value) == message
    help_lines = rc.execute_command("LATENCY", "HELP")
    assert help_lines[0].startswith(b"LATENCY <subcommand>")
    assert b"HISTOGRAM [COMMAND ...]" in help_lines
