"""The replica's side of the replication handshake, as an I/O-free state machine.

Redis 7's order: PING (alone, to see the primary is alive), then AUTH,
REPLCONF listening-port, REPLCONF ip-address and REPLCONF capa eof capa psync2
sent together, their replies read in order, then PSYNC <replid> <offset>
(or `PSYNC ? -1` without a history to continue), whose reply decides between
a full sync (+FULLRESYNC <replid> <offset>) and a partial one
(+CONTINUE [<new replid>]).

Drive it with `start()` (bytes to send first) and `on_line(line)` for each
reply line (without the line ending; the primary's keepalive empty lines are
skipped by the caller or here). Each call returns a Step: bytes to send next,
messages to log, and, when the handshake ends, `result`, or `error`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hakv.common.resp import encode_command


@dataclass
class PsyncResult:
    kind: str  # "full" | "continue"
    replid: str | None = None  # full: the primary's id; continue: its new id or None
    offset: int = -1  # full: the offset the snapshot stands for


@dataclass
class Step:
    send: bytes = b""
    logs: list = field(default_factory=list)  # (level, message)
    result: PsyncResult | None = None
    error: str | None = None  # the handshake failed; retry later
    retry_later: bool = False  # the primary can't sync now (it has no link / is loading)


class Handshake:
    def __init__(self, *, listening_port: int, announce_ip: str = "", auth_user: str = "",
                 auth_pass: str = "", replid: str | None = None, offset: int = -1,
                 failover: bool = False):
        """replid/offset: the history this replica can continue (its last
        processed offset), or None for no usable history. failover: we are a
        primary handing over to this one (FAILOVER): PSYNC says so."""
        self.listening_port = listening_port
        self.announce_ip = announce_ip
        self.auth_user = auth_user
        self.auth_pass = auth_pass
        self.replid = replid
        self.offset = offset
        self.failover = failover
        self.expect: list[str] = []
        self.done = False

    def start(self) -> bytes:
        self.expect = ["ping"]
        return encode_command(b"PING")

    def on_line(self, line: str) -> Step:
        if not line:
            return Step()  # keepalive newline from the primary
        if not self.expect:
            return Step(error="Unexpected reply from MASTER during handshake: '%s'" % line)
        what = self.expect.pop(0)
        return getattr(self, "_on_" + what)(line)

    # -- replies

    def _on_ping(self, line: str) -> Step:
        if line.startswith("-") and not (
            line.startswith("-NOAUTH") or line.startswith("-NOPERM")
            or line.startswith("-ERR operation not permitted")
        ):
            return Step(error="Error reply to PING from master: '%s'" % line[1:])
        step = Step(logs=[("notice", "Master replied to PING, replication can continue...")])
        out = []
        if self.auth_pass:
            if self.auth_user:
                out.append(encode_command(b"AUTH", self.auth_user.encode(),
                                          self.auth_pass.encode()))
            else:
                out.append(encode_command(b"AUTH", self.auth_pass.encode()))
            self.expect.append("auth")
        out.append(encode_command(b"REPLCONF", b"listening-port",
                                  str(self.listening_port).encode()))
        self.expect.append("port")
        if self.announce_ip:
            out.append(encode_command(b"REPLCONF", b"ip-address", self.announce_ip.encode()))
            self.expect.append("ip")
        out.append(encode_command(b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"))
        self.expect.append("capa")
        step.send = b"".join(out)
        return step

    def _on_auth(self, line: str) -> Step:
        if line.startswith("-"):
            return Step(error="Unable to AUTH to MASTER: %s" % line[1:])
        return Step()

    def _non_critical(self, line: str, what: str) -> Step:
        step = Step()
        if line.startswith("-"):
            step.logs.append(("notice", "(Non critical) Master does not understand REPLCONF %s: %s"
                              % (what, line[1:])))
        if not self.expect:
            step.send, log = self._psync()
            step.logs.append(("notice", log))
        return step

    def _on_port(self, line: str) -> Step:
        return self._non_critical(line, "listening-port")

    def _on_ip(self, line: str) -> Step:
        return self._non_critical(line, "ip-address")

    def _on_capa(self, line: str) -> Step:
        return self._non_critical(line, "capa")

    def _psync(self):
        self.expect.append("psync")
        extra = (b"FAILOVER",) if self.failover else ()
        if self.replid is not None:
            off = str(self.offset + 1)
            return (encode_command(b"PSYNC", self.replid.encode(), off.encode(), *extra),
                    "Trying a partial resynchronization (request %s:%s)." % (self.replid, off))
        return (encode_command(b"PSYNC", b"?", b"-1", *extra),
                "Partial resynchronization not possible (no cached master)")

    def _on_psync(self, line: str) -> Step:
        self.done = True
        if line.startswith("+FULLRESYNC"):
            parts = line.split()
            if len(parts) != 3 or len(parts[1]) != 40 or not _is_int(parts[2]):
                return Step(error="Master replied with wrong +FULLRESYNC syntax.")
            return Step(result=PsyncResult("full", parts[1], int(parts[2])),
                        logs=[("notice", "Full resync from master: %s:%s" % (parts[1], parts[2]))])
        if line.startswith("+CONTINUE"):
            parts = line.split()
            new_id = parts[1] if len(parts) > 1 and len(parts[1]) == 40 else None
            return Step(result=PsyncResult("continue", new_id),
                        logs=[("notice", "Successful partial resynchronization with master.")])
        if line.startswith("-NOMASTERLINK") or line.startswith("-LOADING"):
            return Step(retry_later=True,
                        error="Master is currently unable to PSYNC but should be in the "
                              "future: %s" % line[1:])
        if line.startswith("-"):
            return Step(error="Unexpected reply to PSYNC from master: %s" % line[1:])
        return Step(error="Unexpected reply to PSYNC from master: %s" % line)


def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()
