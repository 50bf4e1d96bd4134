"""The primary side of replication, attached to every node (a replica with
replicas of its own runs the same code)."""

from __future__ import annotations

from hakv.primary.source import ReplicationSource

_STATS = ("sync_full", "sync_partial_ok", "sync_partial_err")


class PrimaryComponent:
    def __init__(self, server):
        self.server = server
        self.source = source = ReplicationSource(server)
        server.replication = source
        # For the RDB writer (AUX repl-stream-db / repl-id / repl-offset) and
        # for whoever loads an RDB at startup (it names the history to continue).
        server.replication_aux = source.rdb_aux
        server.replication_restore = source.restore_from_aux
        server.change_repl_id = self._change_repl_id
        server.role_name = lambda: "slave" if source.is_replica() else "master"
        server.write_checks.append(source.min_replicas_check)
        server.cron_jobs.append(source.cron)
        server.disconnect_hooks.append(source.client_gone)
        server.info_sections["replication"] = source.info_lines
        previous_stats = server.info_sections.get("stats") or server._info_stats
        server.info_sections["stats"] = lambda: self._stats(previous_stats())
        server.settings.listeners.append(source.config_changed)

    async def started(self) -> None:
        """After persistence loaded the dataset: continue the history its RDB names."""
        persistence = getattr(self.server, "persistence", None)
        aux = getattr(persistence, "loaded_aux", None)
        if aux:
            self.source.restore_from_aux(aux)

    def _stats(self, lines):
        source = self.source
        values = {"sync_full": source.stat_sync_full,
                  "sync_partial_ok": source.stat_sync_partial_ok,
                  "sync_partial_err": source.stat_sync_partial_err}
        return [(k, str(values[k])) if isinstance(kv, tuple) and (k := kv[0]) in values else kv
                for kv in lines]

    def _change_repl_id(self) -> None:
        self.source.ids.change()
        self.source.ids.clear_second()


def attach(server) -> PrimaryComponent:
    return PrimaryComponent(server)
