"""The local topology's "network": one TCP proxy per member, able to cut partitions.

Every member has a public address (127.0.0.1:PORT, served here) and a private
one (127.0.0.N:PORT, where the process really listens and from which it makes
its outgoing connections: bind-source-addr). A connection accepted for member
D from a peer address that is member S's private address goes S -> D; from
anywhere else it is a client's. `partition X` freezes every connection with X
at either end:

* established connections stop carrying bytes both ways (reading is paused on
  both sockets, so what is in flight waits in the kernel's buffers as a real
  TCP connection keeps retransmitting): no RST, no FIN, senders' buffers fill;
* new connections are accepted (the kernel completes the handshake before we
  can object) but get no answer and are never connected through; at `heal`
  they are reset, as a connection attempt that never got through;
* `heal X` thaws what X's cut froze (unless another cut still holds it).

Runs as a helper process of a `hakv up` topology (`python -m hakv.lab.proxy
CONFIG.json`), controlled with one-line commands on a loopback TCP port:
"partition NAME", "heal NAME", "heal-all", "state"; the answer is one JSON
line {"ok": ..., "cut": [...], "at": time.time()}. `ProxyNet` can also run
inside another asyncio program.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import struct
import sys
import time
from dataclasses import dataclass

# Past this much data held for a side that cannot take it, stop reading.
HOLD_LIMIT = 1 << 20
CONNECT_TIMEOUT = 2.0


@dataclass
class Route:
    member: str
    listen: tuple   # public (host, port)
    target: tuple   # private (host, port)


def _reset(transport: asyncio.Transport | None) -> None:
    """Close with an RST (SO_LINGER 0), as a refused or broken connection."""
    if transport is None or transport.is_closing():
        return
    sock = transport.get_extra_info("socket")
    try:
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    transport.abort()


class _Side(asyncio.Protocol):
    """One socket of a pipe; `pipe.down` is the client side, `pipe.up` the member's."""

    def __init__(self, pipe: "Pipe", is_down: bool):
        self.pipe = pipe
        self.is_down = is_down
        self.transport: asyncio.Transport | None = None
        self.write_paused = False   # our own transport's buffer is full

    def connection_made(self, transport):
        self.transport = transport
        if self.is_down:
            self.pipe.down_made(self)
        else:
            self.pipe.up_made(self)

    def data_received(self, data: bytes) -> None:
        self.pipe.received(self, data)

    def eof_received(self):
        self.pipe.closed(self)
        return False

    def connection_lost(self, exc):
        self.pipe.closed(self)

    def pause_writing(self):
        self.write_paused = True
        self.pipe.sync_reading()

    def resume_writing(self):
        self.write_paused = False
        self.pipe.sync_reading()


class Pipe:
    """One proxied connection: client side `down`, member side `up`."""

    def __init__(self, net: "ProxyNet", route: Route):
        self.net = net
        self.route = route
        self.dst = route.member
        self.src: str | None = None
        self.down: _Side | None = None
        self.up: _Side | None = None
        self.to_up = bytearray()      # received from down, not yet written up
        self.to_down = bytearray()    # received from up while freezing, not yet written down
        self.frozen = False
        self.born_frozen = False      # accepted during a cut: never connected through
        self.connecting = False
        self.down_closed = self.up_closed = False
        self.done = False

    # -- lifecycle

    def down_made(self, side: _Side) -> None:
        self.down = side
        peer = side.transport.get_extra_info("peername") or ("", 0)
        self.src = self.net.identities.get(peer[0])
        self.net.pipes.add(self)
        if self.net.is_cut(self):
            self.frozen = self.born_frozen = True
            self.sync_reading()
        else:
            self.connect_up()

    def connect_up(self) -> None:
        self.connecting = True
        self.net.loop.create_task(self._connect())

    async def _connect(self) -> None:
        try:
            await asyncio.wait_for(self.net.loop.create_connection(
                lambda: _Side(self, False), *self.route.target), CONNECT_TIMEOUT)
        except (OSError, asyncio.TimeoutError):
            self.connecting = False
            # the member is not there: the client sees its connection reset
            self.finish(reset=True)

    def up_made(self, side: _Side) -> None:
        self.connecting = False
        if self.done:
            side.transport.close()
            return
        self.up = side
        self.flush()
        self.sync_reading()

    def finish(self, reset: bool = False) -> None:
        if self.done:
            return
        self.done = True
        self.net.pipes.discard(self)
        for side in (self.down, self.up):
            if side and side.transport:
                if reset:
                    _reset(side.transport)
                else:
                    side.transport.close()   # flushes what is buffered, then FIN

    # -- bytes

    def received(self, side: _Side, data: bytes) -> None:
        (self.to_up if side is self.down else self.to_down).extend(data)
        self.flush()
        self.sync_reading()

    def flush(self) -> None:
        if self.frozen:
            return
        if self.to_up and self.up and self.up.transport:
            self.up.transport.write(bytes(self.to_up))
            self.to_up.clear()
        if self.to_down and self.down and self.down.transport:
            self.down.transport.write(bytes(self.to_down))
            self.to_down.clear()

    def closed(self, side: _Side) -> None:
        if side is self.down:
            self.down_closed = True
        else:
            self.up_closed = True
        if not self.frozen:
            self.flush()
            self.finish()

    def sync_reading(self) -> None:
        """Read a side only when not frozen and the other side can take more."""
        if self.done:
            return
        for side, other in ((self.down, self.up), (self.up, self.down)):
            if not side or not side.transport or side.transport.is_closing():
                continue
            blocked = self.frozen or (other is not None and other.write_paused)
            if side is self.down and len(self.to_up) > HOLD_LIMIT:
                blocked = True
            if blocked:
                side.transport.pause_reading()
            else:
                side.transport.resume_reading()

    # -- cuts

    def update(self) -> None:
        cut = self.net.is_cut(self)
        if cut == self.frozen:
            return
        if cut:
            self.frozen = True
            self.sync_reading()
            return
        if self.born_frozen:
            # its handshake "never got through": the client learns it now
            self.finish(reset=True)
            return
        self.frozen = False
        if self.down_closed or self.up_closed:
            self.flush()
            self.finish()
            return
        self.flush()
        self.sync_reading()


