"""The replica side of replication, attached to every node: REPLICAOF at
runtime or `replicaof` in the config makes the node follow a primary."""

from __future__ import annotations

from hakv.replica.follower import Follower


class ReplicaComponent:
    def __init__(self, server):
        self.server = server
        source = getattr(server, "replication", None)
        if source is None:  # the primary component is always attached first
            from hakv.primary.component import attach as attach_primary
            source = attach_primary(server).source
        self.follower = follower = Follower(server, source)
        source.follower = follower
        server.follower = follower
        server.write_checks.append(follower.readonly_check)
        server.write_check_armed[follower.readonly_check] = lambda: follower.host is not None
        server.cron_jobs.append(follower.cron)
        server.shutdown_hooks.append(follower.shutdown)
        server.settings.listeners.append(self._config_changed)
        target = server.settings["replicaof"]
        if target is not None:
            # Before the RDB is loaded: it must load as a replica's (keeping
            # expired keys; its AUX names the history to continue).
            follower.set_primary(target[0], target[1], startup=True)

    async def started(self) -> None:
        follower = self.follower
        follower.enabled = True
        if follower.host is not None:
            follower.connect()

    def _config_changed(self, name: str, value) -> None:
        follower = self.follower
        if name != "replicaof":
            return
        if value is None:
            follower.unset_primary("CONFIG SET")
        elif (follower.host, follower.port) != tuple(value):
            follower.set_primary(value[0], value[1], "CONFIG SET")


def attach(server) -> ReplicaComponent:
    return ReplicaComponent(server)
