"""The latency monitor's store and graph (common/latency.py), without a server."""

from __future__ import annotations

from hakv.common.commands.table import node_table
from hakv.common.config import Settings
from hakv.common.latency import HISTORY_LEN, EventSeries, render_sparkline
from hakv.common.node import load_families
from hakv.common.server import Server


def _server(threshold: int = 0) -> Server:
    load_families()
    settings = Settings()
    server = Server(settings)
    if threshold:
        settings.set("latency-monitor-threshold", [str(threshold)])
    return server


def test_same_second_samples_merge_keeping_the_worst():
    series = EventSeries()
    series.add(1000, 120)
    series.add(1000, 300)
    series.add(1000, 200)
    series.add(1001, 150)
    assert series.samples() == [(1000, 300), (1001, 150)]
    assert series.latest() == (1001, 150)
    assert series.max == 300


def test_ring_keeps_the_last_160_samples_and_the_all_time_max():
    series = EventSeries()
    series.add(1, 10_000)
    for t in range(2, 2 + HISTORY_LEN):
        series.add(t, t)
    samples = series.samples()
    assert len(samples) == HISTORY_LEN
    assert samples[0] == (2, 2) and samples[-1] == (HISTORY_LEN + 1, HISTORY_LEN + 1)
    assert series.max == 10_000  # the sample is gone, the max is not


def test_threshold_is_a_lower_bound_and_zero_disables():
    server = _server()
    monitor = server.latency_monitor
    monitor.add("command", 500)
    assert monitor.latest() == [] and server.latency_event_ns >= 1 << 62
    server.settings.set("latency-monitor-threshold", ["100"])
    assert monitor.threshold == 100 and server.latency_event_ns == 100_000_000
    monitor.add("command", 99.9)
    assert monitor.latest() == []
    monitor.add("command", 100.7)  # truncated to 100 ms, as Redis does
    [[name, _, latest, top]] = monitor.latest()
    assert (name, latest, top) == (b"command", 100, 100)


def test_command_events_split_fast_and_slow_commands():
    server = _server(10)
    monitor = server.latency_monitor
    table = node_table
    monitor.command_event(table.commands[b"get"], 12_000_000)  # GET is flagged fast
    monitor.command_event(table.commands[b"keys"], 25_000_000)
    latest = {e[0]: e[2] for e in monitor.latest()}
    assert latest == {b"fast-command": 12, b"command": 25}


def test_reset_counts_only_existing_events():
    server = _server(1)
    monitor = server.latency_monitor
    for event in ("command", "fork", "expire-cycle"):
        monitor.add(event, 5)
    assert monitor.reset(["nosuch", "fork", "fork"]) == 1
    assert monitor.reset() == 2
    assert monitor.latest() == [] and monitor.reset() == 0


# The expected drawings are what redis-server 7.0.15 replied for the same samples.

def test_graph_matches_redis_layout_for_three_samples():
    drawing = render_sparkline([200, 150, 250], ["8s", "1s", "0s"])
    assert drawing == "  #\n_ |\n| |\n|_|\n   \n810\nsss\n"
    drawing = render_sparkline([200, 150, 300], ["2s", "1s", "0s"])
    assert drawing == "  #\n  |\no |\n|_|\n   \n210\nsss\n"


def test_graph_of_one_sample_and_header():
    server = _server(100)
    monitor = server.latency_monitor
    monitor.add("command", 150)
    when = monitor.latest()[0][1]
    assert monitor.graph("command", now=when) == (
        "command - high 150 ms, low 150 ms (all time high 150 ms)\n" + "-" * 80 + "\n"
        " \n \n \n_\n \n0\ns\n")
    assert monitor.graph("nosuch") is None


def test_graph_wider_than_80_columns_is_cut_in_blocks():
    drawing = render_sparkline(list(range(100)), ["%ds" % (99 - i) for i in range(100)])
    lines = drawing.split("\n")
    # each block: 4 chart rows, a blank row, 3 label rows ("99s" is the longest)
    assert [len(line) for line in lines[:8]] == [80] * 8
    assert [len(line) for line in lines[8:16]] == [20] * 5 + [20, 20, 20]
    assert lines[16] == ""


def test_doctor_says_when_nothing_was_seen_and_explains_spikes():
    server = _server()
    monitor = server.latency_monitor
    text = monitor.doctor()
    assert "No latency spikes" in text and "disabled" in text
    server.settings.set("latency-monitor-threshold", ["50"])
    assert "disabled" not in monitor.doctor()
    monitor.add("fork", 80)
    text = monitor.doctor()
    assert "1. fork: 1 spike recorded" in text and "worst ever 80 ms" in text
    assert "fork()" in text  # the advice for that event
