"""The hello message sentinels publish on ``__sentinel__:hello``.

Eight comma-separated fields, as Redis Sentinel writes them::

    ip,port,runid,current_epoch,master_name,master_ip,master_port,master_config_epoch

The first four describe the sending sentinel, the last four the master
configuration it believes in.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Hello:
    ip: str
    port: int
    runid: str
    current_epoch: int
    master_name: str
    master_ip: str
    master_port: int
    master_config_epoch: int

    def encode(self) -> str:
        return (
            f"{self.ip},{self.port},{self.runid},{self.current_epoch},"
            f"{self.master_name},{self.master_ip},{self.master_port},"
            f"{self.master_config_epoch}"
        )


def _to_int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def parse_hello(payload: str | bytes) -> Hello | None:
    """Decode a hello; None when it is not a well formed 8-field message."""
    if isinstance(payload, (bytes, bytearray)):
        payload = bytes(payload).decode("utf-8", "replace")
    tokens = payload.split(",")
    if len(tokens) != 8:
        return None
    port, epoch, mport, mepoch = (_to_int(tokens[i]) for i in (1, 3, 6, 7))
    if None in (port, epoch, mport, mepoch) or min(epoch, mepoch) < 0:  # type: ignore[type-var]
        return None
    if not (0 <= port <= 65535 and 0 <= mport <= 65535) or not tokens[2]:  # type: ignore[operator]
        return None
    return Hello(tokens[0], port, tokens[2], epoch, tokens[4], tokens[5], mport, mepoch)  # type: ignore[arg-type]
