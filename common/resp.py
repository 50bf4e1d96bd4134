"""RESP: the request parser and the reply encoder, RESP2 and RESP3.

Requests. A chunk that starts at a message boundary with '*' is parsed by
the connection's hiredis reader (C speed). hiredis cannot say where it
stopped and accepts things Redis does not (+simple or :integer elements,
nested arrays, "$04"), so its result is used only when re-encoding it as
bulk-string arrays gives exactly the chunk's length: then the chunk held
only whole, well-formed messages. Anything else (a partial message, an
inline command, a malformed or suspicious message) is parsed again by the
Python parser below, which is resumable across chunks and produces Redis's
exact protocol errors and limits.

Replies. Command handlers return plain Python values and `encode` turns them
into bytes for the connection's protocol version:

    bytes -> bulk string         str -> simple string (+OK)
    int   -> integer             None -> null bulk / RESP3 null
    list/tuple -> array          dict -> map (RESP2: flat array)
    set/frozenset -> set (RESP2: array)   float -> double (RESP2: bulk string)
    NullArray -> *-1 / _         Bool -> #t/#f (RESP2: integer)
    ErrorReply -> -ERR ...       Verbatim -> =txt: (RESP2: bulk)
    Push -> RESP3 push (RESP2: array)     Raw -> bytes sent as they are
"""

from __future__ import annotations

import math
import re
from itertools import chain

import hiredis

INLINE_MAX_SIZE = 64 * 1024
INT_MAX = 2**31 - 1
# An array header with a 7+ digit count anywhere in a chunk (or a false hit in a
# payload): hiredis would allocate the whole list up front and freeing a
# never-filled list of billions of slots stalls the loop for seconds. The
# Python parser takes such chunks.
_HUGE_ARRAY = re.compile(rb"\*-?\d{7}")
# A line starting with + ( = (hiredis gives such elements as bytes too) or
# ~ | > % (a RESP3 set / attribute / push / map, which hiredis gives as a
# list or a dict): the chunk is checked against the one encoding of what
# hiredis found.
_ODD_LINE = re.compile(rb"\n[+(=~|>%]")
_join = b"".join
_chain = chain.from_iterable


class ProtocolError(Exception):
    """Malformed request: the reply is `-ERR <message>` and the connection closes."""


