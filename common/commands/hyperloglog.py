"""HyperLogLog commands: PFADD PFCOUNT PFMERGE PFDEBUG PFSELFTEST.

A HLL is an ordinary string value in Redis's exact byte layout
(common/types/hll.py), so GET, DUMP, RDB and replication carry it unchanged.
What makes these commands differ from plain string writes, as in Redis:
- PFCOUNT of one key stores the cardinality it computed in the string's
  cache bytes; that is a change of the value, so it bumps dirty (PFCOUNT is
  then propagated as is) and touches WATCHed keys, without a notification.
- PFMERGE notifies "pfadd" (Redis 7.0 reuses the event) and writes a dense
  destination when any source is dense.
- PFDEBUG GETREG/TODENSE that convert a sparse HLL count as a change.
"""

from __future__ import annotations

from hakv.common.commands.keys import note_string_encoding
from hakv.common.commands.table import command
from hakv.common.resp import ErrorReply
from hakv.common.types import hll

G = "hyperloglog"
NOT_HLL = "WRONGTYPE Key is not a valid HyperLogLog string value."
INVALID = "INVALIDOBJ Corrupted HLL object detected"


def _as_hll(db, key: bytes):
    """The string at key checked to be a HLL; None if the key is missing."""
    value = db.get_typed(key, bytes)
    if value is not None and not hll.is_valid_header(value):
        raise ErrorReply(NOT_HLL)
    return value


def _get_counted(db, key: bytes, counted: bool):
    """_as_hll with keyspace_hits/misses counted or not, whatever the
    command's flags say: Redis 7.0 counts PFMERGE's sources (it reads them)
    but not the lookups PFADD and PFDEBUG make for writing."""
    ks = db.ks
    saved = ks.track_reads
    ks.track_reads = counted
    try:
        return _as_hll(db, key)
    finally:
        ks.track_reads = saved


def _store(db, key: bytes, value: bytes) -> None:
    db.set(key, value, keepttl=True)
    note_string_encoding(db, key, value)  # Redis creates HLLs as raw strings


def _sparse_max(ctx) -> int:
    return ctx.server.settings["hll-sparse-max-bytes"]


@command("pfadd", -2, "write denyoom fast", keys=(1, 1, 1), group=G, since="2.8.9",
         summary="Adds the specified elements to the specified HyperLogLog.")
def pfadd(ctx, argv):
    db = ctx.db
    key = argv[1]
    value = _get_counted(db, key, False)
    updated = 0
    if value is None:
        value = hll.EMPTY
        updated = 1
    sketch = hll.HLL(value, _sparse_max(ctx))
    try:
        for element in argv[2:]:
            updated += sketch.add(element)
    except hll.HLLError:
        raise ErrorReply(INVALID) from None
    if not updated:
        return 0
    hll.invalidate(sketch.buf)
    _store(db, key, sketch.value())
    ctx.server.keyspace.notify(db, "$", b"pfadd", key)
    ctx.server.dirty += updated
    return 1


@command("pfcount", -2, "readonly", keys=(1, -1, 1), group=G, since="2.8.9",
         summary="Return the approximated cardinality of the set(s) observed by the "
                 "HyperLogLog at key(s).")
def pfcount(ctx, argv):
    db = ctx.db
    if len(argv) > 2:
        # Several keys: count their union, caches neither read nor written.
        regs = _union_of(db, argv[1:], counted=None)[0]
        return hll.estimate(hll.histogram_of(regs))
    key = argv[1]
    value = _as_hll(db, key)  # a read: counted in keyspace_hits/misses
    if value is None:
        return 0
    card = hll.cached_card(value)
    if card is not None:
        return card
    try:
        card = hll.count(value)
    except hll.HLLError:
        raise ErrorReply(INVALID) from None
    buf = bytearray(value)
    hll.with_card(buf, card)
    _store(db, key, bytes(buf))
    ctx.server.dirty += 1  # the cache is part of the string: replicate it
    return card


def _union_of(db, keys, counted):
    """(register-wise max of the HLLs at keys, unpacked; whether one of them
    is dense). Missing keys count as empty. counted: see _get_counted
    (None: as the command's flags say)."""
    union = None
    any_dense = False
    for key in keys:
        value = _as_hll(db, key) if counted is None else _get_counted(db, key, counted)
        if value is None:
            continue
        if hll.encoding(value) == hll.DENSE:
            any_dense = True
        try:
            regs = hll.unpack(value)
        except hll.HLLError:
            raise ErrorReply(INVALID) from None
        union = regs if union is None else hll.union(union, regs)
    return union or bytes(hll.REGISTERS), any_dense


@command("pfmerge", -2, "write denyoom", keys=(1, -1, 1), group=G, since="2.8.9",
         summary="Merge N different HyperLogLogs into a single one.")
def pfmerge(ctx, argv):
    db = ctx.db
    # The destination is one of the sources.
    maxregs, use_dense = _union_of(db, argv[1:], counted=True)
    dest = argv[1]
    value = _get_counted(db, dest, False)
    if value is None:
        value = hll.EMPTY
        db.set(dest, value)  # Redis adds the key before converting it
    sketch = hll.HLL(value, _sparse_max(ctx))
    if use_dense:
        sketch.make_dense()  # the destination was checked as a source
    else:
        # Redis sets the registers one by one into the sparse form, whose
        # bytes depend on that order; once promoted, the rest is the union.
        for index in range(hll.REGISTERS):
            reg = maxregs[index]
            if reg:
                try:
                    sketch.set(index, reg)
                except hll.HLLError:
                    pass  # Redis ignores a failed sparse set here too
                if sketch.encoding == hll.DENSE:
                    break
    if sketch.encoding == hll.DENSE:
        # Every register of the destination is <= the union: write it whole.
        sketch.buf[hll.HDR_SIZE:] = hll.pack(maxregs)
    hll.invalidate(sketch.buf)
    _store(db, dest, sketch.value())
    ctx.server.keyspace.notify(db, "$", b"pfadd", dest)
    ctx.server.dirty += 1
    return "OK"


@command("pfdebug", 3, "write denyoom admin", keys=(2, 2, 1), group=G, since="2.8.9",
         summary="Internal commands for debugging HyperLogLog values.")
def pfdebug(ctx, argv):
    db = ctx.db
    sub = argv[1].lower()
    key = argv[2]
    value = _get_counted(db, key, False)
    if value is None:
        raise ErrorReply("ERR The specified key does not exist")
    if sub in (b"getreg", b"todense"):
        converted = False
        if hll.encoding(value) == hll.SPARSE:
            try:
                value = hll.to_dense(value)
            except hll.HLLError:
                raise ErrorReply(INVALID) from None
            _store(db, key, value)
            ctx.server.dirty += 1  # the encoding change must reach replicas
            converted = True
        if sub == b"getreg":
            return hll.dense_registers(value)
        return 1 if converted else 0
    if sub == b"decode":
        if hll.encoding(value) != hll.SPARSE:
            raise ErrorReply("ERR HLL encoding is not sparse")
        return hll.decode_sparse(value)
    if sub == b"encoding":
        return "dense" if hll.encoding(value) == hll.DENSE else "sparse"
    raise ErrorReply("ERR Unknown PFDEBUG subcommand '%s'"
                     % argv[1].decode("utf-8", "replace"))


@command("pfselftest", 1, "admin", group=G, since="2.8.9",
         summary="An internal command for testing HyperLogLog values.")
def pfselftest(ctx, argv):
    problem = hll.self_test()
    if problem:
        raise ErrorReply("ERR " + problem)
    return "OK"
