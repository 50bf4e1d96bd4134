"""Starting and stopping real server processes for tests and benchmarks.

Every process started here is registered and stopped by its owner (a fixture
finalizer or a context manager); ports come from the kernel (bind to 0).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import redis

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port: int, proc: subprocess.Popen | None = None, timeout: float = 15.0,
               password: str | None = None) -> None:
    deadline = time.time() + timeout
    # Two parallel runs can pick the same free port: the loser exits with "address
    # in use", but its readiness ping may first reach the winner. Trust a reply only
    # from our own process (a mismatch that outlives 2 s is a wrapper process).
    foreign_until = time.time() + 2.0
    last = None
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process exited with %s" % proc.returncode)
        try:
            r = redis.Redis(port=port, password=password, socket_timeout=1)
            r.ping()
            if proc is not None and time.time() < foreign_until and _served_by_other(r, proc.pid):
                r.close()
                time.sleep(0.05)
                continue
            r.close()
            return
        except redis.exceptions.BusyLoadingError:
            return
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
            last = exc
        except redis.exceptions.ResponseError:
            return
        time.sleep(0.05)
    raise TimeoutError("port %d not ready: %r" % (port, last))


def _served_by_other(r: "redis.Redis", pid: int) -> bool:
    try:
        served = r.info("server").get("process_id")
    except redis.exceptions.RedisError:
        return False
    return served is not None and int(served) != pid


class Proc:
    """A server process: hakv-server, hakv-sentinel, redis-server ..."""

    def __init__(self, argv: list[str], port: int, workdir: str, name: str = "",
                 env: dict | None = None, password: str | None = None):
        self.argv = argv
        self.port = port
        self.workdir = workdir
        self.name = name or os.path.basename(argv[0])
        self.env = env
        self.password = password
        self.proc: subprocess.Popen | None = None
        self.log_path = os.path.join(workdir, "%s-%d.log" % (self.name.replace("/", "_"), port))

    def start(self, wait: bool = True) -> "Proc":
        os.makedirs(self.workdir, exist_ok=True)
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.argv, cwd=self.workdir, stdout=self.log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env=self.env, start_new_session=True,
        )
        if wait:
            wait_ready(self.port, self.proc, password=self.password)
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid

    def client(self, **kw) -> redis.Redis:
        kw.setdefault("socket_timeout", 10)
        if self.password and "password" not in kw:
            kw["password"] = self.password
        return redis.Redis(host="127.0.0.1", port=self.port, **kw)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def pause(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None:
            return
        if self.alive():
            try:
                self.proc.send_signal(signal.SIGCONT)
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if not self.log.closed:
            self.log.close()

    def restart(self, wait: bool = True) -> "Proc":
        self.stop()
        return self.start(wait)

    def output(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


def hakv_server(workdir: str, port: int | None = None, *args: str, config: str | None = None,
                password: str | None = None) -> Proc:
    port = port or free_port()
    argv = [sys.executable, "-m", "hakv.common.main"]
    if config:
        argv.append(config)
    argv += ["--port", str(port), "--bind", "127.0.0.1", "--save", "", *args]
    return Proc(argv, port, workdir, "hakv", password=password)


def redis_server(workdir: str, port: int | None = None, *args: str,
                 password: str | None = None) -> Proc:
    port = port or free_port()
    argv = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--dir", workdir, "--daemonize", "no", *args]
    return Proc(argv, port, workdir, "redis", password=password)
