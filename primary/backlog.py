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
    """The buffer may hold up to twice `size` bytes, trimmed back to `size`
    in one go: dropping the front on every append cost a memory move per
    write. Only the last `size` bytes count (first, histlen, since)."""

    __slots__ = ("size", "buf", "start")

    def __init__(self, size: int, next_offset: int):
        """An empty backlog whose first byte will have offset next_offset."""
        self.size = max(1, size)
        self.buf = bytearray()
        self.start = next_offset  # the offset of buf[0]

    @property
    def histlen(self) -> int:
        n = len(self.buf)
        return n if n < self.size else self.size

    @property
    def first(self) -> int:
        """The offset of the oldest byte held."""
        return self.start + len(self.buf) - self.histlen

    @property
    def end(self) -> int:
        """The offset the next appended byte will have."""
        return self.start + len(self.buf)

    def append(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if len(buf) > 2 * self.size:
            self._trim()

    def _trim(self) -> None:
        excess = len(self.buf) - self.size
        if excess > 0:
            del self.buf[:excess]
            self.start += excess

    def covers(self, offset: int) -> bool:
        """True if a replica asking for `offset` (its next byte) can be served."""
        return self.first <= offset <= self.end

    def since(self, offset: int) -> bytes:
        """The bytes from offset to the end (offset must be covered)."""
        return bytes(self.buf[offset - self.start:])

    def resize(self, size: int) -> None:
        self.size = max(1, size)
        self._trim()
