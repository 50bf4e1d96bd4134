"""The sentinel's connections to the processes it watches (the I/O half of
actions.Connect / Disconnect / Send).

One `LinkIO` per link id: a command connection, plus for a master or replica
a pub/sub connection subscribed to ``__sentinel__:hello``. Events go back to
the owner through four callbacks (`LinkEvents`), each tagged with the link id
and the `conn` serial of the Connect that opened it, so the state machine can
ignore late news from a connection it already replaced.

What this layer decides on its own (see actions.py):

* connect timeout: 1 s, so a black-holed address is retried like a refused one;
* AUTH / CLIENT SETNAME are written right after connecting and their replies
  discarded (as Redis does), honouring ``sentinel rename-command``;
* an established pub/sub connection that drops while the command connection
  lives is re-opened quietly, at most once per second (the failover leader's
  ``CLIENT KILL TYPE pubsub`` does that routinely);
* commands for one link are written in the order they are sent.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from hakv.common.client import Client, ConnectionLost, ProtocolError, PubSubMessage, ReplyError

from .actions import HELLO_CHANNEL, Connect, Disconnect, LinkKind, Send

CONNECT_TIMEOUT = 1.0
PUBSUB_REOPEN_INTERVAL = 1.0

# What can go wrong while opening a connection; anything else is a bug.
_CONNECT_ERRORS = (OSError, asyncio.TimeoutError, ConnectionError, ReplyError, ProtocolError)


@dataclass(frozen=True)
class LinkEvents:
    """Where link news goes (the server turns each into a state call)."""

    up: Callable[[int, int, str | None], None]  # link_id, conn, local ip
    down: Callable[[int, int, str], None]  # link_id, conn, reason
    reply: Callable[[Send, object], None]  # the Send, its decoded reply or ReplyError
    message: Callable[[int, int, object, object], None]  # link_id, conn, channel, payload


def _consume(fut: asyncio.Future) -> None:
    """Done-callback for replies nobody reads (keeps asyncio from warning)."""
    if not fut.cancelled():
        fut.exception()


class LinkIO:
    """The live connections of one link for one `conn` serial."""

    def __init__(self, action: Connect):
        self.action = action
        self.cmd: Client | None = None
        self.pubsub: Client | None = None
        self.closed = False
        self.task: asyncio.Task | None = None  # the initial connect
        self.pubsub_task: asyncio.Task | None = None  # a quiet pub/sub re-open
        self.pubsub_opened_at = 0.0

    @property
    def link_id(self) -> int:
        return self.action.link_id

    @property
    def conn(self) -> int:
        return self.action.conn

    def close(self) -> None:
        self.closed = True
        for task in (self.task, self.pubsub_task):
            if task is not None and not task.done() and task is not asyncio.current_task():
                task.cancel()
        for client in (self.cmd, self.pubsub):
            if client is not None:
                client.on_close = None
                client.on_message = None
                client.close()
        self.cmd = self.pubsub = None


class Links:
    def __init__(self, events: LinkEvents, log: Callable[[str, str], None],
                 source_addr: str | None = None):
        self.events = events
        self.log = log
        self.source_addr = source_addr  # bind-source-addr
        self._links: dict[int, LinkIO] = {}

    # ------------------------------------------------------------------
    # Actions
    # ------------------------------------------------------------------

    def connect(self, action: Connect) -> None:
        old = self._links.pop(action.link_id, None)
        if old is not None:
            old.close()
        io = LinkIO(action)
        self._links[action.link_id] = io
        io.task = asyncio.get_running_loop().create_task(self._establish(io))

    def disconnect(self, action: Disconnect) -> None:
        io = self._links.get(action.link_id)
        if io is not None and io.conn == action.conn:
            del self._links[action.link_id]
            io.close()

    def send(self, action: Send) -> None:
        io = self._links.get(action.link_id)
        if io is None or io.conn != action.conn or io.cmd is None:
            return  # the link went down meanwhile: on_link_down said so already
        fut = io.cmd.send(*action.argv)
        fut.add_done_callback(lambda f: self._replied(action, f))

    def close_all(self) -> None:
        for io in self._links.values():
            io.close()
        self._links.clear()

    def is_current(self, io: LinkIO) -> bool:
        return not io.closed and self._links.get(io.link_id) is io

    # ------------------------------------------------------------------
    # Connecting
    # ------------------------------------------------------------------

    def _handshake(self, client: Client, action: Connect, name: str | None) -> None:
        """AUTH and CLIENT SETNAME, pipelined ahead of whatever follows;
        their replies are dropped (a wrong password shows in the PINGs)."""
        commands: list[tuple] = []
        if action.auth_pass:
            auth = action.command_name("AUTH")
            if action.auth_user:
                commands.append((auth, action.auth_user, action.auth_pass))
            else:
                commands.append((auth, action.auth_pass))
        if name:
            commands.append((action.command_name("CLIENT"), "SETNAME", name))
        if commands:
            for fut in client.send_many(commands):
                fut.add_done_callback(_consume)

    async def _open_cmd(self, io: LinkIO) -> Client:
        action = io.action
        client = await Client.connect(action.host, action.port, timeout=CONNECT_TIMEOUT,
                                      source_addr=self.source_addr)
        self._handshake(client, action, action.client_name_cmd)
        return client

    async def _open_pubsub(self, io: LinkIO) -> Client:
        action = io.action
        client = await Client.connect(action.host, action.port, timeout=CONNECT_TIMEOUT,
                                      source_addr=self.source_addr)
        try:
            self._handshake(client, action, action.client_name_pubsub)
            await client.subscribe(HELLO_CHANNEL, timeout=CONNECT_TIMEOUT)
        except BaseException:
            client.close()
            raise
        return client

    async def _establish(self, io: LinkIO) -> None:
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(self._open_cmd(io))]
        if io.action.kind == LinkKind.REDIS:
            tasks.append(loop.create_task(self._open_pubsub(io)))
        try:
            await asyncio.wait(tasks)
        except asyncio.CancelledError:
            _discard(tasks)
            raise
        failure = next((t.exception() for t in tasks if t.exception() is not None), None)
        clients: list[Client] = [t.result() for t in tasks if t.exception() is None]
        if failure is None and any(c.closed for c in clients):
            failure = ConnectionLost("connection closed during the handshake")
        if failure is not None:
            for client in clients:
                client.close()
            if not isinstance(failure, _CONNECT_ERRORS):
                raise failure
            if self.is_current(io):
                del self._links[io.link_id]
                io.closed = True
                self.events.down(io.link_id, io.conn, _reason(failure))
            return
        if not self.is_current(io):
            for client in clients:
                client.close()
            return
        cmd = clients[0]
        io.cmd = cmd
        cmd.on_close = lambda exc, c=cmd: self._cmd_closed(io, c, exc)
        if len(clients) > 1:
            self._adopt_pubsub(io, clients[1])
        local = cmd.local_address
        self.events.up(io.link_id, io.conn, local[0] if local else None)

    def _adopt_pubsub(self, io: LinkIO, pubsub: Client) -> None:
        io.pubsub = pubsub
        io.pubsub_opened_at = asyncio.get_running_loop().time()
        pubsub.on_message = lambda msg: self._message(io, msg)
        pubsub.on_close = lambda exc, c=pubsub: self._pubsub_closed(io, c)

    # ------------------------------------------------------------------
    # Events from the connections
    # ------------------------------------------------------------------

    def _replied(self, action: Send, fut: asyncio.Future) -> None:
        if fut.cancelled() or fut.exception() is not None:
            return  # connection lost: reported by on_close
        self.events.reply(action, fut.result())

    def _message(self, io: LinkIO, msg: PubSubMessage) -> None:
        if self.is_current(io):
            self.events.message(io.link_id, io.conn, msg.channel, msg.data)

    def _cmd_closed(self, io: LinkIO, client: Client, exc: Exception | None) -> None:
        if not self.is_current(io) or io.cmd is not client:
            return
        del self._links[io.link_id]
        io.close()
        self.events.down(io.link_id, io.conn, _reason(exc) if exc else "Connection closed")

    def _pubsub_closed(self, io: LinkIO, client: Client) -> None:
        if not self.is_current(io) or io.pubsub is not client:
            return
        io.pubsub = None
        if io.pubsub_task is None or io.pubsub_task.done():
            loop = asyncio.get_running_loop()
            delay = max(0.0, io.pubsub_opened_at + PUBSUB_REOPEN_INTERVAL - loop.time())
            io.pubsub_task = loop.create_task(self._reopen_pubsub(io, delay))

    async def _reopen_pubsub(self, io: LinkIO, delay: float) -> None:
        """Re-open and re-SUBSCRIBE a dropped pub/sub connection, quietly:
        the command connection is fine and may carry important replies."""
        loop = asyncio.get_running_loop()
        while self.is_current(io):
            if delay > 0:
                await asyncio.sleep(delay)
            if not self.is_current(io):
                return
            io.pubsub_opened_at = loop.time()
            try:
                pubsub = await self._open_pubsub(io)
            except _CONNECT_ERRORS:
                delay = PUBSUB_REOPEN_INTERVAL
                continue
            if not self.is_current(io):
                pubsub.close()
                return
            if pubsub.closed:  # lost again right after subscribing
                delay = PUBSUB_REOPEN_INTERVAL
                continue
            self._adopt_pubsub(io, pubsub)
            # The subscription confirmation counts as pub/sub activity.
            self.events.message(io.link_id, io.conn, HELLO_CHANNEL, "")
            return


def _discard(tasks: list[asyncio.Task]) -> None:
    """Stop connection attempts, closing any that already succeeded."""
    for task in tasks:
        if not task.done():
            task.cancel()
        elif not task.cancelled() and task.exception() is None:
            task.result().close()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "Connection timed out"
    text = str(exc) or exc.__class__.__name__
    if isinstance(exc, ConnectionRefusedError):
        return "Connection refused"
    return text
