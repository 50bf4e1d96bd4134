"""Node configuration: redis.conf and `--directive value` flags, validated by
pydantic, with Redis's error texts; CONFIG GET / SET / REWRITE build on it.

Every directive is one row of DIRECTIVES: its kind, default, bounds, whether
CONFIG SET may change it, and aliases (slaveof = replicaof ...). The pydantic
model `NodeConfig` is generated from the table, so a directive is declared
once. The table holds every directive Redis 7.0 lists in CONFIG GET, with
Redis's defaults, bounds and enum orders (they appear in error messages);
directives hakv does not act on are accepted and kept, so a real redis.conf
loads; unknown ones fail like Redis does.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model  # noqa: F401

from hakv.common.resp import split_args

REDIS_VERSION = "7.0.15"

INT_MIN, INT_MAX = -(2**31), 2**31 - 1
UINT_MAX = 2**32 - 1
LLONG_MIN, LLONG_MAX = -(2**63), 2**63 - 1
ULLONG_MAX = 2**64 - 1


class ConfigError(Exception):
    """A bad value; the message is Redis's reason text."""


# ----------------------------------------------------------------- kinds

_MEMORY_RE = re.compile(r"(\d+)([kmg]b?)?")
_MEMORY_UNITS = {
    "": 1, "k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2, "g": 1000**3, "gb": 1024**3,
}


def parse_memory(text: str) -> int:
    """'1gb' / '100mb' / '512k' / '42' -> bytes (Redis's memtoull: digits and
    an optional unit, nothing else)."""
    m = _MEMORY_RE.fullmatch(text.lower())
    if not m:
        raise ConfigError("argument must be a memory value")
    n = int(m.group(1)) * _MEMORY_UNITS[m.group(2) or ""]
    if n > ULLONG_MAX:
        raise ConfigError("argument must be a memory value")
    return n


_STRICT_INT_RE = re.compile(r"-?[1-9]\d*|0")


def _int(text: str) -> int:
    """Redis's string2ll: no sign but '-', no leading zeros, no spaces."""
    if not _STRICT_INT_RE.fullmatch(text) or len(text) > 20:
        raise ConfigError("argument couldn't be parsed into an integer")
    n = int(text)
    if not LLONG_MIN <= n <= LLONG_MAX:
        raise ConfigError("argument couldn't be parsed into an integer")
    return n


def _strtoll(text: str) -> int | None:
    """C strtoll with the whole string consumed: spaces, a sign, leading zeros."""
    m = re.fullmatch(r"\s*([+-]?\d+)", text)
    return int(m.group(1)) if m else None


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
        seconds, changes = _strtoll(args[i]), _strtoll(args[i + 1])
        if seconds is None or changes is None or seconds < 1 or changes < 0:
            raise ConfigError("Invalid save parameters")
        points.append((seconds, changes))
    return points


# notify-keyspace-events: classes in the order Redis prints them.
NOTIFY_FLAGS = "KEg$lshzxetdmnA"
_NOTIFY_ALL = "g$lshzxetd"


def _notify(text: str) -> str:
    for c in text:
        if c not in NOTIFY_FLAGS:
            raise ConfigError("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")
    return text


def notify_flags(text: str) -> set:
    """The event classes a notify-keyspace-events value enables ('A' expanded)."""
    flags = set(text)
    if "A" in flags:
        flags.discard("A")
        flags.update(_NOTIFY_ALL)
    return flags


def format_notify(text: str) -> str:
    """CONFIG GET's canonical form: 'A' when all classes are on (then 'n' is
    not shown, as in Redis), else the classes in order; then K, E, m."""
    flags = notify_flags(text)
    if set(_NOTIFY_ALL) <= flags:
        out = "A"
    else:
        out = "".join(c for c in _NOTIFY_ALL + "n" if c in flags)
    return out + "".join(c for c in "KEm" if c in flags)


_COBL_CLASSES = {"normal": "normal", "slave": "replica", "replica": "replica", "pubsub": "pubsub"}
COBL_DEFAULT = {"normal": (0, 0, 0), "replica": (256 * 1024**2, 64 * 1024**2, 60),
                "pubsub": (32 * 1024**2, 8 * 1024**2, 60)}


