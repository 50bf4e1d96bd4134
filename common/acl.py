"""Users and their permissions, as Redis 7.0's ACL has them.

A user has flags (on/off, nopass, sanitize-payload), SHA-256 password hashes
and one or more selectors. A selector says which commands may run (a set of
Command objects, plus first-argument exceptions such as `+select|0`), which
keys they may touch (glob patterns, each readable, writable or both) and
which pub/sub channels. The root selector is the user's own rules; extra
selectors come from `(...)` rules. A command is allowed when any selector
allows it (command, keys and channels together).

The gate (dispatch.gate) asks `ACL.check(client, cmd, argv)` before every
command. A user whose root selector allows every command, key and channel
(the default user, unless configured otherwise) is in `ACL.unrestricted`, so
its check is one set lookup on the client's user name.

Which keys a command reads and which it writes comes from Redis's key specs
(the ACCESS flag means read, INSERT/DELETE/UPDATE mean write): `_KEY_ACCESS`
below is that data for every keyed command, `_MIXED_ACCESS` for the commands
whose keys differ (a destination written, sources read), and two commands
(SET, BITFIELD) decide from their arguments.

This module also holds what else guards the door: protected mode (the DENIED
reply to a non-loopback client when the default user has no password),
`rename-command`, `requirepass` (the default user's password), `aclfile` and
`user` lines, and the ACL LOG.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections import deque

from hakv.common import errors
from hakv.common.glob import compile_glob
from hakv.common.resp import ErrorReply, split_args

READ, WRITE = 1, 2
ALL_PERMS = READ | WRITE

# The categories, in the order Redis lists them (ACL CAT) and tries them when
# describing a user's commands.
CATEGORIES = ("keyspace read write set sortedset list hash string bitmap hyperloglog geo "
              "stream pubsub admin fast slow blocking dangerous connection transaction "
              "scripting").split()

PROTECTED_MODE_DENIED = (
    "DENIED Redis is running in protected mode because protected mode is enabled and no "
    "password is set for the default user. In this mode connections are only accepted from "
    "the loopback interface. If you want to connect from external computers to Redis you may "
    "adopt one of the following solutions: 1) Just disable protected mode sending the command "
    "'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the "
    "same host the server is running, however MAKE SURE Redis is not publicly accessible from "
    "internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively "
    "you can just disable the protected mode by editing the Redis configuration file, and "
    "setting the protected mode option to 'no', and then restarting the server. 3) If you "
    "started the server manually just for testing, restart it with the '--protected-mode no' "
    "option. 4) Setup a an authentication password for the default user. NOTE: You only need "
    "to do one of the above things in order for the server to start accepting connections "
    "from the outside."
)

NOPERM_COMMAND = "NOPERM this user has no permissions to run the '%s' command"
NOPERM_KEY = "NOPERM this user has no permissions to access one of the keys used as arguments"
NOPERM_CHANNEL = ("NOPERM this user has no permissions to access one of the channels used as "
                  "arguments")
# The same denials as a script's redis.call() reports them.
SCRIPT_NOPERM = {
    "command": "ERR The user executing the script can't run this command or subcommand",
    "key": "ERR The user executing the script can't access at least one of the keys "
           "mentioned in the command arguments",
    "channel": "ERR The user executing the script can't publish to the channel mentioned in "
               "the command",
}

# Denial reasons, ordered as Redis ranks them when several selectors fail
# (the highest wins; between equals, the later argument).
DENIED_CMD, DENIED_KEY, DENIED_AUTH, DENIED_CHANNEL = 1, 2, 3, 4
_REASON_NAME = {DENIED_CMD: "command", DENIED_KEY: "key", DENIED_AUTH: "auth",
                DENIED_CHANNEL: "channel"}

LOG_GROUPING_MS = 60000  # similar denials within a minute bump one log entry

# ---------------------------------------------------------------- key access data

# Redis's key specs reduced to what ACL needs: R = the command reads its keys,
# W = it writes them, RW = both, - = neither (it only looks at the key's
# existence, type or metadata: any key pattern allows it).
_KEY_ACCESS_TEXT = """
R: bitcount bitfield_ro bitpos dump eval_ro evalsha_ro expiretime fcall_ro geodist geohash
   geopos georadius_ro georadiusbymember_ro geosearch get getbit getrange hget hgetall hkeys
   hmget hrandfield hscan hvals lcs lindex lpos lrange mget pexpiretime pfcount pfdebug pttl
   sdiff sinter sintercard smembers smismember sort_ro srandmember sscan substr sunion ttl
   xinfo|consumers xinfo|groups xinfo|stream xpending xrange xread xreadgroup xrevrange zcount
   zdiff zinter zintercard zlexcount zmscore zrandmember zrange zrangebylex zrangebyscore zrank
   zrevrange zrevrangebylex zrevrangebyscore zrevrank zscan zscore zunion
W: append del expire expireat geoadd hdel hmset hset hsetnx linsert lpush lpushx lrem lset
   ltrim mset msetnx persist pexpire pexpireat pfadd psetex restore restore-asking rpush rpushx
   sadd setex setnx setrange srem unlink xack xadd xautoclaim xclaim xdel xgroup|create
   xgroup|createconsumer xgroup|delconsumer xgroup|destroy xgroup|setid xsetid xtrim zadd zrem
   zremrangebylex zremrangebyrank zremrangebyscore
RW: blmpop blpop brpop bzmpop bzpopmax bzpopmin decr decrby eval evalsha fcall getdel getex
   getset hincrby hincrbyfloat incr incrby incrbyfloat lmpop lpop migrate move rpop setbit spop
   zincrby zmpop zpopmax zpopmin
-: exists hexists hlen hstrlen llen memory|usage object|encoding object|freq object|idletime
   object|refcount scard sismember strlen touch type watch xlen zcard
