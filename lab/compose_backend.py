"""The fault backend for the Docker Compose demo (compose.yaml), through the docker SDK.

    backend = ComposeBackend("hakv")          # the compose project name (-p)
    backend.kill("node1")                     # docker kill
    backend.primary()                         # what the sentinels say now

Members are the project's containers whose service runs `node` or `sentinel`
(compose.yaml: node1..3, sentinel1..3), found by the labels compose puts on
them, so nothing here depends on file paths or on how the project was started.

Addresses: inside the compose network every member is known by its service
name and container port (node1:6379, sentinel1:26379): that is what the members
announce and what the sentinels report (`announced_address`). A client on the
host reaches a member through its published port on 127.0.0.1 (`address`), so a
host client that asks a sentinel must translate the answer: `host_address`.

The verbs:
  kill       docker kill (SIGKILL); the service name stops resolving
  stop/cont  docker pause / unpause (the cgroup freezer: sockets stay open, no answers)
  restart    start the container again (killed first if running): same volume,
             same config, new IP and a new published host port
  partition  disconnect the container from every network of the project: peers get
             gaierror for new lookups, established connections hang (no RST), the
             published port stops reaching it
  heal       connect it back to the project's networks, with its service name as alias

The docker SDK (`pip install docker`) is needed only here; it is imported when a
backend is made, so the rest of hakv.lab works without it.
"""

from __future__ import annotations

import os
import re
import tempfile
import time

from hakv.lab.faults import FaultBackend, FaultError

NODE_PORT = 6379
SENTINEL_PORT = 26379
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
ONEOFF_LABEL = "com.docker.compose.oneoff"
#: how long a listing of the project's containers is reused (address lookups are hot)
CACHE_SECONDS = 0.5


def docker_client():
    """A docker SDK client from the environment (DOCKER_HOST or the local socket);
    FaultError with a readable reason when there is no SDK or no engine."""
    try:
        import docker
    except ImportError:
        raise FaultError("the compose backend needs the docker SDK: pip install docker")
    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # the SDK raises several unrelated types here
        raise FaultError("no Docker engine reachable: %s" % exc)
    return client


def _natural(name: str):
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def default_fault_log(project: str) -> str:
    """Where `hakv fault --compose P` and `hakv watch --compose P` meet."""
    return os.environ.get("HAKV_FAULT_LOG") or os.path.join(
        tempfile.gettempdir(), "hakv-compose-%s.faults.jsonl" % project)