def _cobl(args: list[str], current: dict) -> dict:
    """client-output-buffer-limit <class> <hard> <soft> <seconds> [...]: updates
    the classes named, keeps the others."""
    if len(args) % 4:
        raise ConfigError("Wrong number of arguments in buffer limit configuration.")
    new = dict(current)
    for i in range(0, len(args), 4):
        cls = _COBL_CLASSES.get(args[i].lower())
        if cls is None:
            raise ConfigError("Invalid client class specified in buffer limit configuration.")
        try:
            hard, soft = parse_memory(args[i + 1]), parse_memory(args[i + 2])
        except ConfigError:
            hard = soft = None
        seconds = _strtoll(args[i + 3])
        if hard is None or seconds is None or seconds < 0:
            raise ConfigError("Error in hard, soft or soft_seconds setting in buffer limit "
                              "configuration.")
        new[cls] = (hard, soft, seconds)
    return new


def _format_cobl(value: dict) -> str:
    return " ".join("%s %d %d %d" % ((name,) + value[cls]) for name, cls in
                    (("normal", "normal"), ("slave", "replica"), ("pubsub", "pubsub")))


def _oom_values(args: list[str]) -> tuple:
    if len(args) != 3:
        raise ConfigError("wrong number of arguments")
    out = []
    for a in args:
        v = _strtoll(a)
        if v is None or not -2000 <= v <= 2000:
            raise ConfigError("Invalid oom-score-adj-values, elements must be between -2000 "
                              "and 2000.")
        out.append(v)
    return tuple(out)


def _percentiles(args: list[str]) -> list[float]:
    out = []
    for a in args:
        try:
            v = float(a)
        except ValueError:
            raise ConfigError("Invalid latency-tracking-info-percentiles parameters") from None
        if not 0.0 <= v <= 100.0:
            raise ConfigError("latency-tracking-info-percentiles parameters should sit between "
                              "[0.0,100.0]")
        out.append(v)
    return out


def _format_percentile(v: float) -> str:
    return ("%f" % v).rstrip("0").rstrip(".")


_SHUTDOWN_FLAGS = ("default", "save", "nosave", "now", "force")


def _shutdown_flags(args: list[str], choices: tuple) -> str:
    """shutdown-on-sigint/-sigterm: any of the flags, several at once; kept as
    Redis shows them (table order, "default" alone when no flag is set)."""
    words = {w.lower() for a in args for w in a.split(" ") if w}
    if not words or not words <= set(choices):
        raise ConfigError("argument(s) must be one of the following: " + ", ".join(choices))
    if "save" in words and "nosave" in words:
        raise ConfigError("shutdown options SAVE and NOSAVE can't be used simultaneously")
    return " ".join(c for c in choices[1:] if c in words) or "default"


def _memory_or_percent(text: str) -> int:
    """maxmemory-clients: bytes, or 'N%' of maxmemory (kept as -N, like Redis)."""
    if text.endswith("%"):
        n = _strtoll(text[:-1]) if re.fullmatch(r"\d+", text[:-1]) else None
        if n is None:
            raise ConfigError("argument must be a memory or percent value")
        if n > 100:
            raise ConfigError("percentage argument must be less or equal to 100")
        return -n
    try:
        return parse_memory(text)
    except ConfigError:
        raise ConfigError("argument must be a memory or percent value") from None


def _octal(text: str) -> int:
    if not re.fullmatch(r"[0-7]+", text):
        raise ConfigError("argument couldn't be parsed as an octal number")
    v = int(text, 8)
    if v > 0o777:
        raise ConfigError("argument must be between 0 and 777 inclusive")
    return v


def _basename(what: str, kind: str):
    def check(text: str) -> str:
        if "/" in text or "\\" in text:
            raise ConfigError("%s can't be a path, just a %s" % (what, kind))
        return text
    return check


def _hostname(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9.-]*", text):
        raise ConfigError("Hostnames may only contain alphanumeric characters, hyphens or dots")
    return text


_CHECKS = {
    "dbfilename": _basename("dbfilename", "filename"),
    "appendfilename": _basename("appendfilename", "filename"),
    "appenddirname": _basename("appenddirname", "dirname"),
    "cluster-announce-hostname": _hostname,
}

# Values Redis adjusts after accepting them.
_CLAMPS = {
    "hz": lambda v: min(max(v, 1), 500),
    "repl-backlog-size": lambda v: max(v, 16 * 1024),
}

# Directives whose value is all the words after the name (none is fine).
MULTI_ARG_KINDS = ("save", "list", "cobl", "oom", "percentiles", "shutdownflags")


