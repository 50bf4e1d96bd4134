"""Driving the compose demo (compose.yaml) from tests: the docker CLI for compose
itself, the docker SDK (through hakv.lab.compose_backend) for faults and lookups.

Every project gets a unique name (-p), publishes only ephemeral host ports, and is
removed with `down -v` by the fixture that made it.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable

import redis
from redis.sentinel import Sentinel

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MASTER = "mymaster"
#: the image every test project uses, built once per session
TEST_IMAGE = "hakv:compose-test"
PROJECT_LABEL = "com.docker.compose.project"
TIMINGS: dict[str, list[float]] = {}


def record(what: str, seconds: float) -> None:
    TIMINGS.setdefault(what, []).append(seconds)


def unavailable_reason() -> str | None:
    """Why the compose tests cannot run here, or None."""
    if shutil.which("docker") is None:
        return "no docker CLI (../shared/ci/docker-engine.sh installs the engine)"
    if importlib.util.find_spec("docker") is None:
        return "the docker SDK is not installed (pip install -e '.[test]')"
    try:
        info = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"],
                              capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return "docker info failed: %s" % exc
    if info.returncode != 0 or not info.stdout.strip():
        return "no Docker engine reachable (%s)" % (info.stderr.strip().splitlines() or ["?"])[-1]
    version = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
    if version.returncode != 0:
        return "no docker compose plugin"
    return None


def base_image() -> str:
    """BASE_IMAGE as ./run test exports it; else the local base image when present
    (no registry here), else the public default."""
    if os.environ.get("BASE_IMAGE"):
        return os.environ["BASE_IMAGE"]
    probe = subprocess.run(["docker", "image", "inspect", "hakv-base:bookworm"],
                           capture_output=True)
    return "hakv-base:bookworm" if probe.returncode == 0 else "python:3.12-slim"


def compose_env(**extra: str) -> dict:
    env = dict(os.environ)
    env["BASE_IMAGE"] = base_image()
    env["HAKV_IMAGE"] = TEST_IMAGE
    # Fixed host ports would clash between runs: leave them ephemeral.
    for key in list(env):
        if key.startswith("HAKV_") and key.endswith("_PORT"):
            del env[key]
    env.update(extra)
    return env


def compose(project: str, *args: str, timeout: float = 300, check: bool = True,
            env: dict | None = None) -> subprocess.CompletedProcess:
    argv = ["docker", "compose", "-f", os.path.join(REPO, "compose.yaml"), "-p", project, *args]
    proc = subprocess.run(argv, cwd=REPO, env=env or compose_env(), capture_output=True,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError("%s -> rc %d\nstdout:\n%s\nstderr:\n%s" % (
            " ".join(argv), proc.returncode, proc.stdout[-4000:], proc.stderr[-4000:]))
    return proc


def new_project_name() -> str:
    return "hakvt%s" % uuid.uuid4().hex[:10]


def wait_until(predicate: Callable[[], object], timeout: float, what: str,
               interval: float = 0.1, diagnose: Callable[[], str] | None = None):
    """Poll until predicate() is truthy (returned); connection errors mean "not yet"."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except (redis.exceptions.RedisError, OSError) as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %ss waiting for %s (last error: %r)\n%s"
                                 % (timeout, what, last, diagnose() if diagnose else ""))
        time.sleep(interval)


class PublishedSentinel(Sentinel):
    """redis-py's Sentinel for a client on the docker host: the sentinels answer with
    service names (node2, 6379), which only resolve inside the compose network, so
    every address they give is translated to the published port on 127.0.0.1."""

    def __init__(self, backend, **kw):
        kw.setdefault("socket_timeout", 0.5)
        super().__init__(backend.sentinel_addresses(), **kw)
        self.backend = backend

    def discover_master(self, service_name):
        return self.backend.host_address(*super().discover_master(service_name))

    def discover_slaves(self, service_name):
        return [self.backend.host_address(*a) for a in super().discover_slaves(service_name)]