class RequestParser:
    """Turns the bytes a client sends into argv lists (lists of bytes)."""

    __slots__ = ("buf", "args", "remaining", "need", "max_bulk", "unauthenticated", "reader")

    def __init__(self, max_bulk: int = 512 * 1024 * 1024):
        self.buf = bytearray()
        self.args: list | None = None  # argv of a multibulk being read
        self.remaining = 0  # bulks still to read for self.args
        self.need = 0  # bytes the buffer must hold before parsing again
        self.max_bulk = max_bulk
        self.unauthenticated = False
        self.reader = hiredis.Reader()  # always at a message boundary between feeds

    def feed(self, data: bytes) -> list:
        """Returns the complete commands in data; raises ProtocolError after
        appending the commands that preceded the error to `exc.commands`."""
        if not self.buf and self.args is None:
            return self._feed_at_boundary(data)
        # A message is in progress (a big pipeline seldom ends a read on a
        # boundary): finish it here, then the rest can take the fast path.
        self.buf += data
        if len(self.buf) < self.need:
            return []
        out = self._parse(first_only=True)
        buf = self.buf
        # Only when the rest starts with a whole array header line: a header
        # or an inline line still arriving byte by byte stays with the parser.
        if not buf:
            return out
        try:
            if self.args is None and buf[:1] == b"*" and buf.find(b"\n", 0, 32) > 0:
                rest = bytes(buf)
                buf.clear()
                out += self._feed_at_boundary(rest)
            elif len(buf) >= self.need:
                out += self._parse()
        except ProtocolError as exc:
            exc.commands = out + exc.commands
            raise
        return out

    def _feed_at_boundary(self, data: bytes) -> list:
        if data[:1] == b"*" and not self.unauthenticated:
            if _HUGE_ARRAY.search(data) is None:
                fast, used = _fast_parse(self.reader, data, _odd_lines(data))
                if fast is not None and used == len(data):
                    return fast
                self.reader = hiredis.Reader()
                if fast is not None:
                    # Whole messages, then the start of one still arriving:
                    # the Python parser keeps that part.
                    self.buf += memoryview(data)[used:]
                    try:
                        fast += self._parse()
                    except ProtocolError as exc:
                        exc.commands = fast + exc.commands
                        raise
                    return fast
        self.buf += data
        if len(self.buf) < self.need:
            return []
        return self._parse()

    def pending_bytes(self) -> int:
        return len(self.buf)

    def _parse(self, first_only: bool = False) -> list:
        """The commands in the buffer (with first_only, up to the end of the
        first one)."""
        buf = self.buf
        out: list = []
        pos = 0
        n = len(buf)
        self.need = 0
        try:
            while pos < n:
                if self.args is None:
                    if buf[pos] == 42:  # '*'
                        eol = buf.find(b"\r", pos)
                        if eol < 0:
                            if n - pos > INLINE_MAX_SIZE:
                                raise ProtocolError("Protocol error: too big mbulk count string")
                            break
                        if eol + 1 >= n:
                            break  # wait for the '\n'
                        count = _strict_int(buf[pos + 1 : eol])
                        if count is None or count > INT_MAX:
                            raise ProtocolError("Protocol error: invalid multibulk length")
                        if self.unauthenticated and count > 10:
                            raise ProtocolError("Protocol error: unauthenticated multibulk length")
                        pos = eol + 2
                        if count <= 0:
                            continue
                        self.args = []
                        self.remaining = count
                    else:
                        eol = buf.find(b"\n", pos)
                        if eol >= 0 and buf.find(b"\0", pos, eol) >= 0:
                            # Redis looks for the newline with strchr, which
                            # stops at a NUL: such a line never completes.
                            eol = -1
                        if eol < 0:
                            if n - pos > INLINE_MAX_SIZE:
                                raise ProtocolError("Protocol error: too big inline request")
                            break
                        line = bytes(buf[pos:eol])
                        pos = eol + 1
                        if line.endswith(b"\r"):
                            line = line[:-1]
                        argv = split_args(line)
                        if argv is None:
                            raise ProtocolError("Protocol error: unbalanced quotes in request")
                        if argv:
                            out.append(argv)
                        if first_only:
                            break
                        continue
                args = self.args
                while self.remaining:
                    eol = buf.find(b"\r", pos)
                    if eol < 0:
                        if n - pos > INLINE_MAX_SIZE:
                            raise ProtocolError("Protocol error: too big bulk count string")
                        break
                    if eol + 1 >= n:
                        break
                    if buf[pos] != 36:  # '$'
                        raise ProtocolError(
                            "Protocol error: expected '$', got '%s'" % chr(buf[pos])
                        )
                    length = _strict_int(buf[pos + 1 : eol])
                    if length is None or length < 0 or length > self.max_bulk:
                        raise ProtocolError("Protocol error: invalid bulk length")
                    if self.unauthenticated and length > 16384:
                        raise ProtocolError("Protocol error: unauthenticated bulk length")
                    start = eol + 2
                    end = start + length
                    if end + 2 > n:
                        # Large value still arriving: don't reparse until it is all here.
                        self.need = end + 2 - pos
                        break
                    args.append(bytes(buf[start:end]))
                    pos = end + 2
                    self.remaining -= 1
                if self.remaining:
                    break
                out.append(args)
                self.args = None
                if first_only:
                    break
        except ProtocolError as exc:
            exc.commands = out
            del buf[:]
            self.args = None
            raise
        if pos:
            # `need` was counted from the header we stopped at: now the buffer's start.
            del buf[:pos]
        return out


