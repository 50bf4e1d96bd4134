"""In-process clients for the used-memory accounting unit tests: a Client on
a fake transport, one command in, its reply bytes out."""

from __future__ import annotations

from hakv.common.connection import Client


class Transport:
    """Keeps what the server writes."""

    def __init__(self):
        self.written = []

    def write(self, data):
        self.written.append(data)

    def writelines(self, chunks):
        self.written.extend(chunks)

    def get_extra_info(self, name):
        return ("127.0.0.1", 1)

    def close(self):
        pass


def encode(*args) -> bytes:
    parts = [a if isinstance(a, bytes) else str(a).encode() for a in args]
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


def connect(server) -> Client:
    client = Client(server)
    client.connection_made(Transport())
    return client


def run(client, *args) -> bytes:
    """One command; its reply as the bytes written."""
    client.transport.written.clear()
    client.data_received(encode(*args))
    return b"".join(client.transport.written)
