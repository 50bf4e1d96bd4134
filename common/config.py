"""Node configuration: redis.conf and `--directive value` flags, validated by
pydantic, with Redis's error texts; CONFIG GET / SET / REWRITE build on it.

Every directive is one row of DIRECTIVES: its kind, default, whether CONFIG
SET may change it, and aliases (slaveof = replicaof ...). The pydantic model
`NodeConfig` is generated from the table, so a directive is declared once.
Directives Redis knows but hakv does not act on are accepted and kept
(IGNORED), so a real redis.conf loads; unknown ones fail like Redis does.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from hakv.common.resp import split_args

REDIS_VERSION = "7.0.15"


class ConfigError(Exception):
    """A bad value; the message is Redis's reason text."""


# ----------------------------------------------------------------- kinds


def parse_memory(text: str) -> int:
    """'1gb' / '100mb' / '512k' / '42' -> bytes (Redis's memtoull)."""
    m = re.fullmatch(r"(-?\d+)([kmg]b?)?", text.strip().lower())
    if not m:
        raise ConfigError("argument must be a memory value")
    n = int(m.group(1))
    unit = m.group(2) or ""
    mult = {
        "": 1, "k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2, "g": 1000**3, "gb": 1024**3,
    }[unit]
    return n * mult


def _int(text: str) -> int:
    if not re.fullmatch(r"-?\d+", text.strip()):
        raise ConfigError("argument couldn't be parsed into an integer")
    return int(text)


def _bool(text: str) -> bool:
    t = text.lower()
    if t == "yes":
        return True
    if t == "no":
        return False
    raise ConfigError("argument must be 'yes' or 'no'")


def _save(args: list[str]) -> list[tuple[int, int]]:
    if len(args) == 1 and args[0] == "":
        return []
    if len(args) % 2:
        raise ConfigError("Invalid save parameters")
    points = []
    for i in range(0, len(args), 2):
        try:
            seconds, changes = int(args[i]), int(args[i + 1])
        except ValueError:
            raise ConfigError("Invalid save parameters") from None
        if seconds < 1 or changes < 0:
            raise ConfigError("Invalid save parameters")
        points.append((seconds, changes))
    return points


NOTIFY_FLAGS = "KEg$lshzxetmdnA"


def _notify(text: str) -> str:
    for c in text:
        if c not in NOTIFY_FLAGS:
            raise ConfigError("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")
    return text


@dataclass
class Directive:
    name: str
    kind: str  # int memory bool str enum save notify replicaof list
    default: Any
    mutable: bool = True
    choices: tuple = ()
    minimum: int | None = None
    maximum: int | None = None
    aliases: tuple = ()
    multi: bool = False  # may appear several times (user, rename-command)

    def parse(self, args: list[str]):
        kind = self.kind
        if kind == "save":
            return _save(args)
        if kind == "list":
            return list(args)
        if kind == "replicaof":
            if len(args) == 2 and args[0].lower() == "no" and args[1].lower() == "one":
                return None
            if len(args) != 2:
                raise ConfigError("wrong number of arguments")
            return (args[0], _int(args[1]))
        if len(args) != 1:
            raise ConfigError("wrong number of arguments")
        text = args[0]
        if kind == "int":
            value = _int(text)
        elif kind == "memory":
            value = parse_memory(text)
        elif kind == "bool":
            return _bool(text)
        elif kind == "enum":
            t = text.lower()
            if t not in self.choices:
                raise ConfigError(
                    "argument(s) must be one of the following: " + ", ".join(self.choices)
                )
            return t
        elif kind == "notify":
            return _notify(text)
        else:
            return text
        if self.minimum is not None and value < self.minimum or (
            self.maximum is not None and value > self.maximum
        ):
            raise ConfigError(
                "argument must be between %s and %s inclusive" % (self.minimum, self.maximum)
            )
        return value

    def format(self, value) -> str:
        kind = self.kind
        if kind == "bool":
            return "yes" if value else "no"
        if kind == "save":
            return " ".join("%d %d" % p for p in value)
        if kind == "list":
            return " ".join(value)
        if kind == "replicaof":
            return "" if value is None else "%s %d" % value
        return str(value)