class ProxyNet:
    """Every route's listener and every live pipe; the set of cut members."""

    def __init__(self, routes: list[Route], identities: dict[str, str]):
        self.routes = routes
        self.identities = dict(identities)   # private ip -> member
        self.cut: set[str] = set()
        self.pipes: set[Pipe] = set()
        self.servers: list[asyncio.AbstractServer] = []
        self.loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        for route in self.routes:
            server = await self.loop.create_server(
                lambda r=route: _Side(Pipe(self, r), True), route.listen[0], route.listen[1],
                reuse_address=True)
            self.servers.append(server)

    def close(self) -> None:
        for server in self.servers:
            server.close()
        for pipe in list(self.pipes):
            pipe.finish()

    def is_cut(self, pipe: Pipe) -> bool:
        return pipe.dst in self.cut or (pipe.src is not None and pipe.src in self.cut)

    def partition(self, member: str) -> None:
        self.cut.add(member)
        self._update()

    def heal(self, member: str | None = None) -> None:
        if member is None:
            self.cut.clear()
        else:
            self.cut.discard(member)
        self._update()

    def _update(self) -> None:
        for pipe in list(self.pipes):
            pipe.update()

    def members(self) -> set[str]:
        return {r.member for r in self.routes}

    def command(self, line: str) -> dict:
        """One control command -> its JSON-able answer."""
        words = line.split()
        verb = words[0].lower() if words else ""
        arg = words[1] if len(words) > 1 else None
        if verb in ("partition", "heal") and arg is not None:
            if arg not in self.members():
                return {"ok": False, "error": "no member %r" % arg, "cut": sorted(self.cut)}
            if verb == "partition":
                self.partition(arg)
            else:
                self.heal(arg)
        elif verb == "heal-all":
            self.heal(None)
        elif verb not in ("state", "ping"):
            return {"ok": False, "error": "unknown command %r" % line.strip(),
                    "cut": sorted(self.cut)}
        return {"ok": True, "cut": sorted(self.cut), "at": time.time(),
                "pipes": len(self.pipes)}

    async def serve_control(self, host: str = "127.0.0.1", port: int = 0) -> int:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while True:
                    line = await reader.readline()
                    if not line:
                        break
                    writer.write((json.dumps(self.command(line.decode())) + "\n").encode())
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                writer.close()

        # The control channel is not on the hot path: streams keep it short.
        server = await asyncio.start_server(handle, host, port)
        self.servers.append(server)
        return server.sockets[0].getsockname()[1]


class ProxyControl:
    """The blocking client of a proxy's control port (used by `hakv fault`)."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 3.0):
        self.addr = (host, port)
        self.timeout = timeout

    def send(self, line: str) -> dict:
        with socket.create_connection(self.addr, timeout=self.timeout) as sock:
            sock.sendall(line.encode() + b"\n")
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = sock.recv(4096)
                if not chunk:
                    raise ConnectionError("the proxy closed the control connection")
                buf += chunk
        return json.loads(buf)

    def partition(self, member: str) -> dict:
        return self._checked("partition " + member)

    def heal(self, member: str) -> dict:
        return self._checked("heal " + member)

    def state(self) -> dict:
        return self._checked("state")

    def _checked(self, line: str) -> dict:
        answer = self.send(line)
        if not answer.get("ok"):
            raise RuntimeError(answer.get("error", "proxy refused %r" % line))
        return answer


def load_config(path: str) -> tuple[list[Route], dict[str, str], str]:
    with open(path) as f:
        cfg = json.load(f)
    routes = [Route(r["member"], tuple(r["listen"]), tuple(r["target"])) for r in cfg["routes"]]
    return routes, cfg["identities"], cfg["control_file"]


async def _serve(config_path: str) -> None:
    routes, identities, control_file = load_config(config_path)
    net = ProxyNet(routes, identities)
    await net.start()
    port = await net.serve_control()
    tmp = control_file + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"port": port, "pid": os.getpid()}, f)
    os.replace(tmp, control_file)   # readers see the port only once we listen
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("proxies up: %s; control port %d" % (
        ", ".join("%s %s:%d -> %s:%d" % ((r.member,) + tuple(r.listen) + tuple(r.target))
                  for r in routes), port), flush=True)
    # an orphan whose topology directory was deleted (a test's tmp dir) goes away
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), 5.0)
        except asyncio.TimeoutError:
            if not os.path.exists(config_path):
                break
    net.close()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m hakv.lab.proxy CONFIG.json", file=sys.stderr)
        return 2
    asyncio.run(_serve(argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