"""

_PERM_OF = {"R": READ, "W": WRITE, "RW": READ | WRITE, "-": 0}


def _parse_access(text: str) -> dict:
    out = {}
    perm = 0
    for word in text.split():
        if word.endswith(":"):
            perm = _PERM_OF[word[:-1]]
        else:
            out[word] = perm
    return out


_KEY_ACCESS = _parse_access(_KEY_ACCESS_TEXT)

# Commands whose first key is accessed differently from the others:
# name -> (first key, other keys).
_MIXED_ACCESS = {
    "bitop": (WRITE, READ), "copy": (READ, WRITE),
    "blmove": (READ | WRITE, WRITE), "brpoplpush": (READ | WRITE, WRITE),
    "lmove": (READ | WRITE, WRITE), "rpoplpush": (READ | WRITE, WRITE),
    "smove": (READ | WRITE, WRITE), "rename": (READ | WRITE, WRITE),
    "renamenx": (READ | WRITE, WRITE), "pfmerge": (READ | WRITE, READ),
    "georadius": (READ, WRITE), "georadiusbymember": (READ, WRITE),
    "geosearchstore": (WRITE, READ), "sort": (READ, WRITE),
    "sdiffstore": (WRITE, READ), "sinterstore": (WRITE, READ), "sunionstore": (WRITE, READ),
    "zdiffstore": (WRITE, READ), "zinterstore": (WRITE, READ), "zunionstore": (WRITE, READ),
    "zrangestore": (WRITE, READ),
}

# Commands whose arguments name pub/sub channels: name -> (first channel
# index, all the remaining arguments?, the user's patterns compared literally?).
_CHANNEL_COMMANDS = {
    "publish": (1, False, False), "spublish": (1, False, False),
    "subscribe": (1, True, False), "ssubscribe": (1, True, False),
    "psubscribe": (1, True, True),
}


# Shard channels sit where keys would (for cluster slots): not keys to ACL.
_CHANNELS_NOT_KEYS = frozenset(("spublish", "ssubscribe", "sunsubscribe"))


def key_permissions(cmd, argv: list) -> list:
    """[(argv index, needed permission bits)] for the keys of this call."""
    kind, a, b, _ = _plan_of(cmd)
    if kind == _ONE_KEY:
        return [(a, b)] if len(argv) > a else []
    if kind == _SAME:
        return [(i, a) for i in cmd.key_indexes(argv)]
    if kind == _MIXED:
        if len(argv) < 3 and cmd.fullname == "pfmerge":
            # Redis's second key spec (the sources) starts past the end of
            # a bare PFMERGE dest, which voids the whole key list there.
            return []
        return [(i, a if n == 0 else b) for n, i in enumerate(cmd.key_indexes(argv))]
    if kind == _BY_ARGS:  # SET and BITFIELD: one key, argv[1]
        if len(argv) < 2:
            return []
        if a == "set":  # SET ... GET reads the old value too
            if len(argv) == 3:
                return _SET_PLAIN
            perm = READ | WRITE if any(x.lower() == b"get" for x in argv[3:]) else WRITE
        else:  # BITFIELD reads only, unless it SETs or INCRBYs
            writes = any(x.lower() in (b"set", b"incrby") for x in argv[2:])
            perm = READ | WRITE if writes else READ
        return [(1, perm)]
    return []


_SET_PLAIN = ((1, WRITE),)  # SET key value: the common case, shared


_ONE_KEY, _SAME, _MIXED, _BY_ARGS, _NO_KEYS = range(5)
# Command -> (kind, a, b, the [(index, perm)] of a _ONE_KEY command), worked
# out on first use.
_KEY_PLANS: dict = {}


def _plan_of(cmd) -> tuple:
    plan = _KEY_PLANS.get(cmd)
    if plan is None:
        plan = _KEY_PLANS[cmd] = _key_plan(cmd)
    return plan


def _key_plan(cmd) -> tuple:
    name = cmd.fullname
    if name in _CHANNELS_NOT_KEYS or (cmd.first_key <= 0 and cmd.key_finder is None):
        return _NO_KEYS, None, None, None
    mixed = _MIXED_ACCESS.get(name)
    if mixed is not None:
        return _MIXED, mixed[0], mixed[1], None
    if name in ("set", "bitfield"):
        return _BY_ARGS, name, None, None
    perm = _KEY_ACCESS.get(name)
    if perm is None:  # a command Redis lacks: judged by its flags
        perm = READ if "readonly" in cmd.flags else READ | WRITE
    if cmd.key_finder is None and cmd.last_key == cmd.first_key:
        return _ONE_KEY, cmd.first_key, perm, ((cmd.first_key, perm),)
    return _SAME, perm, None, None


_GLOB_SPECIAL = frozenset(b"*?[\\")


def _key_rules(keys: list) -> dict:
    """For each needed permission (0..3): the patterns that grant it, as
    (prefixes, exact keys, other glob matchers) -- 'app:*' is a prefix test,
    'app' an exact one, only the rest runs the glob matcher."""
    rules = {}
    for need in range(4):
        prefixes, exact, globs = [], set(), []
        for pattern, perm in keys:
            if (perm & need) != need:
                continue
            head = pattern[:-1]
            if not _GLOB_SPECIAL.intersection(pattern):
                exact.add(pattern)
            elif pattern.endswith(b"*") and not _GLOB_SPECIAL.intersection(head):
                prefixes.append(head)
            else:
                globs.append(compile_glob(pattern))
        rules[need] = (tuple(prefixes), exact, globs)
    return rules


# ---------------------------------------------------------------- selectors and users


class RuleError(Exception):
    """An ACL rule that cannot be applied; the message is Redis's reason."""


_UNKNOWN = "Unknown command or category name in ACL"
_SYNTAX = "Syntax error"
_KEYS_AFTER_ALL = ("Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid "
                   "and does not have any effect. Try 'resetkeys' to start with an empty list "
                   "of patterns")
_CHANNELS_AFTER_ALL = ("Adding a pattern after the * pattern (or the 'allchannels' flag) is not "
                       "valid and does not have any effect. Try 'resetchannels' to start with an "
                       "empty list of channels")
_NO_SUCH_PASS = "The password you are trying to remove from the user does not exist"
_BAD_HASH = ("The password hash must be exactly 64 characters and contain only lowercase "
             "hexadecimal characters")
_SUB_FIRSTARG = "Allowing first-arg of a subcommand is not supported"
_HEX = frozenset(b"0123456789abcdef")


def _has_spaces(s: bytes) -> bool:
    return any(c in b" \t\n\r\x0b\x0c\x00" for c in s)


class StandIn:
    """A Redis 7.0 command hakv does not implement, known to the ACL by name
    and categories only (it never runs: the gate never sees it)."""

    __slots__ = ("name", "fullname", "categories", "parent", "subcommands")
    no_auth = False

    def __init__(self, fullname: str, categories, parent):
        self.fullname = fullname
        self.name = fullname.split("|")[-1]
        self.categories = frozenset(categories)
        self.parent = parent
        self.subcommands: dict = {}