_D = Directive
DIRECTIVES = [
    _D("port", "int", 6379, minimum=0, maximum=65535),
    _D("bind", "list", ["*", "-::*"]),
    _D("protected-mode", "bool", True),
    _D("databases", "int", 16, mutable=False, minimum=1, maximum=2**31 - 1),
    _D("requirepass", "str", ""),
    _D("masterauth", "str", ""),
    _D("masteruser", "str", ""),
    _D("timeout", "int", 0, minimum=0),
    _D("tcp-keepalive", "int", 300, minimum=0),
    _D("tcp-backlog", "int", 511, mutable=False),
    _D("maxclients", "int", 10000, minimum=1),
    _D("dir", "str", ""),
    _D("dbfilename", "str", "dump.rdb"),
    _D("save", "save", [(3600, 1), (300, 100), (60, 10000)]),
    _D("rdbcompression", "bool", True),
    _D("rdbchecksum", "bool", True),
    _D("stop-writes-on-bgsave-error", "bool", True),
    _D("appendonly", "bool", False),
    _D("appendfilename", "str", "appendonly.aof", mutable=False),
    _D("appenddirname", "str", "appendonlydir", mutable=False),
    _D("appendfsync", "enum", "everysec", choices=("always", "everysec", "no")),
    _D("auto-aof-rewrite-percentage", "int", 100, minimum=0),
    _D("auto-aof-rewrite-min-size", "memory", 64 * 1024**2),
    _D("aof-load-truncated", "bool", True),
    _D("aof-use-rdb-preamble", "bool", True),
    _D("aof-timestamp-enabled", "bool", False),
    _D("replicaof", "replicaof", None, aliases=("slaveof",)),
    _D("replica-read-only", "bool", True, aliases=("slave-read-only",)),
    _D("replica-serve-stale-data", "bool", True, aliases=("slave-serve-stale-data",)),
    _D("replica-priority", "int", 100, minimum=0, aliases=("slave-priority",)),
    _D("replica-announce-ip", "str", "", aliases=("slave-announce-ip",)),
    _D("replica-announce-port", "int", 0, minimum=0, maximum=65535,
       aliases=("slave-announce-port",)),
    _D("replica-announced", "bool", True),
    _D("replica-lazy-flush", "bool", False, aliases=("slave-lazy-flush",)),
    _D("replica-ignore-maxmemory", "bool", True, aliases=("slave-ignore-maxmemory",)),
    _D("repl-backlog-size", "memory", 1024 * 1024, minimum=1),
    _D("repl-backlog-ttl", "int", 3600, minimum=0),
    _D("repl-timeout", "int", 60, minimum=1),
    _D("repl-ping-replica-period", "int", 10, minimum=1, aliases=("repl-ping-slave-period",)),
    _D("repl-diskless-sync", "bool", True),
    _D("repl-diskless-sync-delay", "int", 5, minimum=0),
    _D("repl-diskless-sync-max-replicas", "int", 0, minimum=0),
    _D("repl-diskless-load", "enum", "disabled", choices=("disabled", "on-empty-db", "swapdb")),
    _D("repl-disable-tcp-nodelay", "bool", False),
    _D("min-replicas-to-write", "int", 0, minimum=0, aliases=("min-slaves-to-write",)),
    _D("min-replicas-max-lag", "int", 10, minimum=0, aliases=("min-slaves-max-lag",)),
    _D("maxmemory", "memory", 0, minimum=0),
    _D("maxmemory-policy", "enum", "noeviction", choices=(
        "volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl", "allkeys-lru",
        "allkeys-lfu", "allkeys-random", "noeviction")),
    _D("maxmemory-samples", "int", 5, minimum=1, maximum=64),
    _D("maxmemory-eviction-tenacity", "int", 10, minimum=0, maximum=100),
    _D("lfu-log-factor", "int", 10, minimum=0),
    _D("lfu-decay-time", "int", 1, minimum=0),
    _D("notify-keyspace-events", "notify", ""),
    _D("hz", "int", 10, minimum=0),
    _D("loglevel", "enum", "notice", choices=("debug", "verbose", "notice", "warning")),
    _D("logfile", "str", "", mutable=False),
    _D("pidfile", "str", "", mutable=False),
    _D("daemonize", "bool", False, mutable=False),
    _D("proto-max-bulk-len", "memory", 512 * 1024**2, minimum=1024 * 1024),
    _D("client-query-buffer-limit", "memory", 1024**3, minimum=1024 * 1024),
    _D("busy-reply-threshold", "int", 5000, minimum=0, aliases=("lua-time-limit",)),
    _D("slowlog-log-slower-than", "int", 10000),
    _D("slowlog-max-len", "int", 128, minimum=0),
    _D("latency-monitor-threshold", "int", 0, minimum=0),
    _D("list-max-listpack-size", "int", -2, aliases=("list-max-ziplist-size",)),
    _D("list-compress-depth", "int", 0, minimum=0),
    _D("hash-max-listpack-entries", "int", 128, minimum=0,
       aliases=("hash-max-ziplist-entries",)),
    _D("hash-max-listpack-value", "int", 64, minimum=0, aliases=("hash-max-ziplist-value",)),
    _D("set-max-intset-entries", "int", 512, minimum=0),
    _D("zset-max-listpack-entries", "int", 128, minimum=0,
       aliases=("zset-max-ziplist-entries",)),
    _D("zset-max-listpack-value", "int", 64, minimum=0, aliases=("zset-max-ziplist-value",)),
    _D("enable-debug-command", "enum", "no", mutable=False, choices=("no", "yes", "local")),
    _D("enable-protected-configs", "enum", "no", mutable=False,
       choices=("no", "yes", "local")),
    _D("aclfile", "str", "", mutable=False),
    _D("acllog-max-len", "int", 128, minimum=0),
    _D("user", "list", [], mutable=False, multi=True),
    _D("rename-command", "list", [], mutable=False, multi=True),
    _D("include", "list", [], mutable=False, multi=True),
    _D("lazyfree-lazy-eviction", "bool", False),
    _D("lazyfree-lazy-expire", "bool", False),
    _D("lazyfree-lazy-server-del", "bool", False),
    _D("lazyfree-lazy-user-del", "bool", False),
    _D("lazyfree-lazy-user-flush", "bool", False),
    _D("activerehashing", "bool", True),
    _D("io-threads", "int", 1, mutable=False, minimum=1),
    _D("supervised", "enum", "no", mutable=False, choices=("upstart", "systemd", "auto", "no")),
    _D("always-show-logo", "bool", False, mutable=False),
    _D("set-proc-title", "bool", True, mutable=False),
    _D("unixsocket", "str", "", mutable=False),
    _D("unixsocketperm", "int", 0, mutable=False),
    _D("rdb-del-sync-files", "bool", False),
    _D("active-expire-effort", "int", 1, minimum=1, maximum=10),
    _D("client-output-buffer-limit", "list", [], multi=True),
    _D("syslog-enabled", "bool", False, mutable=False),
    _D("crash-log-enabled", "bool", True),
    _D("jemalloc-bg-thread", "bool", True),
    _D("oom-score-adj", "str", "no"),
    _D("disable-thp", "bool", True, mutable=False),
    _D("dynamic-hz", "bool", True),
    _D("rdb-save-incremental-fsync", "bool", True),
    _D("aof-rewrite-incremental-fsync", "bool", True),
    _D("no-appendfsync-on-rewrite", "bool", False),
    _D("lua-replicate-commands", "bool", True),
    _D("activedefrag", "bool", False),
    _D("stream-node-max-bytes", "memory", 4096),
    _D("stream-node-max-entries", "int", 100),
    _D("hll-sparse-max-bytes", "memory", 3000),
    _D("tracking-table-max-keys", "int", 1000000),
]

