"""What the sentinel's state machine asks the I/O layer to do.

`SentinelState` (state.py) never touches a socket, a file or a clock. Every
entry point takes `now_ms` and returns a list of the actions below, which the
asyncio layer (sentinel/server.py) carries out *in order*.

Links
-----
A *link* is the sentinel's connection to one monitored process, named by an
integer `link_id` that the state machine allocates:

* kind REDIS (a master or a replica): a command connection **and** a pub/sub
  connection that SUBSCRIBEs to ``__sentinel__:hello``. The link is up when
  both are; `on_link_down` is reported when the *command* connection fails
  (or the initial connect of either fails). If only the established pub/sub
  connection drops later, re-open and re-SUBSCRIBE it quietly (at most once
  per second): the failover leader's ``CLIENT KILL TYPE pubsub`` does that
  to every sentinel routinely, and the command connection may still carry
  the reply that confirms a promotion. A pub/sub side that stays silent is
  caught by the state machine (no hello seen for 6 s -> Disconnect).
* kind SENTINEL (another sentinel): a command connection only. Links to the
  same sentinel process are shared between the masters it watches.

Every `Connect` carries a fresh `conn` serial. The I/O layer echoes it back in
`on_link_up` / `on_link_down` and it is copied into every `Send`, so a late
event from an old connection is recognised and ignored.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, IntEnum

HELLO_CHANNEL = "__sentinel__:hello"


class LogLevel(IntEnum):
    """Redis's log levels; events at DEBUG are logged only, never published."""

    DEBUG = 0
    VERBOSE = 1
    NOTICE = 2
    WARNING = 3


class LinkKind(str, Enum):
    REDIS = "redis"  # master or replica: command + pub/sub connection
    SENTINEL = "sentinel"  # another sentinel: command connection only


class Purpose(str, Enum):
    """Why a command was sent; decides what `on_reply` does with the answer."""

    PING = "ping"
    INFO = "info"
    HELLO = "hello"  # PUBLISH __sentinel__:hello <payload>
    IS_MASTER_DOWN = "is-master-down"  # SENTINEL is-master-down-by-addr ...
    DISCARD = "discard"  # MULTI/SLAVEOF/CONFIG REWRITE/CLIENT KILL/EXEC, SCRIPT KILL


@dataclass(frozen=True, slots=True)
class Connect:
    """Open the link (both connections for REDIS) to host:port.

    After connecting, send AUTH when `auth_pass` is set (``AUTH pass`` or
    ``AUTH user pass``) and ``CLIENT SETNAME`` with `client_name_cmd` /
    `client_name_pubsub` on the respective connection (replies discarded,
    exactly as Redis does), then SUBSCRIBE the pub/sub connection to
    ``__sentinel__:hello``. Report `on_link_up(link_id, conn, now, local_ip)`
    when usable, `on_link_down(...)` on failure. Use a connect timeout of about
    one second so a black-holed address is retried like a refused one.
    `renames` maps upper-case command names to the names configured with
    ``sentinel rename-command`` (use `command_name`).
    """

    link_id: int
    conn: int
    kind: LinkKind
    host: str
    port: int
    auth_user: str | None
    auth_pass: str | None
    client_name_cmd: str
    client_name_pubsub: str | None
    renames: tuple[tuple[str, str], ...] = ()

    def command_name(self, name: str) -> str:
        for original, renamed in self.renames:
            if original == name.upper():
                return renamed
        return name


@dataclass(frozen=True, slots=True)
class Disconnect:
    """Close the link. Report nothing more for that `conn` afterwards."""

    link_id: int
    conn: int


@dataclass(frozen=True, slots=True)
class Send:
    """Write `argv` on the link's command connection.

    Call `on_reply(send, reply, now)` with the decoded reply (str/bytes, int,
    list, None) or an exception instance for an error reply. Replies still
    pending when the connection dies are simply never reported: the
    `on_link_down` says enough. Sends for one link must go out in order
    (a SLAVEOF transaction is six consecutive sends).
    """

    link_id: int
    conn: int
    argv: tuple[str, ...]
    purpose: Purpose
    target: int  # instance id (iid) the reply is about
    master: str  # master name whose context this command belongs to


@dataclass(frozen=True, slots=True)
class Event:
    """A Sentinel event: log ``"<type> <message>"`` at `level`, and unless the
    level is DEBUG publish `message` on the sentinel's own pub/sub channel
    `type` (clients SUBSCRIBE to ``+switch-master`` and friends)."""

    type: str
    message: str
    level: LogLevel = LogLevel.WARNING

    @property
    def log_line(self) -> str:
        return f"{self.type} {self.message}"


@dataclass(frozen=True, slots=True)
class Log:
    """A plain log line (not published)."""

    level: LogLevel
    text: str


@dataclass(frozen=True, slots=True)
class FlushConfig:
    """Rewrite sentinel.conf now from `state.to_config()` (atomically, fsync).

    Must complete *before* any reply produced by the same call is written:
    a vote must be on disk before the voter answers. Report a failure with
    `state.on_flush_failed(now)` (it only logs; Redis carries on too)."""


@dataclass(frozen=True, slots=True)
class RunScript:
    """Start `argv[0]` with arguments `argv[1:]` (no shell). Report
    `on_script_started(job_id, pid, now)`, then
    `on_script_exited(job_id, exitcode, signal, now)`. If it cannot be
    started at all report `on_script_exited(job_id, 2, 0, now)`."""

    job_id: int
    argv: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class KillScript:
    """SIGKILL a script that ran too long (its exit is reported as usual)."""

    job_id: int
    pid: int


@dataclass(frozen=True, slots=True)
class Exit:
    """SENTINEL SIMULATE-FAILURE asked this sentinel to crash: log and exit
    the process with `code` right away (Redis exits with 99)."""

    code: int = 99


Action = Connect | Disconnect | Send | Event | Log | FlushConfig | RunScript | KillScript | Exit


@dataclass(slots=True)
class CommandResult:
    """What a client command produces: the reply value plus actions.

    Perform `actions` first (they may include FlushConfig). If a FlushConfig
    from this command failed and `reply_on_flush_error` is set, send that
    reply instead of `reply`."""

    reply: object
    actions: list[Action] = field(default_factory=list)
    reply_on_flush_error: object | None = None