# Every command and subcommand of Redis 7.0 by its ACL categories (COMMAND
# INFO of redis-server 7.0.15): the ACL's view of Redis's command table, for
# the commands hakv lacks and for describing users as Redis does.
_REDIS_CATALOG = """
keyspace read fast: dbsize exists expiretime pexpiretime pttl touch ttl type
keyspace read slow: dump object|encoding object|freq object|idletime object|refcount
    randomkey scan
keyspace read slow dangerous: keys
keyspace write fast: expire expireat move persist pexpire pexpireat renamenx unlink
keyspace write fast dangerous: swapdb
keyspace write slow: copy del rename
keyspace write slow dangerous: flushall flushdb migrate restore restore-asking
keyspace slow: object|help
read set sortedset list slow dangerous: sort_ro
read set fast: scard sismember smismember
read set slow: sdiff sinter sintercard smembers srandmember sscan sunion
read sortedset fast: zcard zcount zlexcount zmscore zrank zrevrank zscore
read sortedset slow: zdiff zinter zintercard zrandmember zrange zrangebylex zrangebyscore
    zrevrange zrevrangebylex zrevrangebyscore zscan zunion
read list fast: llen
read list slow: lindex lpos lrange
read hash fast: hexists hget hlen hmget hstrlen
read hash slow: hgetall hkeys hrandfield hscan hvals
read string fast: get mget strlen
read string slow: getrange lcs substr
read bitmap fast: bitfield_ro getbit
read bitmap slow: bitcount bitpos
read hyperloglog slow: pfcount
read geo slow: geodist geohash geopos georadius_ro georadiusbymember_ro geosearch
read stream fast: xlen
read stream slow: xinfo|consumers xinfo|groups xinfo|stream xpending xrange xrevrange
read stream slow blocking: xread
read fast: lolwut
read slow: memory|usage
write set sortedset list slow dangerous: sort
write set fast: sadd smove spop srem
write set slow: sdiffstore sinterstore sunionstore
write sortedset fast: zadd zincrby zpopmax zpopmin zrem
write sortedset fast blocking: bzpopmax bzpopmin
write sortedset slow: zdiffstore zinterstore zmpop zrangestore zremrangebylex
    zremrangebyrank zremrangebyscore zunionstore
write sortedset slow blocking: bzmpop
write list fast: lpop lpush lpushx rpop rpush rpushx
write list slow: linsert lmove lmpop lrem lset ltrim rpoplpush
write list slow blocking: blmove blmpop blpop brpop brpoplpush
write hash fast: hdel hincrby hincrbyfloat hmset hset hsetnx
write string fast: append decr decrby getdel getex getset incr incrby incrbyfloat setnx
write string slow: mset msetnx psetex set setex setrange
write bitmap slow: bitfield bitop setbit
write hyperloglog admin slow dangerous: pfdebug
write hyperloglog fast: pfadd
write hyperloglog slow: pfmerge
write geo slow: geoadd georadius georadiusbymember geosearchstore
write stream fast: xack xadd xautoclaim xclaim xdel xsetid
write stream slow: xgroup|create xgroup|createconsumer xgroup|delconsumer xgroup|destroy
    xgroup|setid xtrim
write stream slow blocking: xreadgroup
write slow scripting: function|delete function|flush function|load function|restore
hyperloglog admin slow dangerous: pfselftest
stream slow: xgroup|help xinfo|help
pubsub fast: publish spublish
pubsub slow: psubscribe pubsub|channels pubsub|numpat pubsub|numsub pubsub|shardchannels
    pubsub|shardnumsub punsubscribe ssubscribe subscribe sunsubscribe unsubscribe
admin fast dangerous: lastsave role
admin slow dangerous: acl|deluser acl|dryrun acl|getuser acl|list acl|load acl|log acl|save
    acl|setuser acl|users bgrewriteaof bgsave cluster|addslots cluster|addslotsrange
    cluster|bumpepoch cluster|count-failure-reports cluster|delslots cluster|delslotsrange
    cluster|failover cluster|flushslots cluster|forget cluster|meet cluster|replicas
    cluster|replicate cluster|reset cluster|saveconfig cluster|set-config-epoch
    cluster|setslot cluster|slaves config|get config|resetstat config|rewrite config|set
    debug failover latency|doctor latency|graph latency|histogram latency|history
    latency|latest latency|reset module|list module|load module|loadex module|unload monitor
    psync replconf replicaof save shutdown slaveof slowlog|get slowlog|len slowlog|reset
    sync
admin slow dangerous connection: client|kill client|list client|no-evict client|pause
    client|unblock client|unpause
fast: time
fast connection: asking auth echo hello ping quit readonly readwrite reset select
fast transaction: discard multi unwatch watch
slow: acl acl|cat acl|genpass acl|help acl|whoami client cluster cluster|countkeysinslot
    cluster|getkeysinslot cluster|help cluster|info cluster|keyslot cluster|links
    cluster|myid cluster|nodes cluster|shards cluster|slots config config|help function
    latency latency|help memory memory|doctor memory|help memory|malloc-stats memory|purge
    memory|stats module module|help object pubsub pubsub|help script slowlog slowlog|help
    xgroup xinfo
slow dangerous: info
slow connection: client|caching client|getname client|getredir client|help client|id
    client|info client|reply client|setname client|tracking client|trackinginfo command
    command|count command|docs command|getkeys command|getkeysandflags command|help
    command|info command|list wait
slow transaction: exec
slow scripting: eval eval_ro evalsha evalsha_ro fcall fcall_ro function|dump function|help
    function|kill function|list function|stats script|debug script|exists script|flush
    script|help script|kill script|load
"""


def redis_catalog() -> dict:
    """fullname -> categories, containers before their subcommands."""
    global _CATALOG
    if _CATALOG is None:
        _CATALOG = _parse_catalog()
    return _CATALOG


_CATALOG = None


def _parse_catalog() -> dict:
    out: dict = {}
    for line in _REDIS_CATALOG.strip().split("\n"):
        if not line.startswith(" "):
            head, _, names = line.partition(":")
            cats = head.split()
        else:
            names = line
        for name in names.split():
            out[name] = cats
    containers = {n: c for n, c in out.items() if "|" not in n}
    subs = {n: c for n, c in out.items() if "|" in n}
    return {**containers, **subs}