def _fast_parse(reader, data: bytes, odd: bool = True):
    """(commands, bytes they took) for the whole, well-formed bulk-string
    arrays hiredis finds at the start of data (through the connection's
    reader, at a message boundary); (None, 0) if it finds anything else. If
    fewer bytes than len(data) were used, the reader holds the start of a
    message: replace it. odd: _odd_lines(data) (False: known not to)."""
    reader.feed(data)
    gets = reader.gets
    try:
        out = [gets()]
        msg = gets()
        while msg is not False:
            out.append(msg)
            msg = gets()
    except Exception:  # hiredis.ProtocolError; TypeError for a map with a list key
        return None, 0
    if len(out) == 1 and not odd:
        # One message (a client that does not pipeline) and no line of
        # another type: every argument hiredis gives as bytes was a "$" bulk,
        # which it reads as strictly as Redis, so the message took exactly
        # its encoding's length, summed here (cheaper than _at_boundary).
        args = out[0]
        if args.__class__ is not list or not args:
            return None, 0  # False (partial), *-1, *0 or not an array: the slow path
        used = 4 if len(args) < 10 else 3 + len(str(len(args)))
        for a in args:
            if a.__class__ is not bytes:
                return None, 0
            k = len(a)
            used += k + (6 if k < 10 else 7 if k < 100 else 5 + len(str(k)))
        if used > len(data):
            return None, 0
        return out, used
    # Only non-empty arrays of bulk strings. all(): no *0, *-1, :0 or False
    # (partial). The one join over every message's elements raises unless
    # each message is iterable and yields bytes only: not an int, None, float
    # or error, not a bulk string (whose items are ints), not a nested list.
    # What hiredis gives as bytes or as a list or dict of bytes (+simple,
    # (bignum, =verbatim, ~set, |attribute, >push, %map: they start a line)
    # is checked against its one encoding below. The first message starts
    # the chunk, with '*'.
    if not all(out):
        return None, 0  # the slow path
    try:
        _join(_chain(out))
    except TypeError:
        return None, 0
    if _at_boundary(reader):
        # hiredis took all of data (it checks lengths as strictly as Redis:
        # no "$04", no "+4"), and it is a whole number of messages.
        used = len(data)
    else:
        # Where the whole messages end: their encoding's length, header
        # "*<n>\r\n" per message, "$<len>\r\n<arg>\r\n" per argument.
        used = len(str(list(map(len, out)))) + len(out)
        lens = [len(a) for msg in out for a in msg]
        # str([3, 16, 3]) == "[3, 16, 3]": the digits of every length plus 2 per item.
        used += sum(lens) + 3 * len(lens) + len(str(lens))
        if used >= len(data):
            return None, 0  # not at a boundary, yet all used: leave it to the slow path
    if odd and not _encodes_as(out, data, used):
        return None, 0
    return out, used


def _at_boundary(reader) -> bool:
    """Did the reader stop between two messages, holding nothing? An empty
    array fed after them comes back as itself only then (mid-message it
    becomes part of the pending one, or an error); the reader is at a
    boundary again afterwards. Otherwise the reader must be replaced."""
    reader.feed(b"*0\r\n")
    try:
        return reader.gets() == [] and not reader.has_data()
    except Exception:  # hiredis.ProtocolError
        return False


def _encodes_as(out: list, data: bytes, used: int) -> bool:
    """Are data[:used] exactly these arrays of bulk strings? An array of bulk
    strings has one encoding, so this settles what the quick checks above
    only suspect: a `$` payload starting with + ( = ~ | (ZRANGEBYSCORE k
    (1 +inf) is fine, a line of another type is not."""
    return b"".join([b"*%d\r\n" % len(m) + b"".join([b"$%d\r\n%s\r\n" % (len(a), a) for a in m])
                     for m in out]) == data[:used]


def _odd_lines(data: bytes) -> bool:
    """_ODD_LINE.search(data); in a long chunk, bytes.find (memchr) for the
    characters first is faster than the regex."""
    if len(data) < 256:
        return _ODD_LINE.search(data) is not None
    return ((data.find(b"+") >= 0 and data.find(b"\n+") >= 0)
            or (data.find(b"(") >= 0 and data.find(b"\n(") >= 0)
            or (data.find(b"=") >= 0 and data.find(b"\n=") >= 0)
            or (data.find(b"~") >= 0 and data.find(b"\n~") >= 0)
            or (data.find(b"|") >= 0 and data.find(b"\n|") >= 0)
            or (data.find(b">") >= 0 and data.find(b"\n>") >= 0)
            or (data.find(b"%") >= 0 and data.find(b"\n%") >= 0))


