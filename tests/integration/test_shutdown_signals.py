"""shutdown-on-sigterm / shutdown-on-sigint: real processes are signalled and
their exit code, log lines and RDB file are compared with redis-server 7.0's."""

from __future__ import annotations

import os
import signal
import time

import pytest
import redis

from procs import REDIS_SERVER, Proc, free_port, hakv_server, redis_server

KINDS = ["hakv", "redis"]


def start(kind: str, workdir, *args: str):
    workdir = str(workdir)
    os.makedirs(workdir, exist_ok=True)
    make = hakv_server if kind == "hakv" else redis_server
    if kind == "hakv":
        args = ("--dir", workdir) + args
    return make(workdir, None, *args).start()


def with_lagging_replica(tmp_path, procs, kind: str, *primary_args):
    """A primary (started with primary_args) whose online replica is then
    paused, so it stops acking, and a write the replica has not acked."""
    primary = start(kind, tmp_path / kind / "p", *primary_args)
    procs.append(primary)
    replica = start(kind, tmp_path / kind / "r", "--replicaof", "127.0.0.1",
                    str(primary.port))
    procs.append(replica)
    r = primary.client()
    deadline = time.time() + 15
    while r.info("replication").get("slave0", {}).get("state") != "online":
        assert time.time() < deadline, primary.output()
        time.sleep(0.05)
    replica.pause()
    r.set("k", "v")
    return primary, replica


def save_points(kind: str) -> list:
    # hakv takes a save point's two numbers as two arguments on its command line
    return ["--save", "3600 1"] if kind == "redis" else ["--save", "3600", "1"]


def wait_exit(proc, timeout: float = 15.0) -> int:
    return proc.proc.wait(timeout)


def wait_log(proc, text: str, timeout: float = 10.0) -> None:
    deadline = time.time() + timeout
    while text not in proc.output():
        assert time.time() < deadline, "%r not in log:\n%s" % (text, proc.output())
        time.sleep(0.05)


def outcome(kind, tmp_path, procs, sig, args) -> tuple:
    """Start a server with `args`, write a key, signal it: (exit code, RDB saved?, log)."""
    p = start(kind, tmp_path / kind, *args)
    procs.append(p)
    p.client().set("k", "v")
    p.proc.send_signal(sig)
    code = wait_exit(p)
    return code, os.path.exists(tmp_path / kind / "dump.rdb"), p.output()


SCENARIOS = [
    # (signal, directive, value, save points, RDB written?)
    (signal.SIGTERM, "shutdown-on-sigterm", "default", True, True),
    (signal.SIGTERM, "shutdown-on-sigterm", "default", False, False),
    (signal.SIGTERM, "shutdown-on-sigterm", "nosave", True, False),
    (signal.SIGTERM, "shutdown-on-sigterm", "save now", False, True),
    (signal.SIGINT, "shutdown-on-sigint", "save", False, True),
    (signal.SIGINT, "shutdown-on-sigint", "nosave force", True, False),
    (signal.SIGINT, "shutdown-on-sigterm", "nosave", True, True),  # the other signal's
]


@pytest.mark.parametrize("sig,directive,value,points,saved", SCENARIOS)
def test_signal_shutdown_flags_match_redis(tmp_path, procs, sig, directive, value, points,
                                          saved):
    args = ["--" + directive, value]
    results = {}
    for kind in KINDS:
        save = save_points(kind) if points else []
        results[kind] = outcome(kind, tmp_path, procs, sig, args + save)
    for kind, (code, wrote, log) in results.items():
        assert (code, wrote) == (0, saved), (kind, log)
        name = "SIGTERM" if sig == signal.SIGTERM else "SIGINT"
        assert "Received %s scheduling shutdown..." % name in log
        assert "User requested shutdown..." in log
        assert "Redis is now ready to exit, bye bye..." in log
        assert ("Saving the final RDB snapshot before exiting." in log) == saved
        assert ("DB saved on disk" in log) == saved


@pytest.mark.parametrize("kind", KINDS)
def test_save_error_keeps_running_unless_force(tmp_path, procs, kind):
    # The RDB's directory disappears: the signal's shutdown fails and the server
    # goes on serving; with "force" the same signal makes it exit anyway.
    data = tmp_path / kind / "data"
    data.mkdir(parents=True)
    p = start(kind, tmp_path / kind, "--dir", str(data),
              *save_points(kind))
    procs.append(p)
    r = p.client()
    r.set("k", "v")
    os.rmdir(data)
    p.proc.send_signal(signal.SIGTERM)
    wait_log(p, "Errors trying to shut down the server. Check the logs for more information.")
    assert "Error trying to save the DB, can't exit." in p.output()
    assert r.ping() and p.alive()
    assert r.config_set("shutdown-on-sigterm", "force")
    p.proc.send_signal(signal.SIGTERM)
    assert wait_exit(p) == 0
    assert p.output().endswith("Redis is now ready to exit, bye bye...\n")


