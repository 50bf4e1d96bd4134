"""Replication identity (PSYNC2) and the partial-resync decision, without I/O.

A node's history is named by a replication id and a byte offset into it.
`replid2` / `second_offset` keep the id the node followed before its last
change of history (a promotion, a restart from an RDB), up to the offset where
that history ended: replicas still on the old id can continue from us.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from hakv.primary.backlog import Backlog

NO_ID = "0" * 40


def new_replid() -> str:
    return os.urandom(20).hex()


@dataclass
class ReplIds:
    replid: str
    replid2: str = NO_ID
    offset: int = 0  # master_repl_offset: the last byte of the stream we hold
    second_offset: int = -1  # replid2 is valid for offsets up to this one

    def shift(self) -> None:
        """Start a new history, remembering the current one (a promotion):
        replicas may still ask for bytes up to offset + 1 under the old id."""
        self.replid2 = self.replid
        self.second_offset = self.offset + 1
        self.replid = new_replid()

    def change(self) -> None:
        self.replid = new_replid()

    def clear_second(self) -> None:
        self.replid2 = NO_ID
        self.second_offset = -1


def try_partial(ids: ReplIds, backlog: Backlog | None, replid: str, offset: int):
    """Can a replica that asks `PSYNC replid offset` continue from our backlog?

    Returns (True, None) or (False, reason), reason being what the primary logs."""
    if replid != ids.replid and (replid != ids.replid2 or offset > ids.second_offset):
        if replid == "?":
            return False, "Full resync requested by replica"
        if replid != ids.replid and replid != ids.replid2:
            return False, ("Replication ID mismatch (Replica asked for '%s', my replication "
                           "IDs are '%s' and '%s')" % (replid, ids.replid, ids.replid2))
        return False, ("Requested offset for second ID was %d, but I can reply up to %d"
                       % (offset, ids.second_offset))
    if backlog is None or not backlog.covers(offset):
        reason = "lack of backlog (Replica request was: %d)" % offset
        if offset > ids.offset:
            reason += "; the replica asked for an offset greater than mine (%d)" % ids.offset
        return False, reason
    return True, None
