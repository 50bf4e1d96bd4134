"""The replication backlog: the last `size` bytes of the replication stream,
addressed by replication offset, so a replica that lost its link (or a
sibling of a promoted replica) can continue where it stopped.

Offsets follow Redis: the first byte ever written to the stream has offset 1,
`first` is the offset of the oldest byte still held, and the newest byte held
has offset `first + histlen - 1` (= the node's master_repl_offset). A replica
that processed everything up to offset N asks for N + 1.
"""

from __future__ import annotations


class Backlog:
    __slots__ = ("size", "buf", "first")

    def __init__(self, size: int, next_offset: int):
        """An empty backlog whose first byte will have offset next_offset."""
        self.size = max(1, size)
        self.buf = bytearray()
        self.first = next_offset

    @property
    def histlen(self) -> int:
        return len(self.buf)

    @property
    def end(self) -> int:
        """The offset the next appended byte will have."""
        return self.first + len(self.buf)

    def append(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        excess = len(buf) - self.size
        if excess > 0:
            # CPython deletes from the front of a bytearray without moving the rest.
            del buf[:excess]
            self.first += excess

    def covers(self, offset: int) -> bool:
        """True if a replica asking for `offset` (its next byte) can be served."""
        return self.first <= offset <= self.end

    def since(self, offset: int) -> bytes:
        """The bytes from offset to the end (offset must be covered)."""
        return bytes(self.buf[offset - self.first:])

    def resize(self, size: int) -> None:
        self.size = max(1, size)
        excess = len(self.buf) - self.size
        if excess > 0:
            del self.buf[:excess]
            self.first += excess
