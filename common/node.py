"""A hakv-server node: the Server plus the components every node has.

This is where the pieces are put together: the command families (imported
for their registrations), persistence, replication (both directions), ACL and
eviction. Each component attaches itself to the server through its hooks.
"""

from __future__ import annotations

import importlib

from hakv.common.server import Server

# Command families; importing registers them in the node's command table.
FAMILIES = [
    "hakv.common.commands.connection",
    "hakv.common.commands.server",
    "hakv.common.commands.strings",
    "hakv.common.commands.bits",
    "hakv.common.commands.keys",
    "hakv.common.commands.transactions",
    "hakv.common.commands.pubsub",
    "hakv.common.commands.hashes",
    "hakv.common.commands.lists",
    "hakv.common.commands.sets",
    "hakv.common.commands.zsets",
    "hakv.common.commands.persistence",
    "hakv.common.commands.scripting",
    "hakv.common.commands.replication",
    "hakv.common.commands.acl",
    "hakv.common.commands.absent",
    "hakv.common.commands.sort", "hakv.common.commands.geo",
    "hakv.common.commands.latency",
    "hakv.common.commands.hyperloglog",
]

# Components: module path -> attach(server) function name. Optional until the
# module exists, so the node runs while a component is being written.
COMPONENTS = [
    ("hakv.common.persistence", "attach"),
    ("hakv.primary.component", "attach"),
    ("hakv.replica.component", "attach"),
    ("hakv.common.scripting", "attach"),
    ("hakv.common.notifications", "attach"),
    ("hakv.common.acl", "attach"),
    ("hakv.common.eviction", "attach"),
]


def load_families() -> None:
    for name in FAMILIES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise


class Node:
    def __init__(self, settings):
        load_families()
        self.server = Server(settings)
        self.components = []
        for module_name, fn in COMPONENTS:
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                if exc.name != module_name:
                    raise
                continue
            self.components.append(getattr(module, fn)(self.server))

    async def run(self) -> int:
        server = self.server
        await server.start()
        for comp in self.components:
            started = getattr(comp, "started", None)
            if started is not None:
                await started()
        await server.shutdown_event.wait()
        return server.exit_code
