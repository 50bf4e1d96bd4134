"""SORT and SORT_RO, as Redis 7.0 has them.

SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC]
[ALPHA] [STORE destination] sorts a list, set or sorted set. Patterns name
other keys: the first '*' is replaced by the element, "key->field" reads a
hash field, GET # is the element itself, and a BY pattern without '*'
("nosort") skips sorting (lists and sorted sets then keep their own order).

What follows Redis to the letter because clients and replicas see it:
* numeric sorting parses each weight with strtod semantics (leading blanks
  and hex accepted, trailing garbage, NaN, overflow and underflow -- subnormal
  results included -- refused with "One or more scores can't be converted
  into double"); equal weights are ordered by
  the elements' bytes, a missing weight key counts as 0;
* ALPHA compares bytes (Redis uses strcoll, the same in the C locale, up to
  the first NUL byte) and puts elements whose BY key is missing first;
* a set sorted with "nosort" into a STORE key, or inside a script, is sorted
  ALPHA instead, so replicas and the AOF get the same list;
* SORT ... STORE writes a list (GET results missing become ""), is
  propagated as sent, and notifies "sortstore"; an empty result deletes the
  destination;
* sorting a sorted set converts it to the skiplist encoding (Redis does it
  destructively), which OBJECT ENCODING then shows;
* BY and GET patterns read arbitrary keys, so a user whose ACL rules do not
  give read access to every key gets "BY/GET option of SORT denied due to
  insufficient ACL permissions." (checked while parsing, like Redis).
"""

from __future__ import annotations

import math
from collections import deque

from hakv.common import errors
from hakv.common.acl import READ
from hakv.common.commands.table import command, node_table
from hakv.common.commands.zsets import _mark_skiplist, _strtod
from hakv.common.numbers import get_int
from hakv.common.resp import ErrorReply
from hakv.common.types.zset import ZSet

G = "generic"

NOT_DOUBLE = "ERR One or more scores can't be converted into double"
BY_DENIED = "ERR BY option of SORT denied due to insufficient ACL permissions."
GET_DENIED = "ERR GET option of SORT denied due to insufficient ACL permissions."

_BLANKS = b" \t\n\v\f\r"
_DBL_MIN = 2.2250738585072014e-308


# ---------------------------------------------------------------- patterns


def lookup_pattern(db, pattern: bytes, element: bytes):
    """The value a BY/GET pattern names for element, None if there is none:
    "#" is the element itself; the first '*' is replaced by the element;
    "...->field" (with something after the arrow, found after the '*')
    reads that field of a hash; otherwise the key must hold a string."""
    if pattern == b"#":
        return element
    star = pattern.find(b"*")
    if star < 0:
        return None
    arrow = pattern.find(b"->", star + 1)
    field = None
    end = len(pattern)
    if arrow >= 0 and arrow + 2 < len(pattern):
        field = pattern[arrow + 2:]
        end = arrow
    key = pattern[:star] + element + pattern[star + 1:end]
    value = db.get(key)
    if value is None:
        return None
    if field is not None:
        return value.get(field) if isinstance(value, dict) else None
    return value if isinstance(value, bytes) else None


def _weight(text: bytes) -> float | None:
    """A numeric sort weight as Redis reads it (strtod to the end of the C
    string, ERANGE and NaN refused); None if refused."""
    text = text.split(b"\0", 1)[0].lstrip(_BLANKS)
    if not text:
        return 0.0  # strtod reads nothing and stops at the terminator
    parsed = _strtod(text)
    if parsed is None or parsed[1]:
        return None
    value = parsed[0]
    if math.isnan(value) or (value != 0.0 and abs(value) < _DBL_MIN):
        return None  # glibc's strtod reports ERANGE for subnormal results too
    return value


# ---------------------------------------------------------------- ACL


def _full_key_access(ctx, argv) -> bool:
    """Does a selector of the user allow this call and read access to every
    key (Redis's ACLUserCheckCmdWithUnrestrictedKeyAccess)?"""
    acl = getattr(ctx.server, "acl", None)
    if acl is None:
        return True
    name = getattr(ctx, "user", None)
    if name is None or name in acl.unrestricted:
        return True
    user = acl.users.get(name)
    if user is None:
        return True
    cmd = node_table.lookup(argv[0])
    for selector in user.selectors:
        if selector.check(cmd, argv, None)[0]:
            continue
        if selector.all_keys:
            return True
        if any(pattern == b"*" and perm & READ for pattern, perm in selector.keys):
            return True
    return False


# ---------------------------------------------------------------- SORT


