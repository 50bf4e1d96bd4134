"""A small asyncio RESP client: the replica's link to its primary and the
sentinel's links to the nodes it watches.

* asyncio.Protocol based (no Streams); replies parsed by hiredis.Reader,
  RESP2 by default, RESP3 with ``protocol=3`` (HELLO 3 at connect).
* `await Client.connect(host, port, timeout=...)` connects and performs the
  handshake (HELLO / AUTH / CLIENT SETNAME / SELECT) within the timeout.
  A refused connection raises ConnectionRefusedError at once; a timeout
  raises TimeoutError.
* Error replies: `send()` futures and `pipeline()` results carry them as
  `ReplyError` *instances* (values, never raised), because a caller
  pipelining commands wants every answer, and a sentinel counts
  ``-LOADING`` as a valid PING reply. `execute()` is the convenience that
  *raises* the ReplyError instead.
* Every command written is answered in order; any number may be in flight
  (pipelining is just calling `send()` several times, or `pipeline()`).
* Pub/sub: `subscribe()` / `psubscribe()`; messages go to the `on_message`
  callback and/or the `messages()` async iterator. In RESP2 the connection
  is then reserved for pub/sub, in RESP3 commands can be mixed in.
* Connection loss is noticed at once: pending futures fail with
  `ConnectionLost`, the `on_close` callback runs, `messages()` ends.
* `detach()` hands the socket over after a one-line reply (PSYNC's
  +FULLRESYNC / +CONTINUE), with the bytes already received after it.
"""
from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import hiredis

__all__ = [
    "Client",
    "ConnectionLost",
    "Detached",
    "ProtocolError",
    "PubSubMessage",
    "ReplyError",
    "encode_command",
]


class ReplyError(Exception):
    """An error reply from the server; `str()` is its text without the '-'."""

    @property
    def code(self) -> str:
        text = str(self)
        return text.split(" ", 1)[0] if text else ""

    @property
    def message(self) -> str:
        return str(self)


class ConnectionLost(ConnectionError):
    """The connection closed while a reply was still expected."""


class ProtocolError(ConnectionError):
    """The server sent something that is not RESP."""


class PubSubMessage(NamedTuple):
    kind: str  # "message", "pmessage", "smessage", or another push kind in RESP3
    channel: Any
    data: Any
    pattern: Any = None


@dataclass
class Detached:
    """The result of `Client.detach`: the one-line reply, the transport (its
    reading is paused: call `transport.set_protocol(p)` then
    `transport.resume_reading()`), and bytes that arrived after the reply."""

    reply: Any
    transport: asyncio.Transport
    leftover: bytes


def _arg_bytes(arg: Any) -> bytes:
    if isinstance(arg, bytes):
        return arg
    if isinstance(arg, (bytearray, memoryview)):
        return bytes(arg)
    if isinstance(arg, str):
        return arg.encode("utf-8", "surrogateescape")
    if isinstance(arg, bool):
        return b"1" if arg else b"0"
    if isinstance(arg, int):
        return b"%d" % arg
    if isinstance(arg, float):
        return repr(arg).encode()
    raise TypeError(f"cannot send {type(arg).__name__} as a command argument")