@dataclass
class Directive:
    name: str
    kind: str  # int memory bool str enum save notify replicaof list cobl oom percentiles ...
    default: Any
    mutable: bool = True
    choices: tuple = ()
    minimum: int | None = None
    maximum: int | None = None
    aliases: tuple = ()
    multi: bool = False  # may appear several times (user, rename-command): not in CONFIG GET

    def parse(self, args: list[str], current=None):
        kind = self.kind
        if kind == "save":
            return _save(args)
        if kind == "list":
            return list(args)
        if kind == "cobl":
            return _cobl(args, current if current is not None else COBL_DEFAULT)
        if kind == "oom":
            return _oom_values(args)
        if kind == "percentiles":
            return _percentiles(args)
        if kind == "shutdownflags":
            return _shutdown_flags(args, self.choices)
        if kind == "replicaof":
            if len(args) != 2:
                raise ConfigError("wrong number of arguments")
            if args[0].lower() == "no" and args[1].lower() == "one":
                return None
            port = _strtoll(args[1])
            if port is None or not 0 <= port <= 65535:
                raise ConfigError("Invalid master port")
            return (args[0], port)
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
        elif kind == "mempct":
            return _memory_or_percent(text)
        elif kind == "octal":
            return _octal(text)
        else:
            check = _CHECKS.get(self.name)
            return check(text) if check else text
        lo = self.minimum if self.minimum is not None else LLONG_MIN
        hi = self.maximum if self.maximum is not None else LLONG_MAX
        if not lo <= value <= hi:
            raise ConfigError("argument must be between %d and %d inclusive" % (lo, hi))
        clamp = _CLAMPS.get(self.name)
        return clamp(value) if clamp else value

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
        if kind == "notify":
            return format_notify(value)
        if kind == "cobl":
            return _format_cobl(value)
        if kind == "oom":
            return "%d %d %d" % value
        if kind == "percentiles":
            return " ".join(_format_percentile(v) for v in value)
        if kind == "mempct":
            return "%d%%" % -value if value < 0 else str(value)
        if kind == "octal":
            return "%o" % value
        return str(value)


def _I(name, default, lo, hi, **kw):
    return Directive(name, "int", default, minimum=lo, maximum=hi, **kw)


def _M(name, default, lo=0, hi=LLONG_MAX, **kw):
    return Directive(name, "memory", default, minimum=lo, maximum=hi, **kw)


def _B(name, default, **kw):
    return Directive(name, "bool", default, **kw)


def _E(name, default, choices, **kw):
    return Directive(name, "enum", default, choices=tuple(choices.split(", ")), **kw)


def _S(name, default="", **kw):
    return Directive(name, "str", default, **kw)


