"""SENTINEL MASTER's `disconnected` flag follows the command link at once.

node-redis' `createSentinel` (5.x) re-resolves the master through SENTINEL
MASTER as soon as its master connection breaks, and treats a master whose
flags hold `s_down`, `disconnected` or `failover_in_progress` as "no valid
master". If the reply still calls a dead master healthy, node-redis opens a
new client to it and waits for that connect() forever (see docs/clients.md,
node-redis). So the flag must be there from the moment the link drops (long
before SDOWN), and must stay while a reconnect is only being attempted: it
goes away when a connection is really up again."""
from __future__ import annotations

from hakv.sentinel.actions import Connect
from test_sentinel_state import Driver, healthy


def master_flags(d: Driver) -> str:
    return d.state.sentinel_command(["master", "mymaster"], d.now).reply["flags"]


def test_disconnected_as_soon_as_the_command_link_drops():
    d = Driver(quorum=2, down_after=1000)
    healthy(d)
    assert master_flags(d) == "master"
    d.down(6379, "Connection reset by peer")
    assert master_flags(d) == "master,disconnected"  # no SDOWN yet, but not usable


def test_disconnected_stays_while_a_reconnect_is_only_attempted():
    d = Driver(quorum=2, down_after=5000)  # long enough to stay clear of SDOWN
    healthy(d)
    d.down(6379)
    before = len(d.actions)
    d.tick(1100)  # past the reconnect period: a new connection is attempted
    retries = [a for a in d.actions[before:] if isinstance(a, Connect) and a.port == 6379]
    assert retries, "expected a reconnect attempt to the master"
    assert "disconnected" in master_flags(d).split(",")
    d.down(6379)  # the attempt fails (e.g. a proxy accepts, then resets)
    assert "disconnected" in master_flags(d).split(",")
    d.tick(1100)
    d.up(6379)  # a connection that really got through
    assert master_flags(d) == "master"