def _strict_int(b) -> int | None:
    """Redis's string2ll: optional '-', digits, no spaces or '+'."""
    if not b or len(b) > 20:
        return None
    if b[0] == 45:  # '-'
        digits = b[1:]
        if not digits.isdigit() or digits[0] == 48:  # "-0" is not a number either
            return None
        return -int(digits)
    if not b.isdigit() or (len(b) > 1 and b[0] == 48):
        return None
    return int(b)


_ESCAPES = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("a"): 7}
_HEX = b"0123456789abcdefABCDEF"


def split_args(line: bytes) -> list | None:
    """Splits an inline command line like Redis's sdssplitargs: spaces separate
    arguments, "double quotes" take escapes (\\n, \\xHH, ...), 'single quotes'
    take only \\'. Returns None for unbalanced quotes."""
    args = []
    i = 0
    n = len(line)
    while True:
        while i < n and line[i] in b" \t\n\r\v\f":
            i += 1
        if i >= n:
            return args
        cur = bytearray()
        inq = insq = False
        while True:
            if inq:
                if i >= n:
                    return None
                c = line[i]
                if (
                    c == 92
                    and i + 3 < n
                    and line[i + 1] == 120
                    and line[i + 2] in _HEX
                    and line[i + 3] in _HEX
                ):
                    cur.append(int(line[i + 2 : i + 4], 16))
                    i += 3
                elif c == 92 and i + 1 < n:
                    i += 1
                    cur.append(_ESCAPES.get(line[i], line[i]))
                elif c == 34:
                    # a closing quote must be followed by a space or the end
                    if i + 1 < n and line[i + 1] not in b" \t\n\r\v\f":
                        return None
                    inq = False
                    i += 1
                    break
                else:
                    cur.append(c)
            elif insq:
                if i >= n:
                    return None
                c = line[i]
                if c == 92 and i + 1 < n and line[i + 1] == 39:
                    i += 1
                    cur.append(39)
                elif c == 39:
                    if i + 1 < n and line[i + 1] not in b" \t\n\r\v\f":
                        return None
                    insq = False
                    i += 1
                    break
                else:
                    cur.append(c)
            else:
                if i >= n:
                    break
                c = line[i]
                if c in b" \t\n\r\v\f":
                    break
                if c == 34:
                    inq = True
                elif c == 39:
                    insq = True
                else:
                    cur.append(c)
            i += 1
        args.append(bytes(cur))


# ---------------------------------------------------------------- replies


class ErrorReply(Exception):
    """An error reply. The message includes the prefix: 'ERR ...', 'WRONGTYPE ...'."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class NullArray:
    __slots__ = ()


NULL_ARRAY = NullArray()


class Bool:
    __slots__ = ("value",)

    def __init__(self, value: bool):
        self.value = value


class Verbatim:
    """RESP3 verbatim string (INFO, CLIENT LIST ...); a bulk string in RESP2."""

    __slots__ = ("text", "fmt")

    def __init__(self, text: bytes, fmt: bytes = b"txt"):
        self.text = text
        self.fmt = fmt


class Push(list):
    """RESP3 out-of-band push (pub/sub messages); an array in RESP2."""

    __slots__ = ()


class Raw:
    __slots__ = ("data",)

    def __init__(self, data: bytes):
        self.data = data


class Double(float):
    """A float reply; the subclass marks 'format as a Redis double'."""

    __slots__ = ()


def format_double(d: float) -> bytes:
    """Redis 7.0's reply formatting of doubles (%.17g, inf/-inf)."""
    if d == math.inf:
        return b"inf"
    if d == -math.inf:
        return b"-inf"
    return (b"%.17g" % d)


OK = "OK"
QUEUED = "QUEUED"
PONG = "PONG"


# Replies that are the same bytes every time.
_SIMPLE_REPLIES = {s: b"+%s\r\n" % s.encode() for s in (OK, QUEUED, PONG)}
_INT_REPLIES = [b":%d\r\n" % i for i in range(1024)]
# "$<n>\r\n" for short bulk strings: a batch writes header, value and CRLF as
# three pieces of one join instead of formatting each reply.
BULK_HEADERS = [b"$%d\r\n" % n for n in range(1024)]
CRLF = b"\r\n"