_D = Directive
_YNL = "no, yes, local"
DIRECTIVES = [
    # network and clients
    _I("port", 6379, 0, 65535),
    _D("bind", "list", ["*", "-::*"]),
    _S("bind-source-addr"),
    _B("protected-mode", True),
    _I("tcp-backlog", 511, 0, INT_MAX, mutable=False),
    _S("unixsocket", mutable=False),
    _D("unixsocketperm", "octal", 0, mutable=False),
    _I("timeout", 0, 0, INT_MAX),
    _I("tcp-keepalive", 300, 0, INT_MAX),
    _I("socket-mark-id", 0, 0, UINT_MAX, mutable=False),
    _I("maxclients", 10000, 1, UINT_MAX),
    _D("client-output-buffer-limit", "cobl", COBL_DEFAULT),
    _M("client-query-buffer-limit", 1024**3, 1024**2),
    _M("proto-max-bulk-len", 512 * 1024**2, 1024**2),
    _I("io-threads", 1, 1, 128, mutable=False),
    _B("io-threads-do-reads", False, mutable=False),
    # general
    _I("databases", 16, 1, INT_MAX, mutable=False),
    _B("daemonize", False, mutable=False),
    _E("supervised", "no", "upstart, systemd, auto, no", mutable=False),
    _S("pidfile", mutable=False),
    _E("loglevel", "notice", "debug, verbose, notice, warning"),
    _S("logfile", mutable=False),
    _B("syslog-enabled", False, mutable=False),
    _S("syslog-ident", "redis", mutable=False),
    _E("syslog-facility", "local0", "user, local0, local1, local2, local3, local4, local5, "
       "local6, local7", mutable=False),
    _B("crash-log-enabled", True),
    _B("crash-memcheck-enabled", True),
    _B("always-show-logo", False, mutable=False),
    _B("set-proc-title", True, mutable=False),
    _S("proc-title-template", "{title} {listen-addr} {server-mode}"),
    _S("ignore-warnings"),
    _E("enable-protected-configs", "no", _YNL, mutable=False),
    _E("enable-debug-command", "no", _YNL, mutable=False),
    _E("enable-module-command", "no", _YNL, mutable=False),
    _D("shutdown-on-sigint", "shutdownflags", "default", choices=_SHUTDOWN_FLAGS),
    _D("shutdown-on-sigterm", "shutdownflags", "default", choices=_SHUTDOWN_FLAGS),
    _I("shutdown-timeout", 10, 0, INT_MAX),
    _S("server_cpulist", mutable=False),
    _S("bio_cpulist", mutable=False),
    _S("aof_rewrite_cpulist", mutable=False),
    _S("bgsave_cpulist", mutable=False),
    # snapshotting and AOF
    _D("save", "save", [(3600, 1), (300, 100), (60, 10000)]),
    _B("stop-writes-on-bgsave-error", True),
    _B("rdbcompression", True),
    _B("rdbchecksum", True, mutable=False),
    _S("dbfilename", "dump.rdb"),
    _B("rdb-del-sync-files", False),
    _S("dir"),
    _E("sanitize-dump-payload", "no", "no, yes, clients"),
    _B("appendonly", False),
    _S("appendfilename", "appendonly.aof", mutable=False),
    _S("appenddirname", "appendonlydir", mutable=False),
    _E("appendfsync", "everysec", "everysec, always, no"),
    _B("no-appendfsync-on-rewrite", False),
    _I("auto-aof-rewrite-percentage", 100, 0, INT_MAX),
    _M("auto-aof-rewrite-min-size", 64 * 1024**2),
    _B("aof-load-truncated", True),
    _B("aof-use-rdb-preamble", True),
    _B("aof-timestamp-enabled", False),
    _B("aof-disable-auto-gc", False),
    _B("aof-rewrite-incremental-fsync", True),
    _B("rdb-save-incremental-fsync", True),
    # replication
    _D("replicaof", "replicaof", None, mutable=False, aliases=("slaveof",)),
    _S("masterauth"),
    _S("masteruser"),
    _B("replica-serve-stale-data", True, aliases=("slave-serve-stale-data",)),
    _B("replica-read-only", True, aliases=("slave-read-only",)),
    _B("repl-diskless-sync", True),
    _I("repl-diskless-sync-delay", 5, 0, INT_MAX),
    _I("repl-diskless-sync-max-replicas", 0, 0, INT_MAX),
    _E("repl-diskless-load", "disabled", "disabled, on-empty-db, swapdb"),
    _I("repl-ping-replica-period", 10, 1, INT_MAX, aliases=("repl-ping-slave-period",)),
    _I("repl-timeout", 60, 1, INT_MAX),
    _B("repl-disable-tcp-nodelay", False),
    _M("repl-backlog-size", 1024 * 1024, 1),
    _I("repl-backlog-ttl", 3600, 0, LLONG_MAX),
    _I("replica-priority", 100, 0, INT_MAX, aliases=("slave-priority",)),
    _B("replica-announced", True),
    _I("min-replicas-to-write", 0, 0, INT_MAX, aliases=("min-slaves-to-write",)),
    _I("min-replicas-max-lag", 10, 0, INT_MAX, aliases=("min-slaves-max-lag",)),
    _S("replica-announce-ip", aliases=("slave-announce-ip",)),
    _I("replica-announce-port", 0, 0, 65535, aliases=("slave-announce-port",)),
    _B("replica-lazy-flush", False, aliases=("slave-lazy-flush",)),
    _B("replica-ignore-maxmemory", True, aliases=("slave-ignore-maxmemory",)),
    _B("replica-ignore-disk-write-errors", False),
    _E("propagation-error-behavior", "ignore", "ignore, panic, panic-on-replicas"),
    # security
    _S("requirepass"),
    _S("aclfile", mutable=False),
    _I("acllog-max-len", 128, 0, LLONG_MAX),
    _E("acl-pubsub-default", "resetchannels", "allchannels, resetchannels"),
    _D("user", "list", [], mutable=False, multi=True),
    _D("rename-command", "list", [], mutable=False, multi=True),
    _D("include", "list", [], mutable=False, multi=True),
    _D("loadmodule", "list", [], mutable=False, multi=True),
    # memory
    _M("maxmemory", 0, 0, ULLONG_MAX),
    _E("maxmemory-policy", "noeviction", "volatile-lru, volatile-lfu, volatile-random, "
       "volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction"),
    _I("maxmemory-samples", 5, 1, INT_MAX),
    _I("maxmemory-eviction-tenacity", 10, 0, 100),
    _D("maxmemory-clients", "mempct", 0),
    _I("lfu-log-factor", 10, 0, INT_MAX),
    _I("lfu-decay-time", 1, 0, INT_MAX),
    _B("lazyfree-lazy-eviction", False),
    _B("lazyfree-lazy-expire", False),
    _B("lazyfree-lazy-server-del", False),
    _B("lazyfree-lazy-user-del", False),
    _B("lazyfree-lazy-user-flush", False),
    _E("oom-score-adj", "no", "no, yes, relative, absolute"),
    _D("oom-score-adj-values", "oom", (0, 200, 800)),
    _B("disable-thp", True, mutable=False),
    _B("jemalloc-bg-thread", True),
    _B("activedefrag", False),
    _M("active-defrag-ignore-bytes", 100 * 1024**2, 1),
    _I("active-defrag-threshold-lower", 10, 0, 1000),
    _I("active-defrag-threshold-upper", 100, 0, 1000),
    _I("active-defrag-cycle-min", 1, 1, 99),
    _I("active-defrag-cycle-max", 25, 1, 99),
    _I("active-defrag-max-scan-fields", 1000, 1, LLONG_MAX),
    _B("activerehashing", True),
    # the event loop, scripts, monitoring
    _I("hz", 10, 0, INT_MAX),
    _B("dynamic-hz", True),
    _I("active-expire-effort", 1, 1, 10),
    _I("busy-reply-threshold", 5000, 0, LLONG_MAX, aliases=("lua-time-limit",)),
    _I("slowlog-log-slower-than", 10000, -1, LLONG_MAX),
    _I("slowlog-max-len", 128, 0, LLONG_MAX),
    _I("latency-monitor-threshold", 0, 0, LLONG_MAX),
    _B("latency-tracking", True),
    _D("latency-tracking-info-percentiles", "percentiles", [50.0, 99.0, 99.9]),
    _D("notify-keyspace-events", "notify", ""),
    _I("tracking-table-max-keys", 1000000, 0, LLONG_MAX),
    # encodings
    _I("hash-max-listpack-entries", 512, 0, LLONG_MAX, aliases=("hash-max-ziplist-entries",)),
    _M("hash-max-listpack-value", 64, aliases=("hash-max-ziplist-value",)),
    _I("list-max-listpack-size", -2, INT_MIN, INT_MAX, aliases=("list-max-ziplist-size",)),
    _I("list-compress-depth", 0, 0, INT_MAX),
    _I("set-max-intset-entries", 512, 0, LLONG_MAX),
    _I("zset-max-listpack-entries", 128, 0, LLONG_MAX, aliases=("zset-max-ziplist-entries",)),
    _M("zset-max-listpack-value", 64, aliases=("zset-max-ziplist-value",)),
    _M("hll-sparse-max-bytes", 3000),
    _M("stream-node-max-bytes", 4096),
    _I("stream-node-max-entries", 100, 0, LLONG_MAX),
    # cluster (accepted and kept: hakv has no cluster mode)
    _B("cluster-enabled", False, mutable=False),
    _S("cluster-config-file", "nodes.conf", mutable=False),
    _I("cluster-port", 0, 0, 65535, mutable=False),
    _I("cluster-node-timeout", 15000, 0, LLONG_MAX),
    _I("cluster-replica-validity-factor", 10, 0, INT_MAX,
       aliases=("cluster-slave-validity-factor",)),
    _I("cluster-migration-barrier", 1, 0, INT_MAX),
    _B("cluster-allow-replica-migration", True),
    _B("cluster-require-full-coverage", True),
    _B("cluster-replica-no-failover", False, aliases=("cluster-slave-no-failover",)),
    _B("cluster-allow-reads-when-down", False),
    _B("cluster-allow-pubsubshard-when-down", True),
    _S("cluster-announce-ip"),
    _S("cluster-announce-hostname"),
    _I("cluster-announce-port", 0, 0, 65535),
    _I("cluster-announce-bus-port", 0, 0, 65535),
    _I("cluster-announce-tls-port", 0, 0, 65535),
    _E("cluster-preferred-endpoint-type", "ip", "ip, hostname, unknown-endpoint"),
    _M("cluster-link-sendbuf-limit", 0, 0, ULLONG_MAX),
    # TLS (accepted and kept: hakv serves plain TCP)
    _I("tls-port", 0, 0, 65535),
    _S("tls-cert-file"),
    _S("tls-key-file"),
    _S("tls-key-file-pass"),
    _S("tls-client-cert-file"),
    _S("tls-client-key-file"),
    _S("tls-client-key-file-pass"),
    _S("tls-dh-params-file"),
    _S("tls-ca-cert-file"),
    _S("tls-ca-cert-dir"),
    _E("tls-auth-clients", "yes", "no, yes, optional"),
    _B("tls-replication", False),
    _B("tls-cluster", False),
    _S("tls-protocols"),
    _S("tls-ciphers"),
    _S("tls-ciphersuites"),
    _B("tls-prefer-server-ciphers", False),
    _B("tls-session-caching", True),
    _I("tls-session-cache-size", 20480, 0, INT_MAX),
    _I("tls-session-cache-timeout", 300, 0, INT_MAX),
]

