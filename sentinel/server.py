"""hakv-sentinel's process: the asyncio layer around SentinelState.

The sentinel is a RESP server built on the shared engine (common/server.py,
common/connection.py, common/dispatch.py) with its own command table
(table.py). Around it:

* a tick every `tick_interval` seconds drives `state.tick(now)` with a
  monotonic millisecond clock;
* `Links` (links.py) opens the connections the state asks for and reports
  link up/down, replies and hello messages back;
* every list of actions the state returns is carried out by `perform`:
  FlushConfig first and synchronously (so a vote is on disk before any byte
  of the same step leaves the process, reply or request), then the rest in
  order: sends, events (logged and published on our own pub/sub), logs,
  connects, scripts.
"""
from __future__ import annotations

import asyncio
import os
import signal as signal_module
import time
import traceback
from collections.abc import Callable, Iterable

from hakv.common.config import Settings
from hakv.common.server import Server

from .actions import (
    Action,
    CommandResult,
    Connect,
    Disconnect,
    Event,
    Exit,
    FlushConfig,
    KillScript,
    Log,
    LogLevel,
    RunScript,
    Send,
)
from .config import SentinelConfig, rewrite_config_file
from .links import LinkEvents, Links
from .state import SentinelState
from .table import sentinel_table

DEFAULT_TICK_INTERVAL = 0.025  # seconds; Redis runs its sentinel timer at ~10 Hz

_LEVEL_NAMES = {
    LogLevel.DEBUG: "debug",
    LogLevel.VERBOSE: "verbose",
    LogLevel.NOTICE: "notice",
    LogLevel.WARNING: "warning",
}

# Sections a sentinel's INFO knows, in Redis's order (others are ignored).
INFO_SECTIONS = ("server", "clients", "stats", "cpu", "sentinel")


def now_ms() -> int:
    """The state machine's clock: monotonic milliseconds."""
    return int(time.monotonic() * 1000)


def _settings_for(config: SentinelConfig, config_path: str) -> Settings:
    """The shared engine's settings, filled from sentinel.conf."""
    settings = Settings()
    settings.config_file = config_path
    settings.store("port", config.port, notify=False)
    if config.bind:
        settings.store("bind", list(config.bind), notify=False)
    settings.store("requirepass", config.requirepass or "", notify=False)
    level = config.loglevel if config.loglevel != "nothing" else "warning"
    settings.store("loglevel", level, notify=False)
    settings.store("logfile", config.logfile, notify=False)
    settings.store("protected-mode", config.protected_mode, notify=False)
    settings.store("databases", 1, notify=False)  # a sentinel holds no data
    return settings


