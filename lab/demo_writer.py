"""The compose demo's writer: a Sentinel-aware client that logs every write.

    python -m hakv.lab.demo_writer --sentinel sentinel1:26379 --sentinel sentinel2:26379 ...

It does what a Sentinel client library does, in the open: ask the sentinels
(first that answers) which node is the primary, connect to it, check it says
ROLE master, then SET demo:<n> <n> followed by WAIT 1 <ms>. Every write prints
one line, success or failure, so `docker compose logs -f writer` shows a
failover as it happens: the failed writes while the primary is gone, the new
primary's address, and how long writes were impossible.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time

from hakv.lab.rpc import Rpc, RpcError


def stamp(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t)) + ".%03d" % int((t % 1) * 1000)


def parse_addr(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError("expected HOST:PORT, got %r" % text)
    return host, int(port)


class SentinelWriter:
    def __init__(self, sentinels: list, master_name: str, timeout: float = 0.5,
                 wait_ms: int = 100, out=sys.stdout):
        self.sentinels = list(sentinels)
        self.master_name = master_name
        self.timeout = timeout
        self.wait_ms = wait_ms
        self.out = out
        self.conn: Rpc | None = None
        self.primary: tuple[str, int] | None = None
        self.last_ok: float | None = None
        self.failing_since: float | None = None
        self.ok = self.failed = 0

    def log(self, text: str) -> None:
        self.out.write("%s %s\n" % (stamp(time.time()), text))
        self.out.flush()

    def discover(self) -> tuple[str, int]:
        """The primary's address from the first sentinel that knows it."""
        errors = []
        for host, port in self.sentinels:
            try:
                with Rpc(host, port, self.timeout) as s:
                    reply = s.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.master_name)
            except (OSError, RpcError) as exc:
                errors.append("%s:%d %s" % (host, port, exc.__class__.__name__))
                continue
            if reply:
                return reply[0].decode(), int(reply[1])
            errors.append("%s:%d does not know %s" % (host, port, self.master_name))
        raise ConnectionError("no sentinel named a primary (%s)" % "; ".join(errors))

    def connect(self) -> Rpc:
        addr = self.discover()
        conn = Rpc(addr[0], addr[1], self.timeout)
        try:
            role = conn.call("ROLE")
        except BaseException:
            conn.close()
            raise
        if not role or role[0] != b"master":
            conn.close()
            raise ConnectionError("%s:%d is not a master yet (role %s)"
                                  % (addr[0], addr[1], role[0].decode() if role else "?"))
        if addr != self.primary:
            if self.primary is not None:
                self.log("primary is now %s:%d (was %s:%d)" % (addr + self.primary))
            else:
                self.log("primary is %s:%d" % addr)
            self.primary = addr
        return conn

    def write_one(self, n: int) -> None:
        started = time.time()
        target = "%s:%d" % self.primary if self.primary else "?"
        try:
            if self.conn is None:
                self.conn = self.connect()
                target = "%s:%d" % self.primary
            self.conn.call("SET", "demo:%d" % n, str(n))
            acked = self.conn.call("WAIT", 1, self.wait_ms)
        except (OSError, RpcError) as exc:
            self.failed += 1
            if self.failing_since is None:
                self.failing_since = started
            if self.conn is not None:
                self.conn.close()
                self.conn = None
            self.log("FAIL  demo:%d -> %s: %s" % (n, target, _short(exc)))
            return
        now = time.time()
        self.ok += 1
        if self.failing_since is not None:
            gap = now - (self.last_ok or self.failing_since)
            self.log("back: writes work again after %.2f s without a successful write"
                     % gap)
            self.failing_since = None
        self.last_ok = now
        self.log("ok    demo:%d -> %s (%.1f ms, replicas acked: %d)"
                 % (n, target, (now - started) * 1000, acked))

    def run(self, interval: float, count: int = 0) -> None:
        n = 0
        while count == 0 or n < count:
            n += 1
            self.write_one(n)
            time.sleep(interval)


def _short(exc: BaseException) -> str:
    text = str(exc) or exc.__class__.__name__
    if not isinstance(exc, RpcError):
        text = "%s: %s" % (exc.__class__.__name__, text)
    return text[:120]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hakv.lab.demo_writer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentinel", action="append", type=parse_addr, required=True,
                        metavar="HOST:PORT", help="a sentinel (repeat for each)")
    parser.add_argument("--name", default="mymaster", help="the sentinels' master name")
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between writes")
    parser.add_argument("--timeout", type=float, default=0.5, help="socket timeout, seconds")
    parser.add_argument("--wait-ms", type=int, default=100, help="WAIT 1 <ms> after each SET")
    parser.add_argument("--count", type=int, default=0, help="stop after N writes (0: never)")
    args = parser.parse_args(argv)
    writer = SentinelWriter(args.sentinel, args.name, args.timeout, args.wait_ms)
    writer.log("writing through sentinels %s (master name %s)" % (
        ", ".join("%s:%d" % a for a in args.sentinel), args.name))
    # `docker compose down/stop` sends SIGTERM: stop like Ctrl-C, with the summary line.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        writer.run(args.interval, args.count)
    except KeyboardInterrupt:
        pass
    writer.log("stopped: %d ok, %d failed" % (writer.ok, writer.failed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
