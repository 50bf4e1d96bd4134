"""Parse the INFO text of a monitored master or replica.

Only the fields Sentinel acts on are extracted; unknown lines are ignored so
any INFO (Redis 2.8 .. 7.x, hakv) parses.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class ReplicaEntry:
    """One ``slaveN:`` line of a master's INFO."""

    ip: str
    port: int
    state: str = ""
    offset: int = 0
    lag: int = 0


@dataclass(slots=True)
class InstanceInfo:
    run_id: str | None = None
    role: str | None = None  # "master" / "slave" / None when absent
    replicas: list[ReplicaEntry] = field(default_factory=list)
    # replica side
    master_host: str | None = None
    master_port: int | None = None
    master_link_up: bool | None = None
    # milliseconds; 0 when the line is absent (Redis resets it then)
    master_link_down_ms: int = 0
    slave_priority: int | None = None
    slave_repl_offset: int | None = None
    replica_announced: int | None = None


def _int_prefix(text: str, default: int = 0) -> int:
    """atoi/strtoll semantics: leading sign and digits, else `default`."""
    text = text.strip()
    end = 0
    if end < len(text) and text[end] in "+-":
        end += 1
    while end < len(text) and text[end].isdigit():
        end += 1
    try:
        return int(text[:end])
    except ValueError:
        return default


def _parse_replica_line(value: str) -> ReplicaEntry | None:
    if "ip=" in value:
        fields = {}
        for part in value.split(","):
            key, sep, val = part.partition("=")
            if sep:
                fields[key] = val
        if "ip" not in fields or "port" not in fields:
            return None
        return ReplicaEntry(
            ip=fields["ip"],
            port=_int_prefix(fields["port"]),
            state=fields.get("state", ""),
            offset=_int_prefix(fields.get("offset", "0")),
            lag=_int_prefix(fields.get("lag", "0")),
        )
    # Redis < 2.8: slaveN:<ip>,<port>,<state>
    parts = value.split(",")
    if len(parts) < 3:
        return None
    return ReplicaEntry(ip=parts[0], port=_int_prefix(parts[1]), state=parts[2])


def parse_info(text: str | bytes) -> InstanceInfo:
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8", "replace")
    info = InstanceInfo()
    for line in text.split("\n"):
        line = line.rstrip("\r")
        if not line or line[0] == "#":
            continue
        key, sep, value = line.partition(":")
        if not sep:
            continue
        if key == "run_id":
            if len(value) >= 40:
                info.run_id = value[:40]
        elif key == "role":
            if value.startswith("master"):
                info.role = "master"
            elif value.startswith("slave"):
                info.role = "slave"
        elif key.startswith("slave") and key[5:].isdigit():
            entry = _parse_replica_line(value)
            if entry is not None:
                info.replicas.append(entry)
        elif key == "master_link_down_since_seconds":
            info.master_link_down_ms = _int_prefix(value) * 1000
        elif key == "master_host":
            info.master_host = value
        elif key == "master_port":
            info.master_port = _int_prefix(value)
        elif key == "master_link_status":
            info.master_link_up = value.lower() == "up"
        elif key == "slave_priority":
            info.slave_priority = _int_prefix(value)
        elif key == "slave_repl_offset":
            info.slave_repl_offset = _int_prefix(value)
        elif key == "replica_announced":
            info.replica_announced = _int_prefix(value)
    return info
