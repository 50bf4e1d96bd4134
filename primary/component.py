"""The primary side of replication, attached to every node (a replica with
replicas of its own runs the same code)."""

from __future__ import annotations

from hakv.primary.source import ReplicationSource


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
        server.write_check_armed[source.min_replicas_check] = lambda: bool(source.min_replicas)
        server.cron_jobs.append(source.cron)
        server.disconnect_hooks.append(source.client_gone)
        server.shutdown_hooks.append(source.log_lagging_at_shutdown)
        server.info_sections["replication"] = source.info_lines
        previous_stats = server.info_sections.get("stats") or server._info_stats
        server.info_sections["stats"] = lambda: self._stats(previous_stats())
        server.settings.listeners.append(source.config_changed)
        if getattr(server, "resetstat_hooks", None) is None:
            server.resetstat_hooks = []
        server.resetstat_hooks.append(self._reset_stats)

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
                  "sync_partial_err": source.stat_sync_partial_err,
                  "total_net_repl_input_bytes": source.stat_repl_in,
                  "total_net_repl_output_bytes": source.stat_repl_out}
        out = []
        for line in lines:
            if isinstance(line, tuple) and line[0] in values:
                line = (line[0], str(values[line[0]]))
            out.append(line)
        return out

    def _reset_stats(self) -> None:
        """CONFIG RESETSTAT."""
        self.source.stat_sync_full = 0
        self.source.stat_sync_partial_ok = 0
        self.source.stat_sync_partial_err = 0
        self.source.stat_repl_in = self.source.stat_repl_out = 0

    def _change_repl_id(self) -> None:
        self.source.ids.change()
        self.source.ids.clear_second()


def attach(server) -> PrimaryComponent:
    return PrimaryComponent(server)
