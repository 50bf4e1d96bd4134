"""The framing of the snapshot a primary sends after +FULLRESYNC, without I/O.

Before the payload the primary may send bare newlines (keepalives while its
snapshot is being prepared). The payload is then either

    $<length>\\r\\n<length bytes>            (a snapshot saved to disk first), or
    $EOF:<40 random bytes>\\r\\n<bytes><the same 40 bytes>   (diskless: length unknown)

and the replication stream follows. `PayloadReader.feed(data)` returns
(payload_bytes, rest): the part of data that belongs to the snapshot, and,
once the end was seen (`done`), the bytes after it (the start of the stream).
A bad header raises PayloadError with the reason to log.
"""

from __future__ import annotations

MARK_LEN = 40
_MAX_HEADER = 1024


class PayloadError(Exception):
    pass


class PayloadReader:
    def __init__(self):
        self.header_buf = bytearray()
        self.in_header = True
        self.mark: bytes | None = None  # EOF mark (diskless framing)
        self.total = -1  # announced length, -1 when unknown (diskless)
        self.left = 0  # bytes of the announced length still to come
        self.held = b""  # diskless: the last bytes, maybe the start of the mark
        self.received = 0  # payload bytes returned so far
        self.done = False

    def feed(self, data: bytes) -> tuple[bytes, bytes]:
        if self.done:
            return b"", data
        if self.in_header:
            data = self._header(data)
            if self.in_header or not data:
                return b"", b""
        if self.mark is None:
            if len(data) < self.left:
                self.left -= len(data)
                self.received += len(data)
                return data, b""
            payload, rest = data[: self.left], data[self.left:]
            self.received += len(payload)
            self.left = 0
            self.done = True
            return payload, rest
        combined = self.held + data if self.held else data
        idx = combined.find(self.mark)
        if idx >= 0:
            self.done = True
            self.held = b""
            self.received += idx
            return combined[:idx], combined[idx + MARK_LEN:]
        keep = MARK_LEN - 1
        if len(combined) <= keep:
            self.held = combined
            return b"", b""
        self.held = combined[-keep:]
        out = combined[:-keep]
        self.received += len(out)
        return out, b""

    def _header(self, data: bytes) -> bytes:
        """Consume keepalive newlines and the header line; returns what follows."""
        buf = self.header_buf
        buf += data
        while True:
            if not buf:
                return b""
            if buf[0] == 10:  # keepalive newline
                del buf[0]
                continue
            eol = buf.find(b"\n")
            if eol < 0:
                if len(buf) > _MAX_HEADER:
                    raise PayloadError(_bad_first_byte(bytes(buf[:64])))
                return b""
            line = bytes(buf[:eol]).rstrip(b"\r")
            rest = bytes(buf[eol + 1:])
            buf.clear()
            break
        text = line.decode("utf-8", "replace")
        if line[:1] == b"-":
            raise PayloadError("MASTER aborted replication with an error: %s" % text[1:])
        if line[:1] != b"$":
            raise PayloadError(_bad_first_byte(line))
        if line.startswith(b"$EOF:"):
            mark = line[5:]
            if len(mark) != MARK_LEN:
                raise PayloadError("Bad EOF mark in the payload header from MASTER: '%s'" % text)
            self.mark = mark
        else:
            try:
                self.total = int(line[1:])
            except ValueError:
                raise PayloadError(_bad_first_byte(line)) from None
            if self.total < 0:
                raise PayloadError(_bad_first_byte(line))
            self.left = self.total
        self.in_header = False
        if self.mark is None and self.total == 0:
            self.done = True
        return rest

    def describe(self) -> str:
        if self.mark is not None:
            return "streamed RDB from master with EOF"
        return "%d bytes" % self.total


def _bad_first_byte(line: bytes) -> str:
    return ("Bad protocol from MASTER, the first byte is not '$' (we received '%s'), are you "
            "sure the host and port are right?" % line[:64].decode("utf-8", "replace"))