class Selector:
    """One set of permissions: commands, key patterns, channel patterns."""

    __slots__ = ("commands", "all_commands", "future", "firstargs", "all_keys", "keys",
                 "all_channels", "channels", "key_rules", "channel_matchers", "fast")

    def __init__(self, all_channels: bool = False):
        self.commands: set = set()  # allowed Command objects
        self.all_commands = False  # every command allowed (nothing removed since +@all)
        self.future = False  # started from +@all: described as "+@all ..."
        self.firstargs: dict = {}  # Command -> [allowed first argument, ...]
        self.all_keys = False
        self.keys: list = []  # [pattern bytes, permission bits]
        self.all_channels = all_channels
        self.channels: list = []  # pattern bytes
        self.key_rules: dict = {}  # needed permission -> matchers, rebuilt from keys
        self.channel_matchers: list = []
        self.fast: dict = {}  # Command -> fast_entry(cmd), emptied by refresh()

    def copy(self) -> "Selector":
        s = Selector()
        s.commands = set(self.commands)
        s.all_commands = self.all_commands
        s.future = self.future
        s.firstargs = {c: list(v) for c, v in self.firstargs.items()}
        s.all_keys = self.all_keys
        s.keys = [list(p) for p in self.keys]
        s.all_channels = self.all_channels
        s.channels = list(self.channels)
        s.refresh()
        return s

    def refresh(self) -> None:
        """After any change of the rules (User.apply ends with it)."""
        self.key_rules = _key_rules(self.keys)
        self.channel_matchers = [(compile_glob(p), p) for p in self.channels]
        # Emptied in place: ACL.shortcuts may hold this very dict.
        self.fast.clear()

    def fast_entry(self, cmd):
        """(key index, key prefixes, exact keys) when this selector allows cmd
        and cmd has at most one key, at a fixed index, that these prefixes or
        exact keys decide (no other glob): ACL.check's shortcut. Else False."""
        if (cmd.no_auth or cmd.fullname in _CHANNEL_COMMANDS
                or not (self.all_commands or cmd in self.commands)):
            return False  # no_auth: ACL.check notes the name AUTH is typed as
        kind, index, need, _ = _plan_of(cmd)
        if kind == _NO_KEYS:
            return 0, (b"",), ()  # argv[0] always "matches" the empty prefix
        if kind == _BY_ARGS:  # SET / BITFIELD: argv[1], read and/or written
            index, need = 1, READ | WRITE  # patterns that allow both decide every form
        elif kind != _ONE_KEY:
            return False
        if self.all_keys:
            return index, (b"",), ()
        prefixes, exact, globs = self.key_rules[need]
        return False if globs else (index, prefixes, exact)

    @property
    def unrestricted(self) -> bool:
        return self.all_commands and self.all_keys and self.all_channels

    # -- changing

    def change(self, acl: "ACL", cmd, allow: bool) -> None:
        """Allow or block a command; a container takes its subcommands along."""
        self._set(cmd, allow)
        self.firstargs.pop(cmd, None)
        for sub in acl.children.get(cmd, ()):
            self._set(sub, allow)

    def _set(self, cmd, allow: bool) -> None:
        if allow:
            self.commands.add(cmd)
        else:
            self.commands.discard(cmd)
            self.all_commands = False

    def change_category(self, acl: "ACL", category: str, allow: bool) -> None:
        for cmd in acl.category_members(category):
            self.change(acl, cmd, allow)

    def apply(self, acl: "ACL", op: bytes) -> None:
        """One selector rule (keys, channels, commands); raises RuleError."""
        low = op.lower()
        if low in (b"allkeys", b"~*"):
            self.all_keys = True
            self.keys = []
        elif low == b"resetkeys":
            self.all_keys = False
            self.keys = []
        elif low in (b"allchannels", b"&*"):
            self.all_channels = True
            self.channels = []
        elif low == b"resetchannels":
            self.all_channels = False
            self.channels = []
        elif low in (b"allcommands", b"+@all"):
            self.commands = set(acl.all_commands)
            self.all_commands = True
            self.future = True
            self.firstargs = {}
        elif low in (b"nocommands", b"-@all"):
            self.commands = set()
            self.all_commands = False
            self.future = False
            self.firstargs = {}
        elif op[:1] in (b"~", b"%"):
            self._add_key_pattern(op)
        elif op[:1] == b"&":
            if self.all_channels:
                raise RuleError(_CHANNELS_AFTER_ALL)
            pattern = op[1:]
            if _has_spaces(pattern):
                raise RuleError(_SYNTAX)
            if pattern not in self.channels:
                self.channels.append(pattern)
            self.all_channels = False
        elif op[:2] in (b"+@", b"-@"):
            category = op[2:].decode("utf-8", "replace").lower()
            if category not in CATEGORIES:
                raise RuleError(_UNKNOWN)
            self.change_category(acl, category, op[:1] == b"+")
        elif op[:1] == b"+":
            self._allow_command(acl, op[1:])
        elif op[:1] == b"-":
            cmd = acl.lookup(op[1:])
            if cmd is None:
                raise RuleError(_UNKNOWN)
            self.change(acl, cmd, False)
        else:
            raise RuleError(_SYNTAX)

    def _add_key_pattern(self, op: bytes) -> None:
        if self.all_keys:
            raise RuleError(_KEYS_AFTER_ALL)
        if op[:1] == b"%":
            perm = 0
            i = 1
            while i < len(op):
                c = op[i:i + 1].upper()
                if c == b"R" and not perm & READ:
                    perm |= READ
                elif c == b"W" and not perm & WRITE:
                    perm |= WRITE
                elif c == b"~":
                    i += 1
                    break
                else:
                    raise RuleError(_SYNTAX)
                i += 1
            pattern = op[i:]  # no '~': an empty pattern, as Redis takes it
        else:
            perm = ALL_PERMS
            pattern = op[1:]
        if _has_spaces(pattern):
            raise RuleError(_SYNTAX)
        for entry in self.keys:
            if entry[0] == pattern:
                entry[1] |= perm
                break
        else:
            self.keys.append([pattern, perm])
        self.all_keys = False

    def _allow_command(self, acl: "ACL", spec: bytes) -> None:
        if b"|" not in spec:
            cmd = acl.lookup(spec)
            if cmd is None:
                raise RuleError(_UNKNOWN)
            self.change(acl, cmd, True)
            return
        head, _, arg = spec.rpartition(b"|")
        cmd = acl.lookup(head)
        if cmd is None:
            raise RuleError(_UNKNOWN)
        if cmd.parent is not None:
            raise RuleError(_SUB_FIRSTARG)
        if not arg:
            raise RuleError(_SYNTAX)
        if cmd in acl.children:
            sub = acl.lookup(spec)
            if sub is None:
                raise RuleError(_UNKNOWN)
            self.change(acl, sub, True)
            return
        # A first argument of an otherwise blocked command (+select|0).
        allowed = self.firstargs.setdefault(cmd, [])
        text = arg.decode("utf-8", "surrogateescape")
        if not any(a.lower() == text.lower() for a in allowed):
            allowed.append(text)

    # -- checking

    def check(self, cmd, argv: list, keys_cache: list | None) -> tuple:
        """(0, 0) if this selector allows the call, else (reason, argv index).
        keys_cache: a one-item list shared by a user's selectors (the keys
        are worked out once), or None."""
        if not self.all_commands and not cmd.no_auth and cmd not in self.commands:
            allowed = self.firstargs.get(cmd)
            pos = 2 if cmd.parent is not None else 1
            if not allowed or len(argv) <= pos:
                return DENIED_CMD, 0
            first = argv[pos].decode("utf-8", "surrogateescape").lower()
            if not any(a.lower() == first for a in allowed):
                return DENIED_CMD, 0
        if not self.all_keys:
            plan = _KEY_PLANS.get(cmd)
            if plan is not None and plan[0] == _ONE_KEY:  # GET, INCR, HSET ...: no list built
                perms = plan[3] if len(argv) > plan[1] else ()
            elif keys_cache is None:
                perms = key_permissions(cmd, argv)
            else:
                perms = keys_cache[0]
                if perms is None:
                    perms = keys_cache[0] = key_permissions(cmd, argv)
            rules = self.key_rules
            for idx, need in perms:
                key = argv[idx]
                prefixes, exact, globs = rules[need]
                if key.startswith(prefixes) or key in exact:
                    continue
                for match in globs:
                    if match(key):
                        break
                else:
                    return DENIED_KEY, idx
        if not self.all_channels:
            spec = _CHANNEL_COMMANDS.get(cmd.fullname)
            if spec is not None:
                start, rest, literal = spec
                end = len(argv) if rest else start + 1
                for idx in range(start, min(end, len(argv))):
                    if not self.channel_allowed(argv[idx], literal):
                        return DENIED_CHANNEL, idx
        return 0, 0

    def channel_allowed(self, channel: bytes, literal: bool) -> bool:
        if self.all_channels:
            return True
        if literal:
            return channel in self.channels
        return any(match(channel) for match, _ in self.channel_matchers)

    # -- describing

    def describe(self, acl: "ACL") -> str:
        """This selector's rules in the ACL LIST form."""
        parts = []
        if self.all_keys:
            parts.append("~*")
        else:
            parts += [_key_pattern_text(p, perm) for p, perm in self.keys]
        if self.all_channels:
            parts.append("&*")
        else:
            parts.append("resetchannels")
            parts += ["&" + _text(p) for p in self.channels]
        parts.append(acl.describe_commands(self))
        return " ".join(parts)


