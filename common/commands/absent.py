"""Commands of features hakv does not have: cluster mode and modules.

Clients probe for them (cluster-aware clients send READONLY, CLUSTER INFO or
CLUSTER SLOTS; tools send MODULE LIST), and a Redis 7.0 without cluster
support answers with specific errors or empty lists, not "unknown command".
We answer the same, with Redis's arities and flags, so the probes take the
same path against hakv as against Redis.
"""

from __future__ import annotations

from hakv.common.commands.table import command, container
from hakv.common.resp import ErrorReply

NO_CLUSTER = "ERR This instance has cluster support disabled"
MODULE_NOT_ALLOWED = (
    'ERR MODULE command not allowed. If the enable-module-command option is set to "local", '
    "you can run it from a local connection, otherwise you need to set this option in the "
    "configuration file, and then restart the server.")


def _no_cluster(ctx, argv):
    raise ErrorReply(NO_CLUSTER)


for _name, _flags in (("readonly", "loading stale fast"), ("readwrite", "loading stale fast"),
                      ("asking", "fast")):
    command(_name, 1, _flags, group="cluster", since="3.0.0", categories="connection",
            summary="Cluster mode only: hakv answers that cluster support is disabled")(
        _no_cluster)

container("cluster", -2, "", group="cluster", since="3.0.0",
          summary="Cluster mode only: every subcommand answers that cluster support is disabled")

# subcommand -> (arity, flags), as Redis 7.0 declares them
_CLUSTER = {
    "addslots": (-3, "admin stale no_async_loading"),
    "addslotsrange": (-4, "admin stale no_async_loading"),
    "bumpepoch": (2, "admin stale no_async_loading"),
    "count-failure-reports": (3, "admin stale"),
    "countkeysinslot": (3, "stale"),
    "delslots": (-3, "admin stale no_async_loading"),
    "delslotsrange": (-4, "admin stale no_async_loading"),
    "failover": (-2, "admin stale no_async_loading"),
    "flushslots": (2, "admin stale no_async_loading"),
    "forget": (3, "admin stale no_async_loading"),
    "getkeysinslot": (4, "stale"),
    "help": (2, "loading stale"),
    "info": (2, "stale"),
    "keyslot": (3, "stale"),
    "links": (2, "stale"),
    "meet": (-4, "admin stale no_async_loading"),
    "myid": (2, "stale"),
    "nodes": (2, "stale"),
    "replicas": (3, "admin stale"),
    "replicate": (3, "admin stale no_async_loading"),
    "reset": (-2, "admin noscript stale"),
    "saveconfig": (2, "admin stale no_async_loading"),
    "set-config-epoch": (3, "admin stale no_async_loading"),
    "setslot": (-4, "admin stale no_async_loading"),
    "shards": (2, "stale"),
    "slaves": (3, "admin stale"),
    "slots": (2, "stale"),
}
for _sub, (_arity, _flags) in _CLUSTER.items():
    command("cluster|" + _sub, _arity, _flags, group="cluster", since="3.0.0")(_no_cluster)


container("module", -2, "", group="server", since="4.0.0",
          summary="Modules: hakv loads none")


@command("module|list", 2, "admin noscript", group="server", since="4.0.0")
def module_list(ctx, argv):
    return []


def _module_not_allowed(ctx, argv):
    # enable-module-command is "no" by default in Redis 7.0, and hakv has no modules
    raise ErrorReply(MODULE_NOT_ALLOWED)


for _sub, _arity in (("load", -3), ("loadex", -3), ("unload", 3)):
    command("module|" + _sub, _arity, "admin noscript no_async_loading", group="server",
            since="4.0.0")(_module_not_allowed)