# Directives Redis 7.0 still reads from a config file but ignores (and does
# not list in CONFIG GET).
DEPRECATED = ("list-max-ziplist-entries", "list-max-ziplist-value", "lua-replicate-commands")

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
        # callable() -> the live `user` lines CONFIG REWRITE writes (None: leave the
        # file's own `user` lines, [] with an aclfile: users belong to ACL SAVE); set by acl
        self.rewrite_user_lines = None
        self._loaded_save = False  # several `save` lines in a file add up

    def __getitem__(self, name: str):
        return getattr(self.model, _field_name(BY_NAME[name].name))

    def get(self, name: str):
        return self[name]

    def parse(self, name: str, args: list[str], at_startup: bool = False):
        """Validate a directive's arguments; returns the value set() would store.
        Raises ConfigError with Redis's reason."""
        d = BY_NAME[name.lower()]
        if not d.mutable and not at_startup:
            raise ConfigError("can't set immutable config")
        value = d.parse(args, self[d.name])
        if d.kind == "save" and at_startup and self._loaded_save and args != [""]:
            value = list(self[d.name]) + value  # save "" always starts over
        elif d.multi and at_startup:
            value = list(self[d.name]) + [" ".join(args)]
        elif d.multi:
            value = [" ".join(args)]
        if at_startup:
            _startup_effect(d.name, value)
        return value

    def set(self, name: str, args: list[str], at_startup: bool = False) -> None:
        """Validate and set one directive; raises ConfigError with Redis's reason."""
        d = BY_NAME.get(name.lower())
        if d is None:
            raise KeyError(name)
        value = self.parse(name, args, at_startup)
        if d.kind == "save" and at_startup:
            self._loaded_save = True
        self.store(d.name, value, notify=not at_startup)

    def store(self, name: str, value, notify: bool = True) -> None:
        """Set an already validated value (from parse) and tell the listeners."""
        d = BY_NAME[name]
        try:
            setattr(self.model, _field_name(d.name), value)
        except ValidationError as exc:  # pragma: no cover - all values are Any today
            raise ConfigError(str(exc)) from None
        if notify:
            for listener in self.listeners:
                listener(d.name, value)

    def formatted(self, name: str) -> str:
        d = BY_NAME[name]
        if d.name == "dir":
            return os.getcwd()  # Redis reports the working directory it is in
        return d.format(self[d.name])

    def matching(self, pattern_match) -> list[tuple[str, str]]:
        out = []
        for d in DIRECTIVES:
            if d.multi:
                continue
            for n in (d.name,) + d.aliases:
                if pattern_match(n.encode()):
                    out.append((n, self.formatted(d.name)))
        return out