@pytest.mark.parametrize("kind", KINDS)
def test_second_sigint_while_waiting_for_replicas_exits_now(tmp_path, procs, kind):
    primary, replica = with_lagging_replica(tmp_path, procs, kind, "--shutdown-on-sigint", "save",
                                            "--shutdown-timeout", "60")
    primary.proc.send_signal(signal.SIGINT)
    wait_log(primary, "Waiting for replicas before shutting down.")
    assert primary.alive()
    # A SIGTERM meanwhile only says so; the waiting shutdown goes on.
    primary.proc.send_signal(signal.SIGTERM)
    wait_log(primary, "Received SIGTERM scheduling shutdown...")
    time.sleep(0.3)
    assert primary.alive()
    primary.proc.send_signal(signal.SIGINT)
    assert wait_exit(primary) == 1  # not a clean shutdown
    log = primary.output()
    assert log.rstrip().endswith("You insist... exiting now.")
    assert "bye bye" not in log
    assert not os.path.exists(tmp_path / kind / "p" / "dump.rdb")  # exited before saving
    replica.resume()


@pytest.mark.parametrize("kind", KINDS)
def test_shutdown_abort_then_sigint_is_a_fresh_shutdown(tmp_path, procs, kind):
    # SHUTDOWN ABORT cancels the signal's shutdown: the next SIGINT starts a new
    # one (it waits again) instead of exiting at once.
    primary, replica = with_lagging_replica(tmp_path, procs, kind, "--shutdown-timeout", "60")
    r = primary.client()
    primary.proc.send_signal(signal.SIGINT)
    wait_log(primary, "Waiting for replicas before shutting down.")
    assert r.execute_command("SHUTDOWN", "ABORT") in (b"OK", True)
    primary.proc.send_signal(signal.SIGINT)
    deadline = time.time() + 10
    while primary.output().count("Waiting for replicas before shutting down.") < 2:
        assert time.time() < deadline, primary.output()
        time.sleep(0.05)
    assert primary.alive() and "You insist" not in primary.output()
    replica.resume()  # it catches up: the primary exits cleanly
    assert wait_exit(primary) == 0
    assert "Redis is now ready to exit, bye bye..." in primary.output()


CONFIG_VALUES = ["nosave force", "force nosave", "default", "default nosave", "NOSAVE",
                 "save now force", "now", "save nosave", "bogus", "nosave bogus"]


def test_config_set_get_match_redis(tmp_path, procs):
    clients = {}
    for kind in KINDS:
        p = start(kind, tmp_path / kind)
        procs.append(p)
        clients[kind] = p.client()

    def attempt(r, directive, value):
        try:
            r.config_set(directive, value)
            ok = "OK"
        except redis.ResponseError as exc:
            ok = str(exc)
        return ok, r.config_get(directive)

    for directive in ("shutdown-on-sigint", "shutdown-on-sigterm"):
        for value in CONFIG_VALUES:
            got = {kind: attempt(r, directive, value) for kind, r in clients.items()}
            assert got["hakv"] == got["redis"], (directive, value)


def with_config(kind: str, conf, workdir):
    """A server (not started) reading `conf`, as redis-server / hakv-server conf."""
    if kind == "hakv":
        return hakv_server(str(workdir), None, config=str(conf))
    port = free_port()
    return Proc([REDIS_SERVER, str(conf), "--port", str(port), "--bind", "127.0.0.1",
                 "--save", "", "--dir", str(workdir), "--daemonize", "no"],
                port, str(workdir), "redis")


def test_config_rewrite_writes_the_flags_like_redis(tmp_path, procs):
    lines = {}
    for kind in KINDS:
        conf = tmp_path / (kind + ".conf")
        conf.write_text("port 0\n")
        workdir = tmp_path / kind
        workdir.mkdir()
        procs.append(p := with_config(kind, conf, workdir).start())
        r = p.client()
        r.config_set("shutdown-on-sigint", "force nosave")
        r.config_set("shutdown-on-sigterm", "now")
        r.config_rewrite()
        # Redis appends new directives in its config dict's order, which is
        # seeded per process: compare the lines, not their order.
        lines[kind] = sorted(line for line in conf.read_text().splitlines()
                             if line.startswith("shutdown-on-"))
        p.stop()
    assert lines["hakv"] == lines["redis"] == ["shutdown-on-sigint nosave force",
                                               "shutdown-on-sigterm now"]
