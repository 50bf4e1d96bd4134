"""In-process clients for the used-memory accounting unit tests: a Client on
a fake transport, one command in, its reply bytes out."""

from __future__ import annotations

from hakv.common import eviction
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


def walked(memory, monkeypatch) -> tuple:
    """(bytes, keys) of the keyspace by walking it with size_of, without
    resampling the per-key averages (a resample is a new estimate, not a
    change of the data) and leaving them as they were."""
    saved = {k: list(v) for k, v in memory.averages.items()}
    with monkeypatch.context() as m:
        m.setattr(eviction, "RESAMPLE_AFTER", 1 << 60)
        total = keys = 0
        for db in memory.ks.dbs:
            for key in list(db.data):
                total += memory.size_of(db, key)
                keys += 1
    memory.averages = saved
    return total, keys