BY_NAME: dict[str, Directive] = {}
for _d in DIRECTIVES:
    BY_NAME[_d.name] = _d
    for _a in _d.aliases:
        BY_NAME[_a] = _d


def _field_name(name: str) -> str:
    return name.replace("-", "_")


NodeConfig = create_model(
    "NodeConfig",
    __config__=ConfigDict(validate_assignment=True, extra="forbid", arbitrary_types_allowed=True),
    **{_field_name(d.name): (Any, d.default) for d in DIRECTIVES},
)
NodeConfig.__doc__ = "Every setting of a hakv-server; field names are directives with '_'."


class Settings:
    """The live settings of a node: a NodeConfig plus where it came from."""

    def __init__(self):
        self.model = NodeConfig()
        self.config_file: str | None = None
        self.listeners: list = []  # callables(name, value) run after CONFIG SET

    def __getitem__(self, name: str):
        return getattr(self.model, _field_name(BY_NAME[name].name))

    def get(self, name: str):
        return self[name]

    def set(self, name: str, args: list[str], at_startup: bool = False) -> None:
        """Validate and set one directive; raises ConfigError with Redis's reason."""
        d = BY_NAME.get(name.lower())
        if d is None:
            raise KeyError(name)
        if not d.mutable and not at_startup:
            raise ConfigError("can't set immutable config")
        value = d.parse(args)
        if d.multi and at_startup:
            value = list(self[d.name]) + [" ".join(args)]
        elif d.multi:
            value = [" ".join(args)]
        try:
            setattr(self.model, _field_name(d.name), value)
        except ValidationError as exc:  # pragma: no cover - all values are Any today
            raise ConfigError(str(exc)) from None
        if not at_startup:
            for listener in self.listeners:
                listener(d.name, value)

    def formatted(self, name: str) -> str:
        d = BY_NAME[name]
        return d.format(self[d.name])

    def matching(self, pattern_match) -> list[tuple[str, str]]:
        out = []
        for d in DIRECTIVES:
            if d.multi:
                continue
            for n in (d.name,) + d.aliases:
                if pattern_match(n.encode()):
                    out.append((n, d.format(self[d.name])))
        return out