def _text(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


def _key_pattern_text(pattern: bytes, perm: int) -> str:
    prefix = {ALL_PERMS: "~", READ: "%R~", WRITE: "%W~"}[perm]
    return prefix + _text(pattern)


class User:
    __slots__ = ("name", "enabled", "nopass", "sanitize", "passwords", "selectors")

    def __init__(self, name: str, pubsub_all: bool = False):
        self.name = name
        self.enabled = False
        self.nopass = False
        self.sanitize = None  # None (not set), "skip-sanitize-payload", "sanitize-payload"
        self.passwords: list = []  # sha256 hex strings
        self.selectors = [Selector(all_channels=pubsub_all)]

    @property
    def root(self) -> Selector:
        return self.selectors[0]

    def copy(self, name: str | None = None) -> "User":
        u = User(self.name if name is None else name)
        u.enabled = self.enabled
        u.nopass = self.nopass
        u.sanitize = self.sanitize
        u.passwords = list(self.passwords)
        u.selectors = [s.copy() for s in self.selectors]
        return u

    def apply(self, acl: "ACL", op: bytes) -> None:
        """One rule of ACL SETUSER / a `user` line; raises RuleError."""
        if not op:
            return
        low = op.lower()
        if low == b"on":
            self.enabled = True
        elif low == b"off":
            self.enabled = False
        elif low == b"skip-sanitize-payload":
            self.sanitize = "skip-sanitize-payload"
        elif low == b"sanitize-payload":
            self.sanitize = "sanitize-payload"
        elif low == b"nopass":
            self.nopass = True
            self.passwords = []
        elif low == b"resetpass":
            self.nopass = False
            self.passwords = []
        elif op[:1] in (b">", b"#"):
            if op[:1] == b">":
                digest = hash_password(op[1:])
            else:
                digest = _checked_hash(op[1:])
            if digest not in self.passwords:
                self.passwords.append(digest)
            self.nopass = False
        elif op[:1] in (b"<", b"!"):
            digest = hash_password(op[1:]) if op[:1] == b"<" else _checked_hash(op[1:])
            if digest not in self.passwords:
                raise RuleError(_NO_SUCH_PASS)
            self.passwords.remove(digest)
        elif op[:1] == b"(" and op[-1:] == b")":
            selector = Selector(all_channels=acl.pubsub_all)
            for part in split_args(op[1:-1]) or []:
                selector.apply(acl, part)
            selector.refresh()
            self.selectors.append(selector)
        elif low == b"clearselectors":
            del self.selectors[1:]
        elif low == b"reset":
            self.nopass = False
            self.passwords = []
            root = self.root
            root.apply(acl, b"resetkeys")
            root.apply(acl, b"resetchannels")
            if acl.pubsub_all:
                root.apply(acl, b"allchannels")
            self.enabled = False
            self.sanitize = "sanitize-payload"
            del self.selectors[1:]
            root.apply(acl, b"-@all")
        else:
            self.root.apply(acl, op)
        self.root.refresh()

    def password_ok(self, password: bytes) -> bool:
        if self.nopass:
            return True
        digest = hash_password(password)
        ok = False
        for stored in self.passwords:
            ok |= hmac.compare_digest(stored, digest)  # no early exit on a match
        return ok

    def describe(self, acl: "ACL") -> str:
        parts = ["on" if self.enabled else "off"]
        if self.nopass:
            parts.append("nopass")
        if self.sanitize:
            parts.append(self.sanitize)
        parts += ["#" + p for p in self.passwords]
        parts.append(self.root.describe(acl))
        parts += ["(%s)" % s.describe(acl) for s in self.selectors[1:]]
        return " ".join(parts)

    def flags(self) -> list:
        out = ["on" if self.enabled else "off"]
        if self.nopass:
            out.append("nopass")
        if self.sanitize:
            out.append(self.sanitize)
        return out


def hash_password(password: bytes) -> str:
    return hashlib.sha256(password).hexdigest()


def _checked_hash(text: bytes) -> str:
    if len(text) != 64 or not set(text) <= _HEX:
        raise RuleError(_BAD_HASH)
    return text.decode("ascii")


def merge_selector_args(args: list) -> tuple:
    """Rules with selectors spread over several arguments joined back:
    ['(~a', '+get)'] -> ['(~a +get)']. Returns (rules, None) or
    (None, the argument where an unclosed '(' starts)."""
    out = []
    current = None
    start = None
    for op in args:
        if current is None and op[:1] == b"(" and op[-1:] != b")":
            current, start = op, op
            continue
        if current is not None:
            current += b" " + op
            if op[-1:] == b")":
                out.append(current)
                current = None
            continue
        out.append(op)
    if current is not None:
        return None, start
    return out, None


# ---------------------------------------------------------------- the component


class LogEntry:
    __slots__ = ("count", "reason", "context", "object", "username", "ctime", "cinfo")

    def __init__(self, reason, context, obj, username, cinfo):
        self.count = 1
        self.reason = reason
        self.context = context
        self.object = obj
        self.username = username
        self.ctime = int(time.time() * 1000)
        self.cinfo = cinfo

    def same_as(self, other: "LogEntry") -> bool:
        return (self.reason == other.reason and self.context == other.context
                and abs(self.ctime - other.ctime) <= LOG_GROUPING_MS
                and self.object == other.object and self.username == other.username)


class ACL:
    """The users of a node and the checks on them (server.acl)."""

    def __init__(self, server):
        self.server = server
        self.settings = server.settings
        self.pubsub_all = self.settings["acl-pubsub-default"] == "allchannels"
        self._index_commands(server.table)
        self.users: dict[str, User] = {}
        self.unrestricted: set = set()  # names of users whose every command is allowed
        self.shortcuts: dict = {}  # see _refresh()
        self.log: deque = deque()
        self.users["default"] = self._default_user()
        self._refresh()

    # -- the command table

    def _index_commands(self, table) -> None:
        """Command names as the ACL knows them: the original names, whatever
        rename-command did (Redis keeps ACLs on its original table), plus
        the Redis 7.0 commands hakv does not implement (stand-ins), so that
        rules written for Redis load here and users are described alike."""
        self.by_name: dict[str, object] = {}
        self.all_commands: list = []
        for cmd in table.all():
            self.by_name[cmd.fullname] = cmd
            self.all_commands.append(cmd)
        catalog = redis_catalog()
        for name, cats in catalog.items():
            if name in self.by_name:
                continue
            parent = None
            if "|" in name:
                parent = self.by_name.get(name.split("|", 1)[0])
                if parent is None:
                    continue  # its container is listed (and made) first
            stand_in = StandIn(name, cats, parent)
            self.by_name[name] = stand_in
            self.all_commands.append(stand_in)
        # Subcommands per container, stand-ins included (the real command
        # table is left as it is).
        self.children: dict = {}
        for cmd in self.all_commands:
            if cmd.parent is not None:
                self.children.setdefault(cmd.parent, []).append(cmd)
        self._categories: dict[str, list] = {c: [] for c in CATEGORIES}
        self._counted: dict[str, list] = {c: [] for c in CATEGORIES}
        for cmd in self.all_commands:
            counted = cmd.fullname in catalog  # hakv-only commands are not in Redis's counts
            for cat in cmd.categories:
                if cat in self._categories:
                    self._categories[cat].append(cmd)
                    if counted:
                        self._counted[cat].append(cmd)

    def lookup(self, name: bytes):
        return self.by_name.get(name.decode("utf-8", "surrogateescape").lower())

    def category_members(self, category: str) -> list:
        return self._categories[category]

    def implemented_members(self, category: str) -> list:
        """ACL CAT <category>: the commands of the category hakv has."""
        return [c for c in self._categories[category] if not isinstance(c, StandIn)]

    # -- users

    def _default_user(self) -> User:
        u = User("default", self.pubsub_all)
        for op in (b"+@all", b"~*", b"&*", b"on", b"nopass"):
            u.apply(self, op)
        return u

    def new_user(self, name: str) -> User:
        return User(name, self.pubsub_all)

    def get_user(self, name: str) -> User | None:
        return self.users.get(name)

    def _refresh(self) -> None:
        """After any change of the users or their rules."""
        self.unrestricted = {name for name, u in self.users.items()
                             if u.root.unrestricted}
        # check()'s shortcut tables: a restricted user's name -> its root
        # selector's `fast` dict (Command -> Selector.fast_entry), filled as
        # commands come. A rule change empties that dict in place
        # (Selector.refresh); a replaced or deleted user is dropped here.
        self.shortcuts = {name: u.root.fast for name, u in self.users.items()
                          if name not in self.unrestricted}

    def set_user(self, name: str, rules: list) -> None:
        """ACL SETUSER: apply every rule to a copy, then install it (all or
        nothing). Raises RuleError(rule, reason)."""
        old = self.users.get(name)
        new = old.copy() if old is not None else self.new_user(name)
        for op in rules:
            try:
                new.apply(self, op)
            except RuleError as exc:
                raise RuleError(op, str(exc)) from None
        if old is not None:
            self._kill_pubsub_if_needed(new, old)
        self.users[name] = new
        self._refresh()

    def delete_user(self, name: str) -> bool:
        if self.users.pop(name, None) is None:
            return False
        self._refresh()
        self._disconnect_user(name)
        return True

    def _disconnect_user(self, name: str) -> None:
        """Clients authenticated as a user that is gone are closed (the one
        running the command after its reply)."""
        for client in list(self.server.clients.values()):
            if client.user == name and not client.is_primary:
                client.user = "default"
                client.authenticated = False
                if client.in_batch:
                    client.close_after_reply = True
                else:
                    client.flush()
                    client.close()

    def _kill_pubsub_if_needed(self, new: User, old: User) -> None:
        """A user lost channels: its subscribed clients that now hold a
        channel or pattern it may not use are disconnected."""
        if any(s.all_channels for s in new.selectors):
            return
        upcoming = [p for s in new.selectors for p in s.channels]
        if all(p in upcoming for s in old.selectors for p in s.channels) and \
                not any(s.all_channels for s in old.selectors):
            return
        allowed = Selector()
        allowed.channels = upcoming
        allowed.refresh()
        for client in list(self.server.clients.values()):
            if client.user != old.name or not client.subscribed:
                continue
            bad = (any(not allowed.channel_allowed(p, True) for p in client.patterns)
                   or any(not allowed.channel_allowed(c, False) for c in client.channels)
                   or any(not allowed.channel_allowed(c, False) for c in client.shard_channels))
            if bad:
                if client.in_batch:
                    client.close_after_reply = True
                else:
                    client.flush()
                    client.close()

    def set_default_password(self, password: str) -> None:
        """requirepass: the default user's only password (nopass when empty)."""
        u = self.users["default"]
        u.apply(self, b"resetpass")
        if password:
            u.apply(self, b">" + password.encode("utf-8", "surrogateescape"))
        else:
            u.apply(self, b"nopass")
        self._refresh()

    # -- the server's questions

    def default_requires_auth(self) -> bool:
        u = self.users["default"]
        return not (u.nopass and u.enabled)

    def protected_mode_denial(self, client) -> str | None:
        if not self.settings["protected-mode"] or not self.users["default"].nopass:
            return None
        transport = client.transport
        peer = transport.get_extra_info("peername") if transport is not None else None
        if not peer or not isinstance(peer, tuple):
            return None  # unix socket
        host = peer[0]
        if host in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
            return None
        return PROTECTED_MODE_DENIED

    def authenticate(self, ctx, username: bytes | None, password: bytes):
        """AUTH / HELLO AUTH. None on success (the client is now that user),
        else the error reply."""
        if username is None:
            if self.users["default"].nopass:
                return ErrorReply(
                    "ERR AUTH <password> called without any password configured for the "
                    "default user. Are you sure your configuration is correct?")
            name = "default"
        else:
            name = username.decode("utf-8", "surrogateescape")
        user = self.users.get(name)
        if user is not None and user.enabled and user.password_ok(password):
            ctx.authenticated = True
            ctx.parser.unauthenticated = False
            ctx.user = name
            return None
        obj = getattr(ctx, "acl_command_name", None) or ctx.last_cmd.encode()
        self.add_log(ctx, DENIED_AUTH, _text(obj), name)
        return ErrorReply(errors.WRONGPASS)

    def check(self, client, cmd, argv):
        """None if client's user may run argv, else the NOPERM reply (and an
        ACL LOG entry)."""
        # The shortcut, first (it runs per command of a restricted user): the
        # user's root selector allows the command and its only key is a
        # prefix or exact match of a pattern -- the common case of an
        # application user. One lookup by user name, one by command.
        table = self.shortcuts.get(client.user)
        if table is not None:
            entry = table.get(cmd)
            if entry:
                idx, prefixes, exact = entry
                if len(argv) <= idx:
                    return None
                key = argv[idx]
                if key.startswith(prefixes) or key in exact:
                    return None
        return self._check(client, cmd, argv)

    def _check(self, client, cmd, argv):
        """check() past its shortcut: the whole of the rules."""
        if cmd.no_auth:
            client.acl_command_name = argv[0]  # AUTH failures log the name as typed
        if client.user in self.unrestricted:
            return None
        user = self.users.get(client.user)
        if user is None:
            return ErrorReply(NOPERM_COMMAND % cmd.fullname)
        selectors = user.selectors
        fast = selectors[0].fast
        entry = fast.get(cmd)
        if entry is None:
            entry = fast[cmd] = selectors[0].fast_entry(cmd)
            if entry:  # check()'s shortcut, this once: it decides from now on
                idx = entry[0]
                if len(argv) <= idx or argv[idx].startswith(entry[1]) or argv[idx] in entry[2]:
                    return None
        if len(selectors) == 1:
            reason, idx = selectors[0].check(cmd, argv, None)
        else:
            reason, idx = self.permission(user, cmd, argv)
        if not reason:
            return None
        client.last_cmd = cmd.fullname  # CLIENT LIST / the log show the denied command
        if reason == DENIED_CMD:
            obj = cmd.fullname
        else:
            obj = _text(argv[idx])
        self.add_log(client, reason, obj, user.name)
        if client.in_script:
            return ErrorReply(SCRIPT_NOPERM[_REASON_NAME[reason]])
        if reason == DENIED_CMD:
            return ErrorReply(NOPERM_COMMAND % cmd.fullname)
        if reason == DENIED_KEY:
            return ErrorReply(NOPERM_KEY)
        return ErrorReply(NOPERM_CHANNEL)

    def permission(self, user: User, cmd, argv: list) -> tuple:
        """(0, 0) if user may run argv; else (reason, argv index of the key or
        channel), the most relevant over all selectors as Redis picks it."""
        selectors = user.selectors
        if len(selectors) == 1:
            return selectors[0].check(cmd, argv, None)
        keys_cache = [None]
        relevant, last_idx = DENIED_CMD, 0
        for selector in selectors:
            reason, idx = selector.check(cmd, argv, keys_cache)
            if not reason:
                return 0, 0
            if reason > relevant or (reason == relevant and idx > last_idx):
                relevant, last_idx = reason, idx
        return relevant, last_idx

    # -- the log

    def add_log(self, client, reason: int, obj: str, username: str) -> None:
        if client.in_script:
            context = "lua"
        elif client.multi is not None:
            context = "multi"
        else:
            context = "toplevel"
        entry = LogEntry(reason, context, obj, username, client.info_line())
        log = self.log
        for i, old in enumerate(log):
            if i >= 10:
                break
            if old.same_as(entry):
                del log[i]
                old.count += 1
                old.ctime = entry.ctime
                old.cinfo = entry.cinfo
                log.appendleft(old)
                return
        log.appendleft(entry)
        limit = self.settings["acllog-max-len"]
        while len(log) > limit:
            log.pop()

    def log_entries(self, count: int) -> list:
        now = int(time.time() * 1000)
        out = []
        for entry in list(self.log)[:count]:
            out.append({
                b"count": entry.count,
                b"reason": _REASON_NAME[entry.reason].encode(),
                b"context": entry.context.encode(),
                b"object": entry.object.encode("utf-8", "surrogateescape"),
                b"username": entry.username.encode("utf-8", "surrogateescape"),
                b"age-seconds": (now - entry.ctime) / 1000,
                b"client-info": entry.cinfo.encode("utf-8", "surrogateescape"),
            })
        return out

    # -- describing

    def describe_commands(self, selector: Selector) -> str:
        """The command rules of a selector, shortest-ish: '+@all' or '-@all',
        then the categories that fit best, then single commands (Redis's
        greedy method; single commands come in command-table order)."""
        additive = not selector.future
        fake = Selector()
        rules = []
        if additive:
            rules.append("-@all")
        else:
            rules.append("+@all")
            fake.apply(self, b"+@all")
        remaining = set(selector.commands)
        applied = set()
        while True:
            best = None
            mindiff, maxsame = None, 0
            for cat in CATEGORIES:
                if cat in applied:
                    continue
                on = off = 0
                for cmd in self._counted[cat]:
                    if cmd in remaining:
                        on += 1
                    else:
                        off += 1
                diff, same = (off, on) if additive else (on, off)
                if same > diff and (mindiff is None or diff < mindiff
                                    or (diff == mindiff and same > maxsame)):
                    best, mindiff, maxsame = cat, diff, same
            if best is None:
                break
            applied.add(best)
            fake.change_category(self, best, additive)
            # The category is now accounted for: take it out of the comparison.
            for cmd in self._counted[best]:
                for c in (cmd, *self.children.get(cmd, ())):
                    if additive:
                        remaining.discard(c)
                    else:
                        remaining.add(c)
            rules.append(("+@" if additive else "-@") + best)
        for cmd in self.all_commands:
            if cmd.parent is not None:
                continue
            self._describe_single(selector, fake, cmd, rules)
            for sub in self.children.get(cmd, ()):
                self._describe_single(selector, fake, sub, rules)
            allowed = selector.firstargs.get(cmd)
            if allowed and cmd not in selector.commands:
                rules += ["+%s|%s" % (cmd.fullname, a) for a in allowed]
        return " ".join(rules)

    def _describe_single(self, selector, fake, cmd, rules) -> None:
        user_bit = cmd in selector.commands
        if user_bit != (cmd in fake.commands):
            rules.append(("+" if user_bit else "-") + cmd.fullname)
            fake.change(self, cmd, user_bit)

    def describe_user(self, user: User) -> str:
        return user.describe(self)

    def list_lines(self) -> list:
        return ["user %s %s" % (name, self.users[name].describe(self))
                for name in sorted(self.users, key=lambda n: n.encode("utf-8",
                                                                      "surrogateescape"))]

    # -- files

    def load_file(self, path: str) -> str | None:
        """ACL LOAD: replace every user by the file's (all or nothing).
        Returns None, or the errors found, as Redis words them."""
        shown = self.settings["aclfile"]
        try:
            with open(path, "rb") as f:
                text = f.read()
        except OSError as exc:
            return "Error loading ACLs, opening file '%s': %s" % (path, exc.strerror)
        errs = []
        users: dict[str, User] = {}
        for lineno, raw in enumerate(text.split(b"\n"), 1):
            line = raw.strip(b" \t\r\n")
            if not line:
                continue
            argv = [a for a in line.split(b" ") if a]
            if not argv:
                continue
            if argv[0] != b"user" or len(argv) < 2:
                errs.append("%s:%d should start with user keyword followed by the username. "
                            % (shown, lineno))
                continue
            name = _text(argv[1])
            if name in users:
                errs.append("WARNING: Duplicate user '%s' found on line %d. " % (name, lineno))
                continue
            user = users[name] = self.new_user(name)
            rules, _ = merge_selector_args(argv[2:])
            if rules is None:
                errs.append("%s:%d: Unmatched parenthesis in selector definition."
                            % (shown, lineno))
                continue
            for op in rules:
                try:
                    user.apply(self, op.strip(b"\t\r\n"))
                except RuleError as exc:
                    errs.append("%s:%d: %s. " % (shown, lineno, exc))
        if errs:
            return "".join(errs) + ("WARNING: ACL errors detected, no change to the previously "
                                    "active ACL rules was performed")
        if "default" not in users:
            users["default"] = self._default_user()
        old = self.users
        self.users = users
        self._refresh()
        # Clients of the replaced users are disconnected (the default user's
        # clients keep their connection, with its new rules).
        for name in old:
            if name != "default":
                self._disconnect_user(name)
        return None

    def save_file(self, path: str) -> bool:
        text = "".join(line + "\n" for line in self.list_lines())
        tmp = "%s.tmp-%d-%d" % (path, os.getpid(), int(time.time() * 1000))
        try:
            with open(tmp, "w", encoding="utf-8", errors="surrogateescape") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            self.server.log("warning", "Writing ACL file for ACL SAVE: %s" % exc.strerror)
            try:
                os.unlink(tmp)
            except OSError:
                pass
            return False
        return True

    def load_config_users(self, lines: list) -> None:
        """`user` lines of the config file (applied at startup); raises
        SystemExit with Redis's complaint on a bad rule."""
        seen = set()
        for line in lines:
            argv = [a for a in line.encode("utf-8", "surrogateescape").split(b" ") if a]
            if not argv:
                continue
            name = _text(argv[0])
            if name in seen:
                _fatal(self.server, "Error in user declaration '%s': Duplicate user found. A "
                       "user can only be defined once in config files" % name)
            seen.add(name)
            if _has_spaces(argv[0]):
                _fatal(self.server, "Spaces not allowed in ACL usernames")
            rules, start = merge_selector_args(argv[1:])
            if rules is None:
                _fatal(self.server, "Unmatched parenthesis in acl selector starting at '%s'."
                       % _text(start))
            user = self.users.get(name)
            if user is None:
                user = self.users[name] = self.new_user(name)
            else:
                user.apply(self, b"reset")
            for op in rules:
                try:
                    user.apply(self, op)
                except RuleError as exc:
                    _fatal(self.server, "Error loading ACL rule '%s' for the user named '%s': %s"
                           % (_text(op), name, exc))
            if not user.enabled:
                self.server.log("notice", "The user '%s' is disabled (there is no 'on' modifier "
                                "in the user description). Make sure this is not a "
                                "configuration error." % name)
        self._refresh()

    # -- settings

    def on_config_set(self, name: str, value) -> None:
        if name == "requirepass":
            self.set_default_password(value)
        elif name == "acllog-max-len":
            while len(self.log) > value:
                self.log.pop()
        elif name == "acl-pubsub-default":
            self.pubsub_all = value == "allchannels"


def _fatal(server, message: str):
    server.log("warning", message)
    raise SystemExit(1)


# ---------------------------------------------------------------- rename-command


def apply_renames(server) -> None:
    """rename-command OLD NEW (NEW empty: the command is gone). The server
    gets its own copy of the table, so the shared one keeps its names."""
    lines = server.settings["rename-command"]
    if not lines:
        return
    from hakv.common.commands.table import CommandTable
    table = CommandTable()
    table.commands = dict(server.table.commands)
    for line in lines:
        old, _, new = line.partition(" ")
        new = new.strip()
        if len(new) >= 2 and new[0] == new[-1] and new[0] in "\"'":
            new = new[1:-1]
        cmd = table.commands.pop(old.lower().encode("utf-8", "surrogateescape"), None)
        if cmd is None:
            _fatal(server, "No such command in rename-command: '%s'" % old)
        if new:
            key = new.lower().encode("utf-8", "surrogateescape")
            if key in table.commands:
                _fatal(server, "Target command name already exists in rename-command: '%s'"
                       % new)
            table.commands[key] = cmd
    server.table = table


def attach(server) -> ACL:
    acl = ACL(server)
    settings = server.settings
    if settings["requirepass"]:
        acl.set_default_password(settings["requirepass"])
    aclfile = settings["aclfile"]
    if aclfile and settings["user"]:
        _fatal(server, "Configuring Redis with users defined in redis.conf and at the same "
               "setting an ACL file path is invalid. This setup is very likely to lead to "
               "configuration errors and security holes, please define either an ACL file or "
               "declare users directly in your redis.conf, but not both.")
    acl.load_config_users(settings["user"])
    if aclfile:
        problems = acl.load_file(aclfile)
        if problems:
            _fatal(server, "Aborting Redis startup because of ACL errors: %s" % problems)
    apply_renames(server)
    settings.listeners.append(acl.on_config_set)
    # CONFIG REWRITE writes the live users unless an aclfile holds them (ACL SAVE).
    settings.rewrite_user_lines = lambda: [] if settings["aclfile"] else acl.list_lines()
    server.acl = acl
    return acl
