"""`hakv up` / `hakv status`: a whole local topology (3 hakv nodes, 3 hakv
sentinels) from the operator's tool."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from hakv.lab.topology import Topology, free_port_run
from sentinel_support import wait_until


def _hakv(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hakv.lab.cli", *args], capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture
def topo_dir(tmp_path):
    """Where `hakv up` puts its topology; whatever it left running is stopped."""
    path = str(tmp_path / "topo")
    yield path
    if os.path.exists(os.path.join(path, "topology.json")):
        Topology.load(path).stop_all()


def _rows(table: str, prefix: str) -> list[list[str]]:
    return [line.split() for line in table.splitlines() if line.startswith(prefix)]


def test_hakv_up_once_prints_the_table_and_stops_everything(topo_dir):
    port, sport = free_port_run(3), free_port_run(3)
    run = _hakv("up", "--once", "--dir", topo_dir, "--port", str(port), "--sentinel-port", str(sport))
    assert run.returncode == 0, run.stdout + run.stderr
    nodes, sentinels = _rows(run.stdout, "node"), _rows(run.stdout, "sentinel")
    assert [r[1] for r in nodes] == [str(port + i) for i in range(3)]
    assert nodes[0][2] == "master" and {r[2] for r in nodes[1:]} == {"slave"}
    assert [r[1] for r in sentinels] == [str(sport + i) for i in range(3)]
    assert all(r[2] == f"127.0.0.1:{port}" for r in sentinels)
    topo = Topology.load(topo_dir)
    assert all(m.pid == 0 for m in topo.members)  # stopped on the way out
    for m in topo.members:
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", m.port)) != 0, f"{m.name} still listening"


def test_hakv_up_keep_then_status_shows_the_sentinels_agreeing(topo_dir):
    port, sport = free_port_run(3), free_port_run(3)
    run = _hakv("up", "--once", "--keep", "--dir", topo_dir, "--port", str(port),
                "--sentinel-port", str(sport))
    assert run.returncode == 0, run.stdout + run.stderr

    def settled():
        status = _hakv("status", "--dir", topo_dir, timeout=20)
        assert status.returncode == 0, status.stderr
        sentinels = _rows(status.stdout, "sentinel")
        # every sentinel: same primary, 2 replicas, 3 sentinels in all
        ok = len(sentinels) == 3 and all(
            r[2] == f"127.0.0.1:{port}" and r[-2] == "2" and r[-1] == "3" for r in sentinels)
        return status.stdout if ok else None
    table = wait_until(settled, 30, "hakv status to show a settled topology")
    assert [r[2] for r in _rows(table, "node")] == ["master", "slave", "slave"]
    assert "link up" in table
    missing = _hakv("status", "--dir", os.path.join(topo_dir, "nowhere"))
    assert missing.returncode == 1 and "no topology" in missing.stderr