class SentinelServer(Server):
    role_char = "X"

    def __init__(self, config: SentinelConfig, config_path: str, *,
                 tick_interval: float = DEFAULT_TICK_INTERVAL):
        super().__init__(_settings_for(config, config_path), table=sentinel_table)
        if config.loglevel == "nothing":
            self.log_level = 99
        self.config_path = config_path
        self.tick_interval = tick_interval
        # resolve-hostnames yes: names (compose service names) go through the
        # system resolver; otherwise only IP literals, as Redis does.
        resolver = _resolve_host if config.resolve_hostnames else None
        self.state = SentinelState(config, now_ms(), resolver=resolver)
        self.links = Links(
            LinkEvents(up=self._link_up, down=self._link_down, reply=self._reply,
                       message=self._message),
            self.log,
            source_addr=config.bind_source_addr,
        )
        self._tick_handle: asyncio.TimerHandle | None = None
        self._scripts: dict[int, asyncio.subprocess.Process] = {}
        self._stopping = False

    # ------------------------------------------------------------------
    # Lifecycle
    # ------------------------------------------------------------------

    async def start(self) -> None:
        await super().start()
        self.state.port = self.port  # the real one when the config said port 0
        self.log("notice", "Running mode=sentinel, port=%d." % self.port)
        self._drive(self.state.start, now_ms())
        self._tick_handle = self.loop.call_later(self.tick_interval, self._tick)

    def mode_name(self) -> str:
        return "sentinel"

    def now_ms(self) -> int:
        return now_ms()

    def shutdown(self, save: bool | None = None):
        """SHUTDOWN / SIGTERM: save the state to sentinel.conf, close
        everything, and end serve_forever right away."""
        if self._stopping:
            return None
        self._stopping = True
        self.log("warning", "User requested shutdown...")
        if self._tick_handle is not None:
            self._tick_handle.cancel()
        self._flush_config()
        self.links.close_all()
        for srv in self.servers:
            srv.close()
        for client in list(self.clients.values()):
            client.flush()
            client.close()
        self.log("warning", "Sentinel is now ready to exit, bye bye...")
        self.request_shutdown(0)
        return None

    # ------------------------------------------------------------------
    # Driving the state machine
    # ------------------------------------------------------------------

    def _tick(self) -> None:
        try:
            self._drive(self.state.tick, now_ms())
        finally:
            if not self._stopping:
                self._tick_handle = self.loop.call_later(self.tick_interval, self._tick)

    def _drive(self, entry: Callable[..., list[Action]], *args) -> None:
        """Call one state entry point and perform what it returns. A bug in
        the state machine is logged, not allowed to stop the event loop."""
        if self._stopping:
            return
        try:
            actions = entry(*args)
        except Exception:
            self.log("warning", "Sentinel internal error in %s:\n%s"
                     % (getattr(entry, "__name__", entry), traceback.format_exc().rstrip()))
            return
        self.perform(actions)

    def _link_up(self, link_id: int, conn: int, local_ip: str | None) -> None:
        self._drive(self.state.on_link_up, link_id, conn, now_ms(), local_ip)

    def _link_down(self, link_id: int, conn: int, reason: str) -> None:
        self._drive(self.state.on_link_down, link_id, conn, now_ms(), reason)

    def _reply(self, send: Send, reply: object) -> None:
        self._drive(self.state.on_reply, send, reply, now_ms())

    def _message(self, link_id: int, conn: int, channel: object, payload: object) -> None:
        self._drive(self.state.on_pubsub_message, link_id, conn, channel, payload, now_ms())

    def complete(self, result: CommandResult) -> object:
        """Carry out a client command's actions; the reply to send."""
        flush_failed = self.perform(result.actions)
        if flush_failed and result.reply_on_flush_error is not None:
            return result.reply_on_flush_error
        return result.reply

    def perform(self, actions: Iterable[Action]) -> bool:
        """Carry out actions; True if a config flush among them failed."""
        actions = list(actions)
        if not actions:
            return False
        flush_failed = False
        if any(type(a) is FlushConfig for a in actions):
            # The state is final for this step: save it before anything leaves.
            flush_failed = not self._flush_config()
        links = self.links
        for action in actions:
            kind = type(action)
            if kind is Send:
                links.send(action)
            elif kind is Event:
                self._event(action)
            elif kind is Log:
                self.log(_LEVEL_NAMES[action.level], action.text)
            elif kind is Connect:
                links.connect(action)
            elif kind is Disconnect:
                links.disconnect(action)
            elif kind is RunScript:
                self.loop.create_task(self._run_script(action))
            elif kind is KillScript:
                self._kill_script(action)
            elif kind is Exit:
                self.log("warning", "Sentinel exiting with code %d (simulated failure)" % action.code)
                os._exit(action.code)
        return flush_failed

    def _flush_config(self) -> bool:
        try:
            rewrite_config_file(self.config_path, self.state.to_config())
        except OSError as exc:
            for log in self.state.on_flush_failed(now_ms(), str(exc)):
                if isinstance(log, Log):
                    self.log(_LEVEL_NAMES[log.level], log.text)
            return False
        self.log("notice", "Sentinel new configuration saved on disk")
        return True

    def _event(self, event: Event) -> None:
        self.log(_LEVEL_NAMES[event.level], event.log_line)
        if event.level != LogLevel.DEBUG:
            self.publish(event.type.encode(), event.message.encode("utf-8", "surrogateescape"))

    # ------------------------------------------------------------------
    # Scripts (notification-script, client-reconfig-script)
    # ------------------------------------------------------------------

    async def _run_script(self, action: RunScript) -> None:
        try:
            proc = await asyncio.create_subprocess_exec(*action.argv, stdin=asyncio.subprocess.DEVNULL)
        except OSError as exc:
            self.log("warning", "Can't start script %s: %s" % (action.argv[0], exc))
            self._drive(self.state.on_script_exited, action.job_id, 2, 0, now_ms())
            return
        self._scripts[action.job_id] = proc
        self._drive(self.state.on_script_started, action.job_id, proc.pid, now_ms())
        code = await proc.wait()
        self._scripts.pop(action.job_id, None)
        exitcode, sig = (0, -code) if code < 0 else (code, 0)
        self._drive(self.state.on_script_exited, action.job_id, exitcode, sig, now_ms())

    def _kill_script(self, action: KillScript) -> None:
        proc = self._scripts.get(action.job_id)
        if proc is not None and proc.returncode is None and proc.pid == action.pid:
            try:
                proc.send_signal(signal_module.SIGKILL)
            except ProcessLookupError:
                pass

    # ------------------------------------------------------------------
    # INFO
    # ------------------------------------------------------------------

    def info(self, sections: list[str]) -> bytes:
        want = {s.lower() for s in sections} or {"default"}
        every = bool(want & {"default", "all", "everything"})
        parts = []
        for name in INFO_SECTIONS:
            if not (every or name in want):
                continue
            if name == "sentinel":
                parts.append(self.state.info_section(now_ms()) + "\r\n")
                continue
            lines = self._info_section(name)
            title = "CPU" if name == "cpu" else name.capitalize()
            body = "".join("%s:%s\r\n" % kv for kv in lines)
            parts.append("# %s\r\n%s" % (title, body))
        return "\r\n".join(parts).encode()


def _resolve_host(host: str):
    from hakv.sentinel.state import resolve_literal
    import socket
    literal = resolve_literal(host)
    if literal is not None:
        return literal
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return None
    infos.sort(key=lambda info: info[0] != socket.AF_INET)  # IPv4 first
    return infos[0][4][0] if infos else None