def encode_command(args: Sequence[Any]) -> bytes:
    """A command as a RESP array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = _arg_bytes(arg)
        parts.append(b"$%d\r\n" % len(data))
        parts.append(data)
        parts.append(b"\r\n")
    return b"".join(parts)


_SUBSCRIBE_KINDS = {b"subscribe", b"psubscribe", b"ssubscribe", b"unsubscribe", b"punsubscribe", b"sunsubscribe"}
_MESSAGE_KINDS = {b"message", b"pmessage", b"smessage"}
_SUBSCRIBE_COMMANDS = {"SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE"}
_END = object()


def _kind_bytes(value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode()
    return value if isinstance(value, bytes) else b""


class _PubSubCall:
    """A (P|S)(UN)SUBSCRIBE in flight: answered by one confirmation per channel."""

    __slots__ = ("future", "remaining", "replies")

    def __init__(self, future: asyncio.Future, expected: int):
        self.future = future
        self.remaining = expected
        self.replies: list = []


class _Protocol(asyncio.Protocol):
    def __init__(self, client: Client):
        self.client = client

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.client._connection_made(transport)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        self.client._data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.client._connection_lost(exc)


class Client:
    """One connection. Create with `await Client.connect(...)`."""

    def __init__(
        self,
        *,
        protocol: int = 2,
        decode: bool = False,
        on_message: Callable[[PubSubMessage], None] | None = None,
        on_close: Callable[[Exception | None], None] | None = None,
    ):
        if protocol not in (2, 3):
            raise ValueError("protocol must be 2 or 3")
        self.protocol = protocol
        self.on_message = on_message
        self.on_close = on_close
        kwargs: dict[str, Any] = {"replyError": ReplyError, "protocolError": ProtocolError,
                                  "notEnoughData": _END}
        if decode:
            kwargs.update(encoding="utf-8", errors="surrogateescape")
        self._reader = hiredis.Reader(**kwargs)
        self._transport: asyncio.Transport | None = None
        self._pending: deque[asyncio.Future | _PubSubCall] = deque()
        self._closed = False
        self._close_exc: Exception | None = None
        self._closed_event = asyncio.Event()
        self._queue: asyncio.Queue | None = None
        self._channels: set = set()
        self._patterns: set = set()
        self._shard_channels: set = set()
        self._detach: asyncio.Future | None = None
        self._raw = bytearray()
        self.host = ""
        self.port = 0

    # ------------------------------------------------------------------
    # Connecting
    # ------------------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        *,
        timeout: float | None = None,
        username: str | None = None,
        password: str | None = None,
        protocol: int = 2,
        client_name: str | None = None,
        db: int = 0,
        decode: bool = False,
        strict_handshake: bool = True,
        on_message: Callable[[PubSubMessage], None] | None = None,
        on_close: Callable[[Exception | None], None] | None = None,
        source_addr: str | None = None,
    ) -> Client:
        """Connect and shake hands. With `strict_handshake=False` a failing
        AUTH / SETNAME / SELECT is ignored (as a sentinel does: the PING that
        follows shows the problem)."""
        client = cls(protocol=protocol, decode=decode, on_message=on_message, on_close=on_close)
        client.host, client.port = host, port
        loop = asyncio.get_running_loop()

        async def establish() -> None:
            # source_addr: bind-source-addr (the lab's fault proxies tell members apart by it)
            await loop.create_connection(lambda: _Protocol(client), host, port,
                                         local_addr=(source_addr, 0) if source_addr else None)
            handshake: list[tuple] = []
            if protocol == 3:
                hello: list[Any] = ["HELLO", 3]
                if password is not None:
                    hello += ["AUTH", username or "default", password]
                if client_name:
                    hello += ["SETNAME", client_name]
                handshake.append(tuple(hello))
            else:
                if password is not None:
                    handshake.append(("AUTH", username, password) if username else ("AUTH", password))
                if client_name:
                    handshake.append(("CLIENT", "SETNAME", client_name))
            if db:
                handshake.append(("SELECT", db))
            if handshake:
                replies = await client.pipeline(handshake)
                errors = [r for r in replies if isinstance(r, ReplyError)]
                if errors and strict_handshake:
                    raise errors[0]

        try:
            await asyncio.wait_for(establish(), timeout)
        except BaseException:
            client.close()
            raise
        return client

    # ------------------------------------------------------------------
    # State
    # ------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def local_address(self) -> tuple | None:
        """(ip, port) of our side of the connection (a sentinel announces this ip)."""
        return self._transport.get_extra_info("sockname") if self._transport else None

    @property
    def peer_address(self) -> tuple | None:
        return self._transport.get_extra_info("peername") if self._transport else None

    @property
    def in_pubsub(self) -> bool:
        return bool(self._channels or self._patterns or self._shard_channels)

    @property
    def pending(self) -> int:
        """Replies still expected."""
        return len(self._pending)

    def close(self) -> None:
        if self._transport is not None and not self._closed:
            self._transport.close()
        elif self._transport is None:
            self._mark_closed(None)

    async def wait_closed(self) -> None:
        await self._closed_event.wait()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
        await self.wait_closed()

    # ------------------------------------------------------------------
    # Commands
    # ------------------------------------------------------------------

    def send(self, *args: Any) -> asyncio.Future:
        """Write one command now; the future gets the reply (a ReplyError
        instance for an error reply) or fails with ConnectionLost."""
        return self.send_many([args])[0]

    def send_many(self, commands: Iterable[Sequence[Any]]) -> list[asyncio.Future]:
        """Write several commands with one write; one future per command."""
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future] = []
        chunks: list[bytes] = []
        if self._closed or self._transport is None:
            exc = ConnectionLost(f"connection to {self.host}:{self.port} is closed")
            for _ in commands:
                fut = loop.create_future()
                fut.set_exception(exc)
                futures.append(fut)
            return futures
        if self._detach is not None:
            raise RuntimeError("the connection is being detached")
        for args in commands:
            if not args:
                raise ValueError("empty command")
            fut = loop.create_future()
            name = _arg_bytes(args[0]).upper().decode("latin-1")
            if name in _SUBSCRIBE_COMMANDS:
                self._pending.append(_PubSubCall(fut, self._expected_confirmations(name, len(args) - 1)))
            else:
                self._pending.append(fut)
            futures.append(fut)
            chunks.append(encode_command(args))
        self._transport.write(b"".join(chunks))
        return futures

    def _expected_confirmations(self, name: str, nargs: int) -> int:
        if nargs:
            return nargs
        # UNSUBSCRIBE without arguments: one confirmation per current subscription (at least one)
        current = {"UNSUBSCRIBE": self._channels, "PUNSUBSCRIBE": self._patterns,
                   "SUNSUBSCRIBE": self._shard_channels}.get(name, set())
        return max(1, len(current))

    async def execute(self, *args: Any, timeout: float | None = None) -> Any:
        """Send one command and return its reply; an error reply is raised
        as ReplyError, a timeout as TimeoutError."""
        reply = await asyncio.wait_for(self.send(*args), timeout)
        if isinstance(reply, ReplyError):
            raise reply
        return reply

    async def pipeline(self, commands: Iterable[Sequence[Any]], timeout: float | None = None) -> list[Any]:
        """Send several commands at once; replies in order, errors as ReplyError values."""
        futures = self.send_many(list(commands))
        if not futures:
            return []
        return list(await asyncio.wait_for(asyncio.gather(*futures), timeout))

    # ------------------------------------------------------------------
    # Pub/sub
    # ------------------------------------------------------------------

    async def subscribe(self, *channels: Any, timeout: float | None = None) -> list:
        return await self._pubsub_call("SUBSCRIBE", channels, timeout)

    async def psubscribe(self, *patterns: Any, timeout: float | None = None) -> list:
        return await self._pubsub_call("PSUBSCRIBE", patterns, timeout)

    async def unsubscribe(self, *channels: Any, timeout: float | None = None) -> list:
        return await self._pubsub_call("UNSUBSCRIBE", channels, timeout)

    async def punsubscribe(self, *patterns: Any, timeout: float | None = None) -> list:
        return await self._pubsub_call("PUNSUBSCRIBE", patterns, timeout)

    async def _pubsub_call(self, name: str, names: Sequence[Any], timeout: float | None) -> list:
        reply = await asyncio.wait_for(self.send(name, *names), timeout)
        if isinstance(reply, ReplyError):
            raise reply
        return reply

    def messages(self) -> AsyncIterator[PubSubMessage]:
        """Pub/sub messages as they arrive; ends when the connection closes.
        (Messages are queued from the first call on.)"""
        if self._queue is None:
            self._queue = asyncio.Queue()
            if self._closed:
                self._queue.put_nowait(_END)
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[PubSubMessage]:
        assert self._queue is not None
        while True:
            item = await self._queue.get()
            if item is _END:
                self._queue.put_nowait(_END)  # let other iterators end too
                return
            yield item

    # ------------------------------------------------------------------
    # Handing the socket over (replication)
    # ------------------------------------------------------------------

    async def detach(self, *args: Any, timeout: float | None = None) -> Detached:
        """Send a command answered by a single line (``PSYNC`` ...), then give
        up the connection: the caller owns the transport from here on. Blank
        keep-alive lines before the reply are skipped. Must be called with no
        other reply pending."""
        if self._pending:
            raise RuntimeError("detach() needs a connection with no reply pending")
        if self._closed or self._transport is None:
            raise ConnectionLost(f"connection to {self.host}:{self.port} is closed")
        loop = asyncio.get_running_loop()
        self._detach = loop.create_future()
        self._transport.write(encode_command(args))
        try:
            reply, leftover = await asyncio.wait_for(self._detach, timeout)
        except BaseException:
            self._detach = None
            self.close()
            raise
        transport = self._transport
        self._transport = None
        self._closed = True
        self._closed_event.set()
        return Detached(reply, transport, leftover)

    def _feed_detach(self, data: bytes) -> None:
        assert self._detach is not None and self._transport is not None
        self._raw += data
        while self._raw[:1] == b"\n":
            del self._raw[:1]
        end = self._raw.find(b"\r\n")
        if end < 0 or self._detach.done():
            return
        line = bytes(self._raw[:end])
        leftover = bytes(self._raw[end + 2:])
        self._raw.clear()
        self._transport.pause_reading()
        if line[:1] == b"+":
            reply: Any = line[1:]
        elif line[:1] == b"-":
            reply = ReplyError(line[1:].decode("utf-8", "replace"))
        else:
            self._detach.set_exception(ProtocolError(f"unexpected reply {line[:64]!r}"))
            return
        self._detach.set_result((reply, leftover))

    # ------------------------------------------------------------------
    # Protocol callbacks
    # ------------------------------------------------------------------

    def _connection_made(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    def _data_received(self, data: bytes) -> None:
        if self._detach is not None:
            self._feed_detach(data)
            return
        self._reader.feed(data)
        while True:
            try:
                reply = self._reader.gets()
            except ProtocolError as exc:
                self._fail_all(exc)
                if self._transport is not None:
                    self._transport.close()
                return
            if reply is _END:
                return
            self._dispatch(reply)

    def _dispatch(self, reply: Any) -> None:
        is_push = isinstance(reply, hiredis.PushNotification)
        if (is_push or (self.protocol == 2 and isinstance(reply, list) and reply
                        and (self.in_pubsub or self._pubsub_call_pending()))):
            kind = _kind_bytes(reply[0]) if reply else b""
            if kind in _MESSAGE_KINDS:
                self._deliver(kind, reply)
                return
            if kind in _SUBSCRIBE_KINDS and len(reply) >= 3:
                self._confirm(kind, reply)
                return
            if is_push:
                self._deliver(kind, reply)
                return
        if not self._pending:
            return  # nothing asked for this (should not happen)
        head = self._pending.popleft()
        if isinstance(head, _PubSubCall):  # the server answered a subscribe with an error
            head = head.future
        if not head.done():
            head.set_result(reply)

    def _pubsub_call_pending(self) -> bool:
        return bool(self._pending) and isinstance(self._pending[0], _PubSubCall)

    def _confirm(self, kind: bytes, reply: list) -> None:
        target = {b"subscribe": self._channels, b"unsubscribe": self._channels,
                  b"psubscribe": self._patterns, b"punsubscribe": self._patterns,
                  b"ssubscribe": self._shard_channels, b"sunsubscribe": self._shard_channels}[kind]
        name = reply[1]
        if kind.startswith((b"un", b"pun", b"sun")):
            target.discard(name)
        elif name is not None:
            target.add(name)
        if self._pending and isinstance(self._pending[0], _PubSubCall):
            call = self._pending[0]
            call.replies.append(reply)
            call.remaining -= 1
            if call.remaining <= 0:
                self._pending.popleft()
                if not call.future.done():
                    call.future.set_result(call.replies)

    def _deliver(self, kind: bytes, reply: list) -> None:
        text_kind = kind.decode("latin-1")
        if kind == b"pmessage" and len(reply) >= 4:
            msg = PubSubMessage(text_kind, reply[2], reply[3], reply[1])
        elif len(reply) >= 3:
            msg = PubSubMessage(text_kind, reply[1], reply[2])
        else:
            msg = PubSubMessage(text_kind, None, list(reply[1:]))
        if self.on_message is not None:
            self.on_message(msg)
        if self._queue is not None:
            self._queue.put_nowait(msg)

    def _fail_all(self, exc: Exception) -> None:
        while self._pending:
            head = self._pending.popleft()
            fut = head.future if isinstance(head, _PubSubCall) else head
            if not fut.done():
                fut.set_exception(exc)

    def _connection_lost(self, exc: Exception | None) -> None:
        if self._detach is not None and not self._detach.done():
            self._detach.set_exception(ConnectionLost(f"connection to {self.host}:{self.port} lost: {exc}"))
        self._mark_closed(exc)

    def _mark_closed(self, exc: Exception | None) -> None:
        if self._closed and self._closed_event.is_set():
            return
        self._closed = True
        self._close_exc = exc
        lost = ConnectionLost(f"connection to {self.host}:{self.port} lost" + (f": {exc}" if exc else ""))
        self._fail_all(lost)
        if self._queue is not None:
            self._queue.put_nowait(_END)
        self._closed_event.set()
        if self.on_close is not None:
            self.on_close(exc)