class ComposeBackend(FaultBackend):
    def __init__(self, project: str, *, master_name: str | None = None,
                 fault_log_path: str | None = None, client=None):
        self.project = project
        self.docker = client if client is not None else docker_client()
        self.fault_log_path = fault_log_path or default_fault_log(project)
        self._listed_at = 0.0
        self._containers: dict = {}
        self._published: dict[str, tuple[str, int]] = {}
        self._effect_at: float | None = None
        if not self._members():
            raise FaultError("no hakv containers in compose project %r (docker compose -p %s "
                             "up --wait starts them)" % (project, project))
        self.master_name = master_name or self._env("HAKV_MASTER_NAME") or "mymaster"

    # -- the project's containers

    def _members(self, fresh: bool = False) -> dict:
        """service name -> Container, nodes first; cached for CACHE_SECONDS."""
        if fresh or time.monotonic() - self._listed_at > CACHE_SECONDS:
            found = self.docker.containers.list(
                all=True, filters={"label": "%s=%s" % (PROJECT_LABEL, self.project)})
            members = {}
            for c in found:
                labels = c.labels or {}
                if labels.get(ONEOFF_LABEL) == "True":
                    continue
                if self._kind(c):
                    members[labels.get(SERVICE_LABEL, c.name)] = c
            order = sorted(members, key=lambda s: (self._kind(members[s]) != "node", _natural(s)))
            self._containers = {s: members[s] for s in order}
            self._listed_at = time.monotonic()
            for service, c in self._containers.items():
                addr = self._published_port(c)
                if addr:
                    self._published[service] = addr
        return self._containers

    @staticmethod
    def _kind(container) -> str:
        cmd = (container.attrs.get("Config") or {}).get("Cmd") or []
        return cmd[0] if cmd and cmd[0] in ("node", "sentinel") else ""

    def _published_port(self, container):
        port = NODE_PORT if self._kind(container) == "node" else SENTINEL_PORT
        ports = (container.attrs.get("NetworkSettings") or {}).get("Ports") or {}
        for binding in ports.get("%d/tcp" % port) or []:
            if binding.get("HostPort"):
                host = binding.get("HostIp") or "127.0.0.1"
                return ("127.0.0.1" if host in ("0.0.0.0", "") else host,
                        int(binding["HostPort"]))
        return None

    def _env(self, name: str) -> str | None:
        for c in self._members().values():
            for item in (c.attrs.get("Config") or {}).get("Env") or []:
                key, _, value = item.partition("=")
                if key == name and value:
                    return value
        return None

    def container(self, name: str):
        """The docker SDK Container of a member."""
        try:
            return self._members()[name]
        except KeyError:
            raise FaultError("no member %r in project %s (members: %s)"
                             % (name, self.project, ", ".join(self._members())))

    def _refreshed(self, name: str):
        c = self.container(name)
        c.reload()
        return c

    # -- what the topology is

    def members(self) -> list[str]:
        return list(self._members())

    def role_of(self, name: str) -> str:
        return self._kind(self.container(name))

    def address(self, name: str) -> tuple[str, int]:
        """127.0.0.1 and the published port; the last one seen while the container
        is down (a restart may publish a new one); port 0 if it was never seen up."""
        self.container(name)
        addr = self._published.get(name)
        if addr is None:
            addr = self._published_port(self._refreshed(name))
            if addr is None:
                return ("127.0.0.1", 0)
            self._published[name] = addr
        return addr

    def announced_address(self, name: str) -> tuple[str, int]:
        return (name, NODE_PORT if self.role_of(name) == "node" else SENTINEL_PORT)

    def host_address(self, host, port) -> tuple[str, int]:
        """An address a sentinel or node reports (service name or container IP, and
        container port) as a client on this host reaches it; unknown ones unchanged."""
        if isinstance(host, bytes):
            host = host.decode()
        member = self.member_at(host, port)
        if member is None:
            member = self._member_by_ip(host, int(port))
        return self.address(member) if member else (host, int(port))

    def _member_by_ip(self, ip: str, port: int) -> str | None:
        for service, c in self._members().items():
            nets = (c.attrs.get("NetworkSettings") or {}).get("Networks") or {}
            if any(n.get("IPAddress") == ip for n in nets.values()) \
                    and self.announced_address(service)[1] == port:
                return service
        return None

    def partitioned(self) -> set[str]:
        wanted = set(self._project_networks())
        out = set()
        for service, c in self._members().items():
            if c.status not in ("running", "paused"):
                continue
            nets = set((c.attrs.get("NetworkSettings") or {}).get("Networks") or {})
            if wanted - nets:
                out.add(service)
        return out

    def _project_networks(self) -> list[str]:
        return [n.name for n in self.docker.networks.list(
            filters={"label": "%s=%s" % (PROJECT_LABEL, self.project)})]

    def close(self) -> None:
        try:
            self.docker.close()
        except Exception:
            pass

    # -- primitives

    def record(self, event) -> None:
        # `docker kill` and `network disconnect` answer only once the container has
        # exited or the endpoint is gone, 0.1-0.5 s after the fault took effect: the
        # event gets the moment the request was sent, or timelines would start late.
        if self._effect_at is not None and event.verb in ("kill", "partition"):
            event.at = self._effect_at
        self._effect_at = None
        super().record(event)

    def _do_kill(self, name: str) -> str:
        c = self._refreshed(name)
        if c.status not in ("running", "paused"):
            raise FaultError("%s is not running (%s)" % (name, c.status))
        self._effect_at = time.time()
        c.kill()
        self._listed_at = 0.0
        return "docker kill %s" % c.name

    def _do_stop(self, name: str) -> str:
        c = self._refreshed(name)
        if c.status != "running":
            raise FaultError("%s is not running (%s)" % (name, c.status))
        c.pause()
        self._listed_at = 0.0
        return "docker pause %s" % c.name

    def _do_cont(self, name: str) -> str:
        c = self._refreshed(name)
        if c.status != "paused":
            raise FaultError("%s is not paused (%s)" % (name, c.status))
        c.unpause()
        self._listed_at = 0.0
        return "docker unpause %s" % c.name

    def _do_restart(self, name: str) -> str:
        c = self._refreshed(name)
        was = ""
        if c.status == "paused":
            c.unpause()
        if c.status in ("running", "paused", "restarting"):
            c.kill()
            c.wait(timeout=10)
            was = "was running, killed first; "
        started = time.time()
        c.start()
        c.reload()
        addr = self._published_port(c)
        if addr:
            self._published[name] = addr
        self._listed_at = 0.0
        return "%sdocker start %s (published on %s after %d ms)" % (
            was, c.name, "%s:%d" % addr if addr else "?", (time.time() - started) * 1000)

    def _do_partition(self, name: str) -> str:
        c = self._refreshed(name)
        nets = list((c.attrs.get("NetworkSettings") or {}).get("Networks") or {})
        if not nets:
            raise FaultError("%s is on no network (already partitioned?)" % name)
        # Keep the last published port: a disconnected container loses its mapping.
        self.address(name)
        self._effect_at = time.time()
        for net in nets:
            self.docker.networks.get(net).disconnect(c)
        self._listed_at = 0.0
        return "docker network disconnect %s %s" % (" ".join(nets), c.name)

    def _do_heal(self, name: str) -> str:
        c = self._refreshed(name)
        attached = set((c.attrs.get("NetworkSettings") or {}).get("Networks") or {})
        missing = [n for n in self._project_networks() if n not in attached]
        if not missing:
            raise FaultError("%s is not partitioned" % name)
        for net in missing:
            # Without the alias the service name would stay gone from the network's DNS.
            self.docker.networks.get(net).connect(c, aliases=[name, c.name])
        c.reload()
        addr = self._published_port(c)
        if addr:
            self._published[name] = addr
        self._listed_at = 0.0
        return "docker network connect --alias %s %s %s" % (name, " ".join(missing), c.name)
