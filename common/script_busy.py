"""Serving other clients while a script runs past busy-reply-threshold.

A running script holds the event loop (it runs inside a command handler),
so asyncio cannot read sockets. Redis's answer is to process events from
inside the script's hook; this module does the same without re-entering the
asyncio loop: the hook calls `BusyServer.poll()`, which polls (timeout 0) the
listening sockets and the clients' sockets with a `select.poll` of its own,
reads what arrived with os.read on the file descriptors asyncio owns, and
feeds it to the clients' normal `data_received`. The gate then answers -BUSY
to everything except the commands allowed while busy (SCRIPT KILL, FUNCTION
KILL, SHUTDOWN NOSAVE, AUTH, HELLO, ...); replies go out through the
transports as usual (asyncio's write sends at once when its buffer is empty).

The client running the script, the replication links and replicas are not
read (Redis protects them the same way); their bytes wait in the kernel.

Connections accepted while busy get a small blocking-free transport of ours;
when the script ends they are handed to asyncio with
loop.connect_accepted_socket, keeping their Client object (and its parser
state), so they carry on as any other connection.

While polling, the script's pending propagation and ready keys are set
aside so that nothing another client runs can flush half of the script's
effects to the AOF or the replicas.
"""

from __future__ import annotations

import asyncio
import os
import select
import socket

from hakv.common.connection import Client

_READ = select.POLLIN | select.POLLPRI
_GONE = select.POLLHUP | select.POLLERR | select.POLLNVAL


class BusyServer:
    def __init__(self, server, caller):
        self.server = server
        self.caller = caller
        self.poller = select.poll()
        self.clients: dict[int, Client] = {}
        self.listeners: dict[int, socket.socket] = {}
        self.accepted: list = []  # (client, socket, transport)
        for srv in server.servers:
            for lsock in srv.sockets or ():
                try:
                    dup = socket.socket(fileno=os.dup(lsock.fileno()))
                except OSError:
                    continue
                dup.setblocking(False)
                self.listeners[dup.fileno()] = dup
                self.poller.register(dup.fileno(), _READ)
        for client in list(server.clients.values()):
            self._watch(client)

    def _watch(self, client) -> None:
        if (client is self.caller or client.is_primary or client.is_replica or client.closed
                or client.transport is None):
            return
        fd = client._fd()
        if fd < 0 or fd in self.clients:
            return
        self.clients[fd] = client
        self.poller.register(fd, _READ)

    def _forget(self, fd: int) -> None:
        self.clients.pop(fd, None)
        try:
            self.poller.unregister(fd)
        except (KeyError, ValueError, OSError):
            pass

    def poll(self) -> None:
        """Serve whatever arrived since the last call, without waiting."""
        server = self.server
        ks = server.keyspace
        saved = (server.pending_propagation, ks.ready_keys, ks.track_reads)
        server.pending_propagation = []
        ks.ready_keys = []
        try:
            for fd, events in self.poller.poll(0):
                lsock = self.listeners.get(fd)
                if lsock is not None:
                    self._accept(lsock)
                else:
                    self._read(fd, events)
        finally:
            server.pending_propagation, ks.ready_keys, ks.track_reads = saved

    def _read(self, fd: int, events: int) -> None:
        client = self.clients.get(fd)
        if client is None:
            return
        if client.closed:
            self._forget(fd)
            return
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            # The peer is gone: asyncio will see it too once the loop runs
            # again; a connection of ours is closed now.
            self._forget(fd)
            for i, (c, sock, transport) in enumerate(self.accepted):
                if c is client:
                    transport.close()
            return
        client.data_received(data)

    def _accept(self, lsock: socket.socket) -> None:
        try:
            conn, peer = lsock.accept()
        except OSError:
            return
        conn.setblocking(False)
        if conn.family in (socket.AF_INET, socket.AF_INET6):
            try:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        client = Client(self.server)
        transport = _BusyTransport(conn, peer)
        client.connection_made(transport)
        self.accepted.append((client, conn, transport))
        if not transport.closed:
            self.clients[conn.fileno()] = client
            self.poller.register(conn.fileno(), _READ)

    def close(self) -> None:
        """The script ended: stop polling, give new connections to asyncio."""
        for fd in list(self.clients):
            self._forget(fd)
        for dup in self.listeners.values():
            dup.close()
        self.listeners = {}
        loop = self.server.loop
        for client, conn, transport in self.accepted:
            if transport.closed or client.closed or loop is None:
                transport.finish()
                conn.close()
                client.connection_lost(None)
            else:
                loop.create_task(_adopt(loop, client, conn, transport))
        self.accepted = []


async def _adopt(loop, client, conn, transport) -> None:
    if transport.closed or client.closed:
        transport.finish()
        conn.close()
        client.connection_lost(None)
        return
    try:
        await loop.connect_accepted_socket(lambda: _Adopted(client, bytes(transport.buffer)),
                                           sock=conn)
    except Exception:
        conn.close()
        client.connection_lost(None)


class _BusyTransport:
    """Just enough of an asyncio transport for a connection accepted while a
    script runs: non-blocking writes, the rest kept for asyncio."""

    def __init__(self, sock: socket.socket, peer):
        self.sock = sock
        self.peer = peer
        self.buffer = bytearray()
        self.closed = False

    def get_extra_info(self, name, default=None):
        if name == "peername":
            return self.peer
        if name == "sockname":
            try:
                return self.sock.getsockname()
            except OSError:
                return default
        if name == "socket":
            return self.sock
        return default

    def write(self, data) -> None:
        if self.closed:
            return
        self.buffer += data
        self._send()

    def _send(self) -> None:
        while self.buffer:
            try:
                n = self.sock.send(self.buffer)
            except BlockingIOError:
                return
            except OSError:
                self.buffer.clear()
                return
            del self.buffer[:n]

    def finish(self) -> None:
        self._send()

    def close(self) -> None:
        if not self.closed:
            self._send()
            self.closed = True

    def is_closing(self) -> bool:
        return self.closed


class _Adopted(asyncio.Protocol):
    """Forwards an asyncio connection's events to a Client made while busy."""

    def __init__(self, client, pending: bytes):
        self.client = client
        self.pending = pending

    def connection_made(self, transport) -> None:
        self.client.transport = transport
        if self.pending:
            transport.write(self.pending)
            self.pending = b""

    def data_received(self, data: bytes) -> None:
        self.client.data_received(data)

    def eof_received(self):
        return self.client.eof_received()

    def connection_lost(self, exc) -> None:
        self.client.connection_lost(exc)