class Project:
    """One running compose project of the demo."""

    def __init__(self, name: str, backend):
        self.name = name
        self.backend = backend

    def compose(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return compose(self.name, *args, **kw)

    # -- looking

    def node(self, member: str, **kw) -> redis.Redis:
        host, port = self.backend.address(member)
        kw.setdefault("socket_timeout", 2)
        kw.setdefault("socket_connect_timeout", 2)
        return redis.Redis(host, port, **kw)

    def sentinel(self, member: str) -> redis.Redis:
        return self.node(member)

    def live_sentinels(self) -> list[str]:
        return [s for s in self.backend.sentinels()
                if self.backend.container(s).status == "running"]

    def primary_seen_by(self, sentinel: str) -> str | None:
        reply = self.sentinel(sentinel).sentinel_get_master_addr_by_name(MASTER)
        return self.backend.member_at(*reply) if reply else None

    def agreed_primary(self, exclude: str | None = None) -> str | None:
        """The node every live sentinel names, if they agree, it is not `exclude`,
        and it says it is a master."""
        seen = {self.primary_seen_by(s) for s in self.live_sentinels()}
        if len(seen) != 1:
            return None
        member = seen.pop()
        if member is None or member == exclude:
            return None
        return member if self.node(member).info("replication")["role"] == "master" else None

    def wait_primary(self, exclude: str | None = None, timeout: float = 30) -> str:
        return wait_until(lambda: self.agreed_primary(exclude), timeout,
                          "the sentinels to agree on a primary other than %s" % exclude,
                          diagnose=self.diagnose)

    def wait_replica_of(self, member: str, primary: str, timeout: float = 40) -> None:
        def following():
            info = self.node(member).info("replication")
            return (info["role"] == "slave" and info.get("master_host") == primary
                    and info.get("master_link_status") == "up"
                    and not int(info.get("master_sync_in_progress", 0)))
        wait_until(following, timeout, "%s to replicate from %s" % (member, primary),
                   interval=0.2, diagnose=self.diagnose)

    def dataset(self, member: str) -> dict:
        c = self.node(member, socket_timeout=5)
        keys = sorted(c.scan_iter(count=1000))
        return dict(zip(keys, c.mget(keys))) if keys else {}

    def exec_call(self, member: str, *args: str):
        """One command sent from inside the member's container (its loopback), so it
        reaches a partitioned or otherwise unreachable member: (ok, reply text)."""
        script = ("import sys\nfrom hakv.lab.rpc import call, RpcError\n"
                  "try:\n    print('OK', call('127.0.0.1', %d, *sys.argv[1:]))\n"
                  "except RpcError as exc:\n    print('ERR', exc)\n"
                  % self.backend.announced_address(member)[1])
        rc, out = self.backend.container(member).exec_run(["python", "-c", script, *args])
        text = out.decode().strip()
        assert rc == 0, text
        status, _, rest = text.partition(" ")
        return status == "OK", rest

    def run_client(self, script: str, timeout: float = 60) -> str:
        """Run a Python script in a new container of the image on the project's
        network (a client next to the members, reaching them by service name);
        returns its output, fails on a non-zero exit."""
        client = self.backend.docker
        network = "%s_default" % self.name
        c = client.containers.run(TEST_IMAGE, ["python", "-c", script], network=network,
                                  detach=True, labels={PROJECT_LABEL: self.name,
                                                       "com.docker.compose.oneoff": "True"})
        try:
            status = c.wait(timeout=timeout)
            out = c.logs().decode()
        finally:
            c.remove(force=True, v=True)
        assert status.get("StatusCode") == 0, out
        return out

    def diagnose(self) -> str:
        lines = []
        for member in self.backend.members():
            c = self.backend.container(member)
            c.reload()
            tail = c.logs(tail=25).decode(errors="replace")
            lines.append("----- %s (%s) -----\n%s" % (member, c.status, tail))
        return "\n".join(lines)


def leftovers(client, project: str) -> dict:
    """What of a project still exists: containers, networks, volumes (by label)."""
    flt = {"label": "%s=%s" % (PROJECT_LABEL, project)}
    return {
        "containers": [c.name for c in client.containers.list(all=True, filters=flt)],
        "networks": [n.name for n in client.networks.list(filters=flt)],
        "volumes": [v.name for v in client.volumes.list(filters=flt)],
    }