def encode(value, resp3: bool) -> bytes:
    cls = value.__class__
    if cls is bytes:
        return b"$%d\r\n%s\r\n" % (len(value), value)
    if cls is str:
        data = _SIMPLE_REPLIES.get(value)
        if data is not None:
            return data
    elif cls is int:
        if 0 <= value < 1024:
            return _INT_REPLIES[value]
        return b":%d\r\n" % value
    elif value is None:
        return b"_\r\n" if resp3 else b"$-1\r\n"
    elif cls is Raw:  # encoded by the command (the ZRANGE family)
        return value.data
    out: list = []
    _encode(value, out, resp3)
    return b"".join(out)


def _encode(value, out: list, resp3: bool) -> None:
    cls = value.__class__
    if cls is bytes:
        out.append(b"$%d\r\n%s\r\n" % (len(value), value))
    elif cls is str:
        out.append(b"+%s\r\n" % value.encode())
    elif cls is int:
        out.append(b":%d\r\n" % value)
    elif value is None:
        out.append(b"_\r\n" if resp3 else b"$-1\r\n")
    elif cls is list or cls is tuple:
        out.append(b"*%d\r\n" % len(value))
        for v in value:
            _encode(v, out, resp3)
    else:
        _encode_other(value, out, resp3)


def _encode_other(value, out: list, resp3: bool) -> None:
    if isinstance(value, ErrorReply):
        msg = value.message.replace("\r", " ").replace("\n", " ")
        out.append(b"-%s\r\n" % msg.encode("utf-8", "surrogateescape"))
    elif isinstance(value, float):
        text = format_double(value)
        if resp3:
            out.append(b",%s\r\n" % text)
        else:
            out.append(b"$%d\r\n%s\r\n" % (len(text), text))
    elif isinstance(value, dict):
        if resp3:
            out.append(b"%%%d\r\n" % len(value))
        else:
            out.append(b"*%d\r\n" % (2 * len(value)))
        for k, v in value.items():
            _encode(k, out, resp3)
            _encode(v, out, resp3)
    elif isinstance(value, (set, frozenset)):
        out.append((b"~%d\r\n" if resp3 else b"*%d\r\n") % len(value))
        for v in value:
            _encode(v, out, resp3)
    elif isinstance(value, Push):
        out.append((b">%d\r\n" if resp3 else b"*%d\r\n") % len(value))
        for v in value:
            _encode(v, out, resp3)
    elif isinstance(value, list):
        out.append(b"*%d\r\n" % len(value))
        for v in value:
            _encode(v, out, resp3)
    elif isinstance(value, bytes):
        out.append(b"$%d\r\n%s\r\n" % (len(value), value))
    elif isinstance(value, Raw):
        out.append(value.data)
    elif isinstance(value, NullArray):
        out.append(b"_\r\n" if resp3 else b"*-1\r\n")
    elif isinstance(value, Bool):
        if resp3:
            out.append(b"#t\r\n" if value.value else b"#f\r\n")
        else:
            out.append(b":1\r\n" if value.value else b":0\r\n")
    elif isinstance(value, Verbatim):
        if resp3:
            body = value.fmt + b":" + value.text
            out.append(b"=%d\r\n%s\r\n" % (len(body), body))
        else:
            out.append(b"$%d\r\n%s\r\n" % (len(value.text), value.text))
    elif isinstance(value, bool):
        out.append(b":%d\r\n" % int(value))
    elif isinstance(value, int):
        out.append(b":%d\r\n" % value)
    elif isinstance(value, str):
        out.append(b"+%s\r\n" % value.encode())
    else:
        raise TypeError("cannot encode reply of type %r" % cls_name(value))


def cls_name(v) -> str:
    return type(v).__name__


def encode_command(*args) -> bytes:
    """A request in RESP (for propagation to replicas/AOF and for clients)."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if a.__class__ is not bytes:
            a = str(a).encode() if not isinstance(a, (bytes, bytearray)) else bytes(a)
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)