def _startup_effect(name: str, value) -> None:
    """What Redis does the moment it reads the line: later relative paths
    depend on `dir`."""
    if name == "dir" and value:
        try:
            os.chdir(value)
        except OSError as exc:
            raise ConfigError(exc.strerror) from None


def fatal_config_error(line_no: int, line: str, reason: str) -> str:
    return (
        "\n*** FATAL CONFIG FILE ERROR (Redis %s) ***\n"
        "Reading the configuration file, at line %d\n>>> '%s'\n%s\n"
        % (REDIS_VERSION, line_no, line, reason)
    )


class FatalConfigError(Exception):
    """Redis prints these on stderr, except `can't open config file`, which it
    logs (stdout) and which then has `logged` set."""

    def __init__(self, message: str, logged: bool = False):
        super().__init__(message)
        self.logged = logged


def _cant_open(path: str, exc: OSError) -> FatalConfigError:
    return FatalConfigError("Fatal error, can't open config file '%s': %s"
                            % (path, exc.strerror), logged=True)


def load(settings: Settings, path: str | None, extra_lines: list[str]) -> None:
    """Load a redis.conf (if any), then the command-line options, which Redis
    appends to the file's text after a newline (so with no file they start at
    line 2, and error messages count lines the same way)."""
    text = ""
    if path:
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                text = f.read()
        except OSError as exc:
            raise _cant_open(path, exc) from None
        settings.config_file = os.path.abspath(path)
    if extra_lines:
        text += "\n" + "\n".join(extra_lines)
    lines = text.split("\n")
    _load_lines(settings, lines)
    # Checks Redis makes once every line is read (reported without a line).
    logfile = settings["logfile"]
    if logfile:
        try:
            open(logfile, "a").close()
        except OSError as exc:
            raise FatalConfigError("\n*** FATAL CONFIG FILE ERROR (Redis %s) ***\n"
                                   "Can't open the log file: %s\n"
                                   % (REDIS_VERSION, exc.strerror)) from None


