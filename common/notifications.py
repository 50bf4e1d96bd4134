"""Keyspace notifications (notify-keyspace-events), as Redis 7.0 sends them.

Commands report what they did with `keyspace.notify(db, class_char, event,
key)`; this component decides what gets published: nothing unless the
configured flags enable the event's class and at least one of K
(`__keyspace@<db>__:<key>` carrying the event name) or E
(`__keyevent@<db>__:<event>` carrying the key). Messages go through
Server.publish, so RESP3 subscribers get push messages.

Classes: g generic, $ string, l list, s set, h hash, z sorted set, x expired
(lazy and active expiry), e evicted, t stream, m key miss, d module, n new
key; A is g$lshzxetd. Two of them need help from the keyspace, enabled only
when configured (they cost a check on hot paths): `keyspace.notify_new` makes
Database.set report "new" when it creates a key, `keyspace.notify_keymiss`
makes read lookups of missing keys report "keymiss".

When no event can be published the keyspace gets a no-op notify, so the
default configuration costs one empty call per write. This is the only
implementation: a Server built without this component (in-process tests)
keeps the keyspace's own no-op notify.

API: attach(server) -> Notifier; Notifier.configure(text) (done on CONFIG SET
and at startup from the config file).
"""

from __future__ import annotations

from hakv.common.config import notify_flags


def _off(db, cls, event, key) -> None:
    pass


class Notifier:
    def __init__(self, server):
        self.server = server
        self.flags: frozenset = frozenset()
        self.keyspace_channel = False
        self.keyevent_channel = False
        self.configure(server.settings["notify-keyspace-events"])
        server.settings.listeners.append(self._on_config_set)

    def configure(self, text: str) -> None:
        flags = frozenset(notify_flags(text))
        self.flags = flags
        self.keyspace_channel = "K" in flags
        self.keyevent_channel = "E" in flags
        active = (self.keyspace_channel or self.keyevent_channel) and bool(flags - {"K", "E"})
        ks = self.server.keyspace
        ks.notify = self.notify if active else _off
        ks.notify_new = active and "n" in flags
        ks.notify_keymiss = active and "m" in flags

    def _on_config_set(self, name: str, value) -> None:
        if name == "notify-keyspace-events":
            self.configure(value)

    def notify(self, db, cls: str, event: bytes, key: bytes) -> None:
        if cls not in self.flags:
            return
        publish = self.server.publish
        if self.keyspace_channel:
            publish(b"__keyspace@%d__:%s" % (db.id, key), event)
        if self.keyevent_channel:
            publish(b"__keyevent@%d__:%s" % (db.id, event), key)


def attach(server) -> Notifier:
    notifier = Notifier(server)
    server.notifier = notifier
    return notifier