def _sort(ctx, argv, readonly: bool):
    desc = alpha = dontsort = False
    offset, count = 0, -1
    by = store = None
    gets = []
    full_access = None
    n = len(argv)
    i = 2
    while i < n:
        word = argv[i].lower()
        left = n - i - 1
        if word == b"asc":
            desc = False
        elif word == b"desc":
            desc = True
        elif word == b"alpha":
            alpha = True
        elif word == b"limit" and left >= 2:
            offset = get_int(argv[i + 1])
            count = get_int(argv[i + 2])
            i += 2
        elif word == b"store" and left >= 1 and not readonly:
            store = argv[i + 1]
            i += 1
        elif word == b"by" and left >= 1:
            by = argv[i + 1]
            if b"*" not in by:
                dontsort = True
            else:
                if full_access is None:
                    full_access = _full_key_access(ctx, argv)
                if not full_access:
                    raise ErrorReply(BY_DENIED)
            i += 1
        elif word == b"get" and left >= 1:
            if full_access is None:
                full_access = _full_key_access(ctx, argv)
            if not full_access:
                raise ErrorReply(GET_DENIED)
            gets.append(argv[i + 1])
            i += 1
        else:
            raise ErrorReply(errors.SYNTAX)
        i += 1

    db = ctx.db
    key = argv[1]
    value = db.get(key)
    if value is None:
        value = deque()
    elif not isinstance(value, (deque, set, ZSet)):
        raise ErrorReply(errors.WRONGTYPE)

    if dontsort and isinstance(value, set) and (store is not None
                                                or getattr(ctx, "in_script", False)):
        # An unordered set must come out the same on replicas: sort it.
        dontsort = False
        alpha = True
        by = None
    if isinstance(value, ZSet):
        _mark_skiplist(db, key, value)  # Redis converts it for good

    size = len(value)
    start = min(max(offset, 0), size)
    count = min(max(count, -1), size)
    end = size - 1 if count < 0 else start + count - 1
    if start >= size:
        start, end = size - 1, size - 2
    if end >= size:
        end = size - 1

    if dontsort and not isinstance(value, set):
        # Native order (reversed for DESC), only the LIMIT window.
        if end >= start:
            if isinstance(value, deque):
                items = list(value)
                items = items[::-1] if desc else items
            else:
                items = [m for m, _ in value.items()]
                items = items[::-1] if desc else items
            elements = items[start:end + 1]
        else:
            elements = []
        end -= start
        start = 0
    else:
        if isinstance(value, ZSet):
            elements = list(value.dict)
        else:
            elements = list(value)

    if not dontsort:
        bad = False
        if alpha:
            if by is not None:
                def weight_of(e):
                    w = lookup_pattern(db, by, e)
                    if w is None:
                        return (0, b"")
                    return (1, w if store is not None else w.split(b"\0", 1)[0])
                keyed = [(weight_of(e), e) for e in elements]
            elif store is not None:
                keyed = [(e, e) for e in elements]
            else:
                keyed = [(e.split(b"\0", 1)[0], e) for e in elements]
        else:
            keyed = []
            for e in elements:
                w = lookup_pattern(db, by, e) if by is not None else e
                if w is None:
                    score = 0.0
                else:
                    score = _weight(w)
                    if score is None:
                        bad = True
                        score = 0.0
                keyed.append(((score, e), e))
        keyed.sort(key=lambda pair: pair[0], reverse=desc)
        elements = [e for _, e in keyed]
        if bad:
            raise ErrorReply(NOT_DOUBLE)

    window = elements[start:end + 1] if end >= start else []
    if store is None:
        if not gets:
            return window
        out = []
        for e in window:
            for pattern in gets:
                out.append(lookup_pattern(db, pattern, e))
        return out

    if gets:
        result = deque()
        for e in window:
            for pattern in gets:
                v = lookup_pattern(db, pattern, e)
                result.append(b"" if v is None else v)
    else:
        result = deque(window)
    server = ctx.server
    if result:
        db.set(store, result)
        server.keyspace.notify(db, "l", b"sortstore", store)
        server.dirty += len(result)
        db.signal_ready(store)
    elif db.delete(store):
        server.keyspace.notify(db, "g", b"del", store)
        server.dirty += 1
    return len(result)


def _sort_keys(argv) -> list:
    """The sorted key and the last STORE destination, found the way Redis's
    sortGetKeys skips option arguments."""
    keys = [1]
    store = None
    skip = {b"limit": 2, b"get": 1, b"by": 1}
    i = 2
    while i < len(argv):
        word = argv[i].lower()
        if word in skip:
            i += skip[word]
        elif word == b"store" and i + 1 < len(argv):
            store = i + 1
        i += 1
    return keys if store is None else keys + [store]


@command("sort", -2, "write denyoom", keys=(1, 1, 1), key_finder=_sort_keys, group=G,
         since="1.0.0")
def sort(ctx, argv):
    return _sort(ctx, argv, False)


@command("sort_ro", -2, "readonly", keys=(1, 1, 1), key_finder=lambda argv: [1], group=G,
         since="7.0.0")
def sort_ro(ctx, argv):
    return _sort(ctx, argv, True)