def _load_lines(settings: Settings, lines: list[str]) -> None:
    for i, raw in enumerate(lines, 1):
        line = raw.strip(" \t\r\n")
        if not line or line.startswith("#"):
            continue
        argv = split_args(line.encode("utf-8", "surrogateescape"))
        if argv is None:
            raise FatalConfigError(
                fatal_config_error(i, line, "Unbalanced quotes in configuration line"))
        if not argv:
            continue
        args = [a.decode("utf-8", "surrogateescape") for a in argv]
        name = args[0].lower()
        if name in DEPRECATED:
            continue
        if name == "include" and len(args) == 2:
            try:
                with open(args[1], encoding="utf-8", errors="surrogateescape") as f:
                    _load_lines(settings, f.read().split("\n"))
            except OSError as exc:
                raise _cant_open(args[1], exc) from None
            continue
        if name == "sentinel":
            raise FatalConfigError(
                fatal_config_error(i, line, "sentinel directive while not in sentinel mode"))
        d = BY_NAME.get(name)
        if d is None or (d.multi and len(args) < _MULTI_MIN_ARGS.get(name, 2)):
            raise FatalConfigError(
                fatal_config_error(i, line, "Bad directive or wrong number of arguments")
            )
        if len(args) == 1 and d.kind not in MULTI_ARG_KINDS:
            raise FatalConfigError(fatal_config_error(i, line, "wrong number of arguments"))
        try:
            settings.set(name, args[1:], at_startup=True)
        except ConfigError as exc:
            raise FatalConfigError(fatal_config_error(i, line, str(exc))) from None


_MULTI_MIN_ARGS = {"rename-command": 3, "include": 2, "user": 2, "loadmodule": 2}


def argv_to_lines(argv: list[str]) -> tuple[str | None, list[str]]:
    """redis-server's command line: [config-file] [--directive value ...].

    As Redis does: each --name starts a line, every argument after it is
    quoted into that line, and the argument right after a bare --name is its
    value even when it starts with '--'. A --save with no value means save ""."""
    path = None
    if argv and not argv[0].startswith("-"):
        path, argv = argv[0], argv[1:]
    lines: list[str] = []
    current: list[str] | None = None
    want_value = False
    for i, arg in enumerate(argv):
        if arg.startswith("--") and not want_value:
            if current is not None:
                lines.append(" ".join(current))
            current = [arg[2:]]
            want_value = len(split_args(arg.encode()) or []) == 1
            if want_value and arg.lower() == "--save" and (
                    i + 1 == len(argv) or argv[i + 1].startswith("--")):
                current.append('""')
                want_value = False
        else:
            if current is None:
                current = []
            current.append(quote(arg))
            want_value = False
    if current is not None:
        lines.append(" ".join(current))
    return path, lines


_REPR_ESCAPES = {92: b"\\\\", 34: b'\\"', 10: b"\\n", 13: b"\\r", 9: b"\\t", 7: b"\\a",
                 8: b"\\b"}


