"""hakv-sentinel as a process: its RESP server, its links to the nodes, its
config file, its signals. Failovers are in tests/faults/test_failover.py."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import redis

from procs import free_port, hakv_server
from sentinel_support import MASTER, ha, kill, sentinel_conf, sentinel_proc, wait_until  # noqa: F401
from hakv.sentinel.config import load_config


@pytest.fixture
def lone(tmp_path):
    """start(node_args=(), extra=(), quorum=1) -> (node, sentinel): one hakv
    node watched by one hakv sentinel."""
    procs = []

    def start(node_args=(), extra=(), quorum=1, down_after=1000, password=None):
        node = hakv_server(str(tmp_path / "node"), None, *node_args, password=password)
        procs.append(node)
        node.start()
        port = free_port()
        workdir = str(tmp_path / "sentinel")
        text = sentinel_conf(port, workdir, node.port, quorum=quorum, down_after=down_after,
                             failover_timeout=10000, extra=tuple(extra))
        sentinel = sentinel_proc("hakv", workdir, port, text)
        procs.append(sentinel)
        return node, sentinel

    yield start
    for proc in procs:
        proc.stop()


def _conf(sentinel) -> str:
    with open(sentinel.conf_path) as fh:
        return fh.read()


def test_monitors_a_node_and_answers_clients(lone):
    node, sentinel = lone()
    sentinel.start()
    c = sentinel.client()
    run_id = node.client().info("server")["run_id"]
    # the link works: INFO gave the run id, PINGs keep it up
    wait_until(lambda: c.sentinel_master(MASTER)["runid"] == run_id, 5, "the master's INFO")
    master = c.sentinel_master(MASTER)
    assert master["flags"] == "master" and master["port"] == node.port
    assert c.sentinel_get_master_addr_by_name(MASTER) == (b"127.0.0.1", node.port)
    assert c.execute_command("ROLE") == [b"sentinel", [MASTER.encode()]]
    info = c.info()
    assert info["redis_mode"] == "sentinel" and info["sentinel_masters"] == 1
    assert info["master0"]["status"] == "ok"
    assert "used_memory" not in info  # no memory section on a sentinel
    with pytest.raises(redis.ResponseError, match="(?i)unknown command 'get'"):
        c.get("x")
    with pytest.raises(redis.ResponseError, match="Only HELLO messages"):
        c.publish("chan", "x")
    # the node sees the sentinel's two named connections
    names = [cl["name"] for cl in node.client().client_list()]
    assert sum(n.startswith("sentinel-") and n.endswith("-cmd") for n in names) == 1
    assert sum(n.startswith("sentinel-") and n.endswith("-pubsub") for n in names) == 1
    # RESP3 (HELLO 3), as redis-py sends with protocol=3
    c3 = sentinel.client(protocol=3)
    assert c3.sentinel_master(MASTER)["port"] == node.port
    assert c3.execute_command("HELLO", "3")[b"mode"] == b"sentinel"


def test_config_flushed_before_the_reply_and_on_sigterm(lone):
    _, sentinel = lone()
    sentinel.start()
    c = sentinel.client()
    myid = c.execute_command("SENTINEL", "MYID").decode()
    assert f"sentinel myid {myid}" in _conf(sentinel)  # saved at start
    assert c.sentinel_set(MASTER, "down-after-milliseconds", 4321)
    # no waiting: the file was rewritten before the reply was sent
    assert f"sentinel down-after-milliseconds {MASTER} 4321" in _conf(sentinel)
    # a failed save is reported to the client and logged, and nothing else breaks
    saved = _conf(sentinel)
    os.unlink(sentinel.conf_path)
    os.mkdir(sentinel.conf_path)
    with pytest.raises(redis.ResponseError, match="Failed to save config file. Check server logs."):
        c.execute_command("SENTINEL", "FLUSHCONFIG")
    assert "Sentinel was not able to save the new configuration on disk" in sentinel.output()
    os.rmdir(sentinel.conf_path)
    with open(sentinel.conf_path, "w") as fh:
        fh.write(saved)
    started = time.monotonic()
    sentinel.proc.send_signal(signal.SIGTERM)
    assert sentinel.proc.wait(5) == 0
    assert time.monotonic() - started < 2
    assert "Sentinel is now ready to exit, bye bye..." in sentinel.output()
    cfg = load_config(sentinel.conf_path)
    assert cfg.myid == myid and cfg.masters[0].down_after_ms == 4321


def test_requirepass_and_auth_pass(lone):
    secret = "s3cret"
    node, sentinel = lone(node_args=("--requirepass", secret), password=secret,
                          extra=(f"requirepass {secret}", f"sentinel auth-pass {MASTER} {secret}"))
    sentinel.password = secret
    sentinel.start()
    anonymous = redis.Redis(port=sentinel.port, socket_timeout=5, retry=None)
    with pytest.raises(redis.AuthenticationError):
        anonymous.ping()
    c = sentinel.client()
    run_id = node.client().info("server")["run_id"]
    # authenticated to the node: INFO answered, no s_down
    wait_until(lambda: c.sentinel_master(MASTER)["runid"] == run_id, 5, "INFO through AUTH")
    time.sleep(1.5)
    assert c.sentinel_master(MASTER)["flags"] == "master"


def test_events_on_pubsub_and_failover_abort_without_replicas(lone, tmp_path):
    events = tmp_path / "events"
    script = tmp_path / "notify.sh"
    script.write_text(f'#!/bin/sh\necho "$@" >> {events}\n')
    script.chmod(0o755)
    node, sentinel = lone(extra=(f"sentinel notification-script {MASTER} {script}",))
    sentinel.start()
    c = sentinel.client()
    wait_until(lambda: c.sentinel_master(MASTER)["runid"], 5, "the master's INFO")
    pubsub = c.pubsub()
    pubsub.psubscribe("*")
    kill(node)
    seen: dict[str, str] = {}

    def collect():
        while (msg := pubsub.get_message(timeout=0.1)) is not None:
            if msg["type"] == "pmessage":
                seen.setdefault(msg["channel"].decode(), msg["data"].decode())
        return "-failover-abort-no-good-slave" in seen
    wait_until(collect, 10, "the failover attempt's events")
    assert seen["+sdown"] == f"master {MASTER} 127.0.0.1 {node.port}"
    assert seen["+odown"] == f"master {MASTER} 127.0.0.1 {node.port} #quorum 1/1"
    assert seen["+try-failover"] == f"master {MASTER} 127.0.0.1 {node.port}"
    pubsub.close()
    # the notification script ran for the warning-level events: <type> <message>
    wait_until(lambda: events.exists() and "-failover-abort-no-good-slave" in events.read_text(), 5,
               "the notification script")
    assert f"+sdown master {MASTER} 127.0.0.1 {node.port}" in events.read_text().splitlines()


def test_pubsub_link_is_reopened_quietly(lone):
    """CLIENT KILL TYPE pubsub (what a failover leader sends) drops only the
    sentinel's pub/sub connection; it comes back within ~1 s and the
    command connection is untouched."""
    node, sentinel = lone()
    sentinel.start()
    n = node.client()

    def sentinel_clients():
        return {cl["name"]: cl["id"] for cl in n.client_list() if cl["name"].startswith("sentinel-")}
    wait_until(lambda: len(sentinel_clients()) == 2, 5, "both sentinel connections")
    before = sentinel_clients()
    assert n.client_kill_filter(_type="pubsub") == 1
    wait_until(lambda: len(sentinel_clients()) == 2, 3, "the pub/sub connection to come back")
    after = sentinel_clients()
    cmd_name = next(name for name in before if name.endswith("-cmd"))
    pubsub_name = next(name for name in before if name.endswith("-pubsub"))
    assert after[cmd_name] == before[cmd_name]
    assert after[pubsub_name] != before[pubsub_name]
    assert n.pubsub_numsub("__sentinel__:hello")[0][1] == 1
    assert "-cmd-link" not in sentinel.output()
    time.sleep(1.2)
    assert "s_down" not in sentinel.client().sentinel_master(MASTER)["flags"]


def test_restart_keeps_id_epochs_and_known_instances(ha):
    topo = ha()
    topo.wait_discovery()
    s0 = topo.sentinels[0]
    myid = s0.client().execute_command("SENTINEL", "MYID")
    # a failover bumps the epochs that must survive the restart
    assert topo.sentinels[1].client().sentinel_failover(MASTER)
    new = topo.wait_new_master(topo.nodes[0].port)
    wait_until(lambda: s0.client().sentinel_master(MASTER)["config-epoch"] >= 1, 5, "the new epoch")
    epoch = s0.client().sentinel_master(MASTER)["config-epoch"]
    s0.stop()
    cfg = load_config(s0.conf_path)
    assert cfg.myid == myid.decode() and cfg.current_epoch >= epoch
    assert cfg.masters[0].port == new.port and cfg.masters[0].config_epoch == epoch
    assert len(cfg.masters[0].known_replicas) == 2 and len(cfg.masters[0].known_sentinels) == 2
    s0.start()
    c = s0.client()
    # right after the restart, before any hello or INFO: everything from the file
    assert c.execute_command("SENTINEL", "MYID") == myid
    master = c.sentinel_master(MASTER)
    assert master["port"] == new.port and master["config-epoch"] == epoch
    assert master["num-slaves"] == 2 and master["num-other-sentinels"] == 2
    # and the peers still know it under the same ID
    peers = topo.sentinels[1].client().sentinel_sentinels(MASTER)
    assert myid.decode() in {p["runid"] for p in peers}


def test_command_line_and_bad_config(tmp_path):
    conf = tmp_path / "s.conf"
    port = free_port()
    conf.write_text("sentinel monitor m 127.0.0.1 6379 0\n")
    run = subprocess.run([sys.executable, "-m", "hakv.sentinel.main", str(conf), "--port", str(port)],
                         capture_output=True, text=True, timeout=20)
    assert run.returncode == 1
    assert "FATAL CONFIG FILE ERROR" in run.stderr and "Quorum must be 1 or greater." in run.stderr
    run = subprocess.run([sys.executable, "-m", "hakv.sentinel.main"], capture_output=True, text=True,
                         timeout=20)
    assert run.returncode == 1 and "Sentinel needs config file on disk to save state. Exiting..." in run.stdout
    run = subprocess.run([sys.executable, "-m", "hakv.sentinel.main", str(tmp_path / "missing.conf")],
                         capture_output=True, text=True, timeout=20)
    assert run.returncode == 1 and "Fatal error, can't open config file" in run.stdout
    # --port overrides the file, and is written back into it
    conf.write_text("port 1\nsentinel monitor m 127.0.0.1 6379 1\n")
    proc = subprocess.Popen([sys.executable, "-m", "hakv.sentinel.main", str(conf), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: redis.Redis(port=port, socket_timeout=1).ping(), 10, "the sentinel")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    assert f"port {port}" in conf.read_text()
    assert os.path.exists(conf)
