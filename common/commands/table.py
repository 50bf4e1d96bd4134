"""The command table: every command declared once, as data.

A family module declares its commands with the `command` decorator:

    @command("get", arity=2, flags="readonly fast", keys=(1, 1, 1), group="string")
    def get(ctx, argv): ...

`arity` follows Redis: N means exactly N arguments (the name included), -N at
least N. `keys` is (first, last, step) as in COMMAND INFO; commands whose keys
depend on their arguments (EVAL, ZUNIONSTORE ...) add `key_finder(argv) ->
list of indexes` and get the `movablekeys` flag. Containers (CLIENT, CONFIG
...) are declared with `container`, their subcommands as "client|setname".

The dispatcher, COMMAND / COMMAND INFO / DOCS, ACL categories and the gate all
read this table; nothing else keeps its own list of commands.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

# Redis's ACL categories derived from a command's group when the command does
# not name its own.
_GROUP_CATEGORY = {
    "string": "string",
    "bitmap": "bitmap",
    "list": "list",
    "hash": "hash",
    "set": "set",
    "sorted-set": "sortedset",
    "hyperloglog": "hyperloglog",
    "geo": "geo",
    "stream": "stream",
    "pubsub": "pubsub",
    "transactions": "transaction",
    "scripting": "scripting",
    "connection": "connection",
    "generic": "keyspace",
}


@dataclass(eq=False)
class Command:
    name: str
    arity: int
    flags: frozenset
    first_key: int = 0
    last_key: int = 0
    step: int = 0
    handler: Callable | None = None
    group: str = "generic"
    summary: str = ""
    since: str = "1.0.0"
    categories: frozenset = frozenset()
    key_finder: Callable | None = None
    parent: "Command | None" = None
    subcommands: dict = field(default_factory=dict)
    # Precomputed from flags for the hot path of the gate.
    is_write: bool = False
    denyoom: bool = False
    allow_loading: bool = False
    allow_stale: bool = False
    no_auth: bool = False
    no_multi: bool = False
    no_script: bool = False
    admin: bool = False
    pubsub_context: bool = False
    may_replicate: bool = False
    no_monitor: bool = False
    reads: bool = False  # readonly: counts keyspace hits / misses
    # A top-level data command that cannot change what dispatch.run_plain
    # hoists out of its loop (client state, pauses, scripts, ACL, MONITOR).
    plain: bool = False
    # Statistics for INFO commandstats.
    calls: int = 0
    usec: int = 0
    rejected_calls: int = 0
    failed_calls: int = 0

    @property
    def fullname(self) -> str:
        return f"{self.parent.name}|{self.name}" if self.parent else self.name

    def key_indexes(self, argv: list) -> list:
        """Positions of the keys in argv (for ACL checks, WATCH-free key locks,
        COMMAND GETKEYS)."""
        if self.key_finder is not None:
            return self.key_finder(argv)
        if self.first_key <= 0:
            return []
        last = self.last_key if self.last_key >= 0 else len(argv) + self.last_key
        return list(range(self.first_key, min(last, len(argv) - 1) + 1, self.step or 1))


# Flags of commands that may change a client's or the server's state (AUTH,
# MULTI, MONITOR, SUBSCRIBE, CLIENT, EVAL, blocking ...): never `plain`.
_NOT_PLAIN = frozenset(("noscript", "admin", "blocking", "pubsub", "no_auth", "may_replicate",
                        "skip_monitor", "no_multi"))

# Commands allowed while a RESP2 connection is in subscribe mode.
_PUBSUB_CONTEXT = {"ping", "subscribe", "psubscribe", "unsubscribe", "punsubscribe",
                   "ssubscribe", "sunsubscribe", "quit", "reset"}


class CommandTable:
    def __init__(self):
        self.commands: dict[bytes, Command] = {}

    def lookup(self, name: bytes) -> Command | None:
        return self.commands.get(name.lower())

    def command(self, name: str, arity: int, flags: str = "", keys=(0, 0, 0),
                group: str = "generic", summary: str = "", since: str = "1.0.0",
                categories: str = "", key_finder: Callable | None = None):
        def register(handler):
            self.add(name, arity, flags, keys, group, summary, since, categories,
                     key_finder, handler)
            return handler
        return register

    def container(self, name: str, arity: int = -2, flags: str = "", group: str = "server",
                  summary: str = "", since: str = "1.0.0"):
        """A command whose real behaviour is in its subcommands (CLIENT, CONFIG ...)."""
        return self.add(name, arity, flags, (0, 0, 0), group, summary, since, "", None, None)

    def add(self, name, arity, flags, keys, group, summary, since, categories, key_finder,
            handler) -> Command:
        flagset = set(flags.split())
        if key_finder is not None:
            flagset.add("movablekeys")
        parent = None
        short = name
        if "|" in name:
            parent_name, short = name.split("|", 1)
            parent = self.commands[parent_name.encode()]
        cmd = Command(
            name=short, arity=arity, flags=frozenset(flagset), first_key=keys[0],
            last_key=keys[1], step=keys[2], handler=handler, group=group, summary=summary,
            since=since, key_finder=key_finder, parent=parent,
        )
        cmd.categories = frozenset(_categories(cmd, categories))
        cmd.is_write = "write" in flagset
        cmd.denyoom = "denyoom" in flagset
        cmd.allow_loading = "loading" in flagset
        cmd.allow_stale = "stale" in flagset
        cmd.no_auth = "no_auth" in flagset
        cmd.no_multi = "no_multi" in flagset
        cmd.no_script = "noscript" in flagset
        cmd.admin = "admin" in flagset
        cmd.may_replicate = "may_replicate" in flagset
        cmd.no_monitor = "skip_monitor" in flagset or cmd.admin
        cmd.pubsub_context = short in _PUBSUB_CONTEXT and parent is None
        cmd.reads = "readonly" in flagset
        cmd.plain = parent is None and handler is not None and not flagset & _NOT_PLAIN
        if parent is None:
            self.commands[short.encode()] = cmd
        else:
            parent.subcommands[short.encode()] = cmd
            parent.plain = False
        return cmd

    def all(self):
        """Every command and subcommand, parents first."""
        for cmd in self.commands.values():
            yield cmd
            yield from cmd.subcommands.values()


# Redis declares categories per command; where the rules below (flags and
# group) give something else, the difference is listed here ("+cat" added,
# "-cat" removed; "name|*" for every subcommand). Checked against COMMAND INFO
# of Redis 7.0 by tests/interop/test_acl_diff.py.
_CATEGORY_FIXES = {
    "debug": "+admin +dangerous",  # a plain command in Redis, a container here
    "latency": "-admin -dangerous",
    "slowlog": "-admin -dangerous",
    "pubsub|help": "-pubsub",
    "info": "+dangerous",
    "wait": "+connection -keyspace",
    "command|*": "+connection",
    "sort": "-keyspace +set +sortedset +list +dangerous",
    "sort_ro": "-keyspace +set +sortedset +list +dangerous",
}


def _categories(cmd: Command, explicit: str) -> set:
    cats = set(explicit.split())
    if cmd.handler is None and cmd.parent is None:
        cats.add("slow")  # Redis's containers are just @slow
        return _fixed(cmd, cats)
    flags = cmd.flags
    if "write" in flags:
        cats.add("write")
    if "readonly" in flags and cmd.group != "scripting":
        cats.add("read")
    if "admin" in flags:
        cats.update(("admin", "dangerous"))
    if "pubsub" in flags:
        cats.add("pubsub")
    if "fast" in flags:
        cats.add("fast")
    else:
        cats.add("slow")
    if "blocking" in flags:
        cats.add("blocking")
    group_cat = _GROUP_CATEGORY.get(cmd.group)
    if group_cat:
        cats.add(group_cat)
    return _fixed(cmd, cats)


def _fixed(cmd: Command, cats: set) -> set:
    name = cmd.fullname
    for key in (name, cmd.parent.name + "|*" if cmd.parent else None):
        for change in _CATEGORY_FIXES.get(key, "").split():
            if change[0] == "+":
                cats.add(change[1:])
            else:
                cats.discard(change[1:])
    return cats


# The table of hakv-server. Family modules register into it on import.
node_table = CommandTable()
command = node_table.command
container = node_table.container