def quote(arg: str) -> str:
    """A value in double quotes with escapes, as Redis writes values into
    config lines (sdscatrepr: bytes outside printable ASCII become \\xHH)."""
    out = bytearray(b'"')
    for b in arg.encode("utf-8", "surrogateescape"):
        esc = _REPR_ESCAPES.get(b)
        if esc is not None:
            out += esc
        elif 32 <= b <= 126:
            out.append(b)
        else:
            out += b"\\x%02x" % b
    out.append(34)
    return out.decode("ascii")


REWRITE_SIGNATURE = "# Generated by CONFIG REWRITE"


def rewrite(settings: Settings) -> None:
    """CONFIG REWRITE: keep the file's comments and the lines whose value did not
    change, rewrite in place the directives that changed, drop repeated lines,
    and append the changed directives the file did not have."""
    path = settings.config_file
    if not path:
        raise ConfigError("The server is running without a config file")
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            old = f.read().split("\n")
    except FileNotFoundError:
        old = []
    by_directive: dict[str, list[int]] = {}
    for idx, raw in enumerate(old):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        argv = split_args(line.encode("utf-8", "surrogateescape"))
        if not argv:
            continue
        d = BY_NAME.get(argv[0].decode("utf-8", "surrogateescape").lower())
        if d is not None and not d.multi:
            by_directive.setdefault(d.name, []).append(idx)
    replace: dict[int, list[str]] = {}
    user_tail = _rewrite_users(settings, old, replace)
    for name, idxs in by_directive.items():
        if _file_value(settings, name, [old[i] for i in idxs]) == settings[name]:
            continue  # unchanged: keep the lines as the user wrote them
        replace[idxs[0]] = _lines_for(settings, BY_NAME[name])
        for i in idxs[1:]:
            replace[i] = []
    out: list[str] = []
    blanked = False
    for idx, raw in enumerate(old):
        lines = replace.get(idx, [raw])
        is_blank = len(lines) == 1 and not lines[0].strip()
        if is_blank and out and not out[-1].strip() and (blanked or lines == [""]):
            blanked = True
            continue  # a blanked line next to a blank one: one empty line, as Redis
        blanked = lines == [""] and idx in replace
        out.extend(lines)
    added = [line for d in DIRECTIVES if d.name not in by_directive and not d.multi
             and settings[d.name] != d.default for line in _lines_for(settings, d)]
    added += user_tail
    while out and not out[-1].strip():
        out.pop()
    if added:
        if REWRITE_SIGNATURE not in (line.strip() for line in out):
            out += ["", REWRITE_SIGNATURE]
        out += added
    text = "\n".join(out) + "\n"
    tmp = path + ".tmp-%d" % os.getpid()
    with open(tmp, "w", encoding="utf-8", errors="surrogateescape") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _rewrite_users(settings: Settings, old: list[str], replace: dict) -> list[str]:
    """Redis writes the live users (ACL LIST lines, by name) over the file's
    `user` lines in order, blanks the `user` lines left over and returns the
    users that did not fit, to append. With an aclfile the list is empty:
    the file's `user` lines (there can be none at startup) are blanked."""
    if settings.rewrite_user_lines is None:
        return []
    users = list(settings.rewrite_user_lines())
    for idx, raw in enumerate(old):
        argv = split_args(raw.strip().encode("utf-8", "surrogateescape"))
        if not argv or raw.strip().startswith("#") or argv[0].lower() != b"user":
            continue
        replace[idx] = [users.pop(0)] if users else [""]
    return users


def _file_value(settings: Settings, name: str, lines: list[str]):
    """The value the file's lines for one directive give, or None if they don't parse."""
    scratch = Settings()
    try:
        for line in lines:
            args = [a.decode("utf-8", "surrogateescape")
                    for a in split_args(line.strip().encode("utf-8", "surrogateescape"))]
            d = BY_NAME[name]
            value = d.parse(args[1:], scratch[name])
            if d.kind == "save" and scratch._loaded_save:
                value = list(scratch[name]) + value
            scratch._loaded_save = True
            scratch.store(name, value, notify=False)
    except (ConfigError, TypeError):
        return None
    return scratch[name]


def _lines_for(settings: Settings, d: Directive) -> list[str]:
    value = settings[d.name]
    if d.kind == "save":
        if not value:
            return ['save ""']
        return ["save %d %d" % p for p in value]
    if d.kind == "replicaof":
        return [] if value is None else ["replicaof %s %d" % value]
    text = d.format(value)
    if d.kind in ("str", "notify"):
        text = quote(text)
    return ["%s %s" % (d.name, text)]
