"""What the benchmarks share: free ports, a server process started and
stopped around a run, and /proc readings of its CPU time and memory."""

from __future__ import annotations

import os
import socket
import subprocess
import time

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def encode(args) -> bytes:
    """One command in RESP."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far: unlike wall time,
    hardly moved by other processes competing for the cores."""
    with open("/proc/%d/stat" % pid) as f:
        # The command name (field 2) may hold spaces: split after its ')'.
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    with open("/proc/%d/statm" % pid) as f:
        return int(f.read().split()[1]) * PAGE_SIZE


class Server:
    """A redis-server or hakv-server process, its output in NAME.log."""

    def __init__(self, name: str, argv: list, port: int, workdir: str):
        self.name = name
        self.argv = argv
        self.port = port
        self.workdir = workdir
        self.proc = None
        self.log = None

    def start(self) -> "Server":
        self.log = open(os.path.join(self.workdir, self.name + ".log"), "ab")
        self.proc = subprocess.Popen(self.argv, cwd=self.workdir, stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.time() + 20
        while True:
            try:
                if self.call(b"PING") == b"+PONG\r\n":
                    return self
            except OSError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                raise RuntimeError("%s did not start" % self.name)
            time.sleep(0.05)

    def call(self, *args: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as s:
            s.sendall(encode(args))
            return s.recv(65536)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.proc.pid)

    def rss_bytes(self) -> int:
        return rss_bytes(self.proc.pid)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.log is not None:
            self.log.close()
            self.log = None