def fatal_config_error(line_no: int, line: str, reason: str) -> str:
    return (
        "\n*** FATAL CONFIG FILE ERROR (Redis %s) ***\n"
        "Reading the configuration file, at line %d\n>>> '%s'\n%s\n"
        % (REDIS_VERSION, line_no, line, reason)
    )


class FatalConfigError(Exception):
    pass


def load(settings: Settings, path: str | None, extra_lines: list[str]) -> None:
    """Load a redis.conf (if any), then the command-line options (which Redis
    treats as more config lines appended to the file)."""
    lines: list[str] = []
    if path:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            lines = f.read().split("\n")
        settings.config_file = os.path.abspath(path)
    lines += extra_lines
    for i, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        argv = split_args(line.encode("utf-8", "surrogateescape"))
        if argv is None:
            raise FatalConfigError(fatal_config_error(i, line, "Unbalanced quotes in configuration line"))
        if not argv:
            continue
        args = [a.decode("utf-8", "surrogateescape") for a in argv]
        name = args[0].lower()
        if name not in BY_NAME:
            raise FatalConfigError(
                fatal_config_error(i, line, "Bad directive or wrong number of arguments")
            )
        if len(args) == 1 and BY_NAME[name].kind != "save":
            raise FatalConfigError(fatal_config_error(i, line, "wrong number of arguments"))
        try:
            settings.set(name, args[1:], at_startup=True)
        except ConfigError as exc:
            raise FatalConfigError(fatal_config_error(i, line, str(exc))) from None


def argv_to_lines(argv: list[str]) -> tuple[str | None, list[str]]:
    """redis-server's command line: [config-file] [--directive value ...]."""
    path = None
    if argv and not argv[0].startswith("--"):
        path, argv = argv[0], argv[1:]
    lines: list[str] = []
    current: list[str] = []
    for arg in argv:
        if arg.startswith("--") and len(arg) > 2:
            if current:
                lines.append(" ".join(current))
            current = [arg[2:]]
        else:
            current.append(_quote(arg))
    if current:
        lines.append(" ".join(current))
    return path, lines


def _quote(arg: str) -> str:
    if arg == "":
        return '""'
    if re.fullmatch(r"[^\s\"'\\]+", arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def rewrite(settings: Settings) -> None:
    """CONFIG REWRITE: keep the file's lines and comments, replace the values of
    directives that changed, append the ones the file did not have."""
    path = settings.config_file
    if not path:
        raise ConfigError("The server is running without a config file")
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            old = f.read().split("\n")
    except FileNotFoundError:
        old = []
    seen: set[str] = set()
    out: list[str] = []
    for raw in old:
        line = raw.strip()
        if not line or line.startswith("#"):
            out.append(raw)
            continue
        name = shlex.split(line, posix=True)[0].lower() if line else ""
        d = BY_NAME.get(name)
        if d is None or d.multi:
            out.append(raw)
            continue
        if d.name in seen:
            continue
        seen.add(d.name)
        out.extend(_lines_for(settings, d))
    for d in DIRECTIVES:
        if d.name in seen or d.multi:
            continue
        if settings[d.name] != d.default:
            out.extend(_lines_for(settings, d))
    text = "\n".join(out).rstrip("\n") + "\n"
    tmp = path + ".tmp-%d" % os.getpid()
    with open(tmp, "w", encoding="utf-8", errors="surrogateescape") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _lines_for(settings: Settings, d: Directive) -> list[str]:
    value = settings[d.name]
    if d.kind == "save":
        if not value:
            return ['save ""']
        return ["save %d %d" % p for p in value]
    if d.kind == "replicaof":
        return [] if value is None else ["replicaof %s %d" % value]
    text = d.format(value)
    return ["%s %s" % (d.name, _quote(text) if d.kind != "list" else text)]
