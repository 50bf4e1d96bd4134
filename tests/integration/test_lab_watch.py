"""`hakv watch`: the live timeline and the failover report, checked against what
the test observes on its own (its own sentinel subscriptions and its own
redis-py Sentinel writer)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET

import pytest
import redis

from sentinel_support import MASTER, wait_until
from test_lab_fault import fault, sentinel_client, start_topology, topo_path  # noqa: F401

pytestmark = pytest.mark.slow


class OwnEyes:
    """The test's own observers: every sentinel's +sdown / +switch-master times
    (redis-py pub/sub), and a Sentinel-client writer's successful writes."""

    def __init__(self, backend):
        self.backend = backend
        self.events: list[tuple[float, str, str, str]] = []  # (t, sentinel, channel, data)
        self.oks: list[tuple[float, tuple]] = []              # (t, master address)
        self._stop = threading.Event()
        self._threads = []
        for s in backend.sentinels():
            ps = redis.Redis(*backend.observe_address(s), socket_timeout=None).pubsub()
            ps.psubscribe("*")
            ps.get_message(timeout=2)  # the subscription confirmation
            self._threads.append(threading.Thread(target=self._listen, args=(s, ps), daemon=True))
        self._threads.append(threading.Thread(target=self._write, daemon=True))
        for t in self._threads:
            t.start()

    def _listen(self, name, ps) -> None:
        while not self._stop.is_set():
            msg = ps.get_message(timeout=0.1)
            if msg and msg["type"] == "pmessage":
                self.events.append((time.time(), name, msg["channel"].decode(),
                                    msg["data"].decode()))
        ps.close()

    def _write(self) -> None:
        sentinel = sentinel_client(self.backend)
        master = sentinel.master_for(MASTER, socket_timeout=0.3, socket_connect_timeout=0.3)
        i = 0
        while not self._stop.is_set():
            try:
                master.set("own%d" % i, i)
                addr = master.connection_pool.get_master_address()
                self.oks.append((time.time(), tuple(addr)))
                i += 1
            except redis.exceptions.RedisError:
                pass
            time.sleep(0.01)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(5)

    def first(self, channel: str, about: str) -> float | None:
        times = [t for t, _, ch, data in self.events if ch == channel and data.startswith(about)]
        return min(times) if times else None


def run_watch(path: str, out_dir: str, *extra: str) -> tuple[subprocess.Popen, str]:
    ready = os.path.join(out_dir, "ready")
    proc = subprocess.Popen(
        [sys.executable, "-m", "hakv.lab.cli", "watch", "--dir", path, "--timeout", "60",
         "--svg", os.path.join(out_dir, "report.svg"), "--json",
         os.path.join(out_dir, "report.json"), "--ready-file", ready, *extra],
        stdout=open(os.path.join(out_dir, "watch.out"), "w"), stderr=subprocess.STDOUT,
        start_new_session=True)
    wait_until(lambda: os.path.exists(ready) or proc.poll() is not None, 30, "watch to start")
    assert proc.poll() is None, open(os.path.join(out_dir, "watch.out")).read()
    return proc, os.path.join(out_dir, "watch.out")


def finish(proc: subprocess.Popen, timeout: float = 60) -> None:
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()
        proc.wait(10)
        raise


def test_watch_reports_a_kill_failover_as_the_test_saw_it(topo_path, tmp_path):  # noqa: F811
    backend = start_topology(topo_path)
    eyes = OwnEyes(backend)
    proc, out_path = run_watch(topo_path, str(tmp_path))
    try:
        wait_until(lambda: len(eyes.oks) > 20, 10, "the test's own writes")
        time.sleep(1.2)  # the probe writes on the old primary for a while
        before = time.time()
        fault(topo_path, "kill", "primary")
        after = time.time()
        finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        eyes.stop()
    out = open(out_path).read()
    assert proc.returncode == 0, out
    report = json.load(open(tmp_path / "report.json"))

    # the fault, from the fault log, placed where the test injected it
    assert report["fault"]["verb"] == "kill" and report["fault"]["member"] == "node1"
    assert before <= report["fault"]["at"] <= after
    assert report["initial_primary"] == "node1"
    new = report["new_primary"]
    assert new in ("node2", "node3")

    # detection: the first +sdown of node1, as the test's own subscriptions saw it
    own_sdown = eyes.first("+sdown", "master ")
    assert own_sdown is not None
    assert abs(report["first_sdown_at"] - own_sdown) < 0.25
    assert abs(report["detection_s"] - (own_sdown - report["fault"]["at"])) < 0.25
    assert 0 < report["detection_s"] < 3.0        # down-after is 1 s
    own_switch = eyes.first("+switch-master", MASTER)
    assert abs(report["switch_at"] - own_switch) < 0.25
    # the election and promotion are on the timeline, in order
    order = [report["first_sdown_at"], report["odown_at"], report["elected_at"],
             report["promoted_at"], report["switch_at"]]
    assert all(order) and order == sorted(order), order
    assert report["votes"] and report["leader"]

    # first write on the new primary: the test's own writer saw about the same moment
    new_addr = tuple(backend.address(new))
    own_first = min(t for t, addr in eyes.oks if addr == new_addr and t > report["fault"]["at"])
    assert abs(report["first_write_new_at"] - own_first) < 1.0
    assert report["first_write_new_at"] >= report["promoted_at"] - 0.05
    assert report["unavailable_s"] > 0 and report["first_write_s"] > report["detection_s"]

    # no WAIT-confirmed write lost (SIGKILL of a primary whose replicas acked them)
    assert report["checked_on"] == new
    assert report["lost_wait"] == []
    assert report["acked_old_wait"] > 5 and report["acked_old_nowait"] > 5
    assert report["writes_acked"] > 20
    # the other replica resynced from the new primary
    assert sum(r["partial"] + r["full"] for r in report["resyncs"].values()) >= 1

    # the live timeline and the text report
    for word in ("+sdown", "+odown", "+vote-for-leader", "+elected-leader", "+promoted-slave",
                 "+switch-master", "kill node1", "failover report", "resyncs served"):
        assert word in out, word
    # the SVG is one well-formed, self-contained document
    svg = open(tmp_path / "report.svg").read()
    root = ET.fromstring(svg.split("\n", 1)[1])
    assert root.tag.endswith("svg")
    assert "+switch-master" in svg and "href" not in svg and "<script" not in svg


def test_watch_reports_a_pause_failover(topo_path, tmp_path):  # noqa: F811
    start_topology(topo_path)
    proc, out_path = run_watch(topo_path, str(tmp_path), "--settle", "1")
    try:
        time.sleep(1.0)
        fault(topo_path, "stop", "primary")
        # the watch ends once the new primary took writes; thaw the old one meanwhile
        wait_until(lambda: "failover complete" in open(out_path).read(), 30, "the failover")
        fault(topo_path, "cont", "node1")
        finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = open(out_path).read()
    report = json.load(open(tmp_path / "report.json"))
    assert report["fault"]["verb"] == "stop"
    assert report["new_primary"] in ("node2", "node3")
    assert report["lost_wait"] == []
    assert report["detection_s"] is not None and report["detection_s"] < 3.0
    assert "fault -> first write on the new primary" in out
    # a frozen primary: the probe saw errors (timeouts), then writes on the new primary
    assert report["writes_failed"] >= 1
