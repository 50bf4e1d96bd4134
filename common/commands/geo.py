"""The GEO commands of Redis 7.0: GEOADD GEODIST GEOHASH GEOPOS GEOSEARCH
GEOSEARCHSTORE and the deprecated GEORADIUS GEORADIUSBYMEMBER (+ their _RO
forms).

A GEO set is a plain sorted set whose scores are 52-bit geohashes
(common/geohash.py has the math), so ZSCORE, ZRANGE and the RDB show exactly
what Redis shows. As in Redis, GEOADD is ZADD with computed scores: it runs
ZADD's code and is propagated (AOF, replicas) as that ZADD. The STORE forms
are propagated as sent: their result only depends on the data.

Replies follow Redis's formats: coordinates as its "human" long double text
(a bulk in RESP2, a double in RESP3), distances with exactly 4 decimals (a
bulk in both), WITHHASH as the integer score.
"""

from __future__ import annotations

from hakv.common import errors, geohash
from hakv.common.commands.table import command
from hakv.common.commands.zsets import (_fits_listpack, _limits, _mark_skiplist, _zadd,
                                        get_score)
from hakv.common.numbers import get_int
from hakv.common.resp import NULL_ARRAY, ErrorReply, Raw
from hakv.common.types.zset import ZSet

G = "geo"
K1 = (1, 1, 1)

UNITS = {b"m": 1.0, b"km": 1000.0, b"ft": 0.3048, b"mi": 1609.34}
BAD_UNIT = "ERR unsupported unit provided. please use M, KM, FT, MI"
NO_MEMBER = "ERR could not decode requested zset member"


# ---------------------------------------------------------------- argument parsing


def _lonlat(lon_raw: bytes, lat_raw: bytes) -> tuple[float, float]:
    lon = get_score(lon_raw)
    lat = get_score(lat_raw)
    if not (geohash.LONG_MIN <= lon <= geohash.LONG_MAX
            and geohash.LAT_MIN <= lat <= geohash.LAT_MAX):
        raise ErrorReply("ERR invalid longitude,latitude pair %f,%f" % (lon, lat))
    return lon, lat


def _unit(raw: bytes) -> float:
    factor = UNITS.get(raw.lower())
    if factor is None:
        raise ErrorReply(BAD_UNIT)
    return factor


def _radius(value_raw: bytes, unit_raw: bytes) -> tuple[float, float]:
    radius = get_score(value_raw, "ERR need numeric radius")
    if radius < 0:
        raise ErrorReply("ERR radius cannot be negative")
    return radius, _unit(unit_raw)


def _box(width_raw: bytes, height_raw: bytes, unit_raw: bytes):
    width = get_score(width_raw, "ERR need numeric width")
    height = get_score(height_raw, "ERR need numeric height")
    if height < 0 or width < 0:
        raise ErrorReply("ERR height or width cannot be negative")
    return width, height, _unit(unit_raw)


def _member_position(z: ZSet, member: bytes) -> tuple[float, float]:
    score = z.score(member)
    if score is None:
        raise ErrorReply(NO_MEMBER)
    return geohash.decode_score(score)


# ---------------------------------------------------------------- reply pieces


def _coord(ctx, value: float):
    text = geohash.human_double(value)
    return Raw(b",%s\r\n" % text) if ctx.resp3 else text


def _as_long_long(score: float) -> int:
    """C's (long long)score on x86-64 (WITHHASH of a non-GEO score)."""
    bits = geohash._cvttsd2si(score)
    return bits - (1 << 64) if bits >= 1 << 63 else bits


def _position(ctx, score: float) -> list:
    lon, lat = geohash.decode_score(score)
    return [_coord(ctx, lon), _coord(ctx, lat)]


# ---------------------------------------------------------------- GEOADD


@command("geoadd", -5, "write denyoom", keys=K1, group=G, since="3.2.0")
def geoadd(ctx, argv):
    at = 2
    nx = xx = False
    while at < len(argv):
        word = argv[at].lower()
        if word == b"nx":
            nx = True
        elif word == b"xx":
            xx = True
        elif word != b"ch":
            break
        at += 1
    if (len(argv) - at) % 3 or (nx and xx):
        raise ErrorReply(errors.SYNTAX)
    zadd_argv = [b"zadd"] + argv[1:at]
    for i in range(at, len(argv), 3):
        lon, lat = _lonlat(argv[i], argv[i + 1])
        bits = geohash.align52(geohash.encode(lon, lat), geohash.STEP_MAX)
        zadd_argv += [b"%d" % bits, argv[i + 2]]
    server = ctx.server
    before = server.dirty
    reply = _zadd(ctx, zadd_argv, False)
    if server.dirty != before:
        ctx.propagate(zadd_argv)  # Redis replicates GEOADD as the ZADD it ran
    return reply


# ---------------------------------------------------------------- point queries


@command("geodist", -4, "readonly", keys=K1, group=G, since="3.2.0")
def geodist(ctx, argv):
    factor = 1.0
    if len(argv) == 5:
        factor = _unit(argv[4])
    elif len(argv) > 5:
        raise ErrorReply(errors.SYNTAX)
    z = ctx.db.get_typed(argv[1], ZSet)
    if z is None:
        return None
    s1 = z.score(argv[2])
    s2 = z.score(argv[3])
    if s1 is None or s2 is None:
        return None
    lon1, lat1 = geohash.decode_score(s1)
    lon2, lat2 = geohash.decode_score(s2)
    return geohash.fixed4(geohash.distance(lon1, lat1, lon2, lat2) / factor)


@command("geohash", -2, "readonly", keys=K1, group=G, since="3.2.0")
def geohash_command(ctx, argv):
    z = ctx.db.get_typed(argv[1], ZSet)
    out = []
    for member in argv[2:]:
        score = None if z is None else z.score(member)
        out.append(None if score is None else geohash.text_hash(score))
    return out


@command("geopos", -2, "readonly", keys=K1, group=G, since="3.2.0")
def geopos(ctx, argv):
    z = ctx.db.get_typed(argv[1], ZSet)
    out = []
    for member in argv[2:]:
        score = None if z is None else z.score(member)
        out.append(NULL_ARRAY if score is None else _position(ctx, score))
    return out


# ---------------------------------------------------------------- searches

# What a search variant accepts (Redis's georadiusGeneric flags).
BY_COORDS, BY_MEMBER, NO_STORE, SEARCH, SEARCH_STORE = 1, 2, 4, 8, 16


class _Options:
    __slots__ = ("withdist", "withhash", "withcoord", "any", "sort", "count", "store",
                 "storedist", "from_member", "from_lonlat", "by_radius", "by_box")

    def __init__(self):
        self.withdist = self.withhash = self.withcoord = self.any = False
        self.sort = 0  # 0 none, 1 ASC, 2 DESC
        self.count = 0
        self.store = None
        self.storedist = False
        self.from_member = self.from_lonlat = self.by_radius = self.by_box = False


def _parse_options(argv, base: int, flags: int, z, shape, opts: _Options) -> None:
    """Redis's option loop: errors come in the order of the arguments."""
    n = len(argv)
    i = base
    while i < n:
        arg = argv[i].lower()
        left = n - i - 1
        if arg == b"withdist":
            opts.withdist = True
        elif arg == b"withhash":
            opts.withhash = True
        elif arg == b"withcoord":
            opts.withcoord = True
        elif arg == b"any":
            opts.any = True
        elif arg == b"asc":
            opts.sort = 1
        elif arg == b"desc":
            opts.sort = 2
        elif arg == b"count" and left >= 1:
            count = get_int(argv[i + 1])
            if count <= 0:
                raise ErrorReply("ERR COUNT must be > 0")
            opts.count = count
            i += 1
        elif (arg in (b"store", b"storedist") and left >= 1
              and not flags & (NO_STORE | SEARCH)):
            opts.store = argv[i + 1]
            opts.storedist = arg == b"storedist"
            i += 1
        elif arg == b"storedist" and flags & SEARCH and flags & SEARCH_STORE:
            opts.storedist = True
        elif (arg == b"frommember" and left >= 1 and flags & SEARCH
              and not opts.from_lonlat):
            if z is not None:
                shape.lon, shape.lat = _member_position(z, argv[i + 1])
            opts.from_member = True
            i += 1
        elif (arg == b"fromlonlat" and left >= 2 and flags & SEARCH
              and not opts.from_member):
            shape.lon, shape.lat = _lonlat(argv[i + 1], argv[i + 2])
            opts.from_lonlat = True
            i += 2
        elif arg == b"byradius" and left >= 2 and flags & SEARCH and not opts.by_box:
            shape.radius, shape.conversion = _radius(argv[i + 1], argv[i + 2])
            shape.kind = geohash.CIRCLE
            opts.by_radius = True
            i += 2
        elif arg == b"bybox" and left >= 3 and flags & SEARCH and not opts.by_radius:
            shape.width, shape.height, shape.conversion = _box(argv[i + 1], argv[i + 2],
                                                              argv[i + 3])
            shape.kind = geohash.BOX
            opts.by_box = True
            i += 3
        else:
            raise ErrorReply(errors.SYNTAX)
        i += 1


def _find(z: ZSet, shape, limit: int) -> list:
    """[(distance m, score, member, lon, lat)] in Redis's scan order: cell by
    cell, ascending score inside a cell; stops at limit (ANY) if not 0."""
    found = []
    last = None
    for index, (bits, step) in enumerate(geohash.search_cells(shape)):
        if bits == 0 and step == 0:
            continue
        # A huge radius can make a neighbour equal the one scanned before it
        # (Redis compares with the previous scanned cell, never the centre).
        if last and (bits, step) == last:
            continue
        if found and limit and len(found) >= limit:
            break
        lo, hi = geohash.cell_scores(bits, step)
        start, end = z.score_range(lo, hi, False, True)
        if start < end:
            for member, score in z.range(start, end - 1):
                lon, lat = geohash.decode_score(score)
                dist = shape.contains(lon, lat)
                if dist is not None:
                    found.append((dist, score, member, lon, lat))
                if found and limit and len(found) >= limit:
                    break
        last = (bits, step) if index else None
    return found


def _search(ctx, argv, key_at: int, flags: int):
    db = ctx.db
    z = db.get_typed(argv[key_at], ZSet)
    shape = geohash.Shape()
    opts = _Options()
    if flags & BY_COORDS:
        base = 6
        shape.lon, shape.lat = _lonlat(argv[2], argv[3])
        shape.radius, shape.conversion = _radius(argv[4], argv[5])
    elif flags & BY_MEMBER:
        base = 5
        if z is not None:
            shape.lon, shape.lat = _member_position(z, argv[2])
            shape.radius, shape.conversion = _radius(argv[3], argv[4])
    else:
        base = 2
        if flags & SEARCH_STORE:
            base = 3
            opts.store = argv[1]
    _parse_options(argv, base, flags, z, shape, opts)
    if opts.store is not None and (opts.withdist or opts.withhash or opts.withcoord):
        raise ErrorReply("ERR %s is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
                         % ("GEOSEARCHSTORE" if flags & SEARCH_STORE
                            else "STORE option in GEORADIUS"))
    name = argv[0].decode("utf-8", "surrogateescape")
    if flags & SEARCH and not (opts.from_member or opts.from_lonlat):
        raise ErrorReply("ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for %s"
                         % name)
    if flags & SEARCH and not (opts.by_radius or opts.by_box):
        raise ErrorReply("ERR exactly one of BYRADIUS and BYBOX can be specified for %s" % name)
    if opts.any and not opts.count:
        raise ErrorReply("ERR the ANY argument requires COUNT argument")
    if z is None:
        if opts.store is not None:
            _delete_store(ctx, opts.store)
            return 0
        return []
    if opts.count and not opts.sort and not opts.any:
        opts.sort = 1  # COUNT alone means "the closest N"
    found = _find(z, shape, opts.count if opts.any else 0)
    if not found and opts.store is None:
        return []
    returned = len(found) if not opts.count else min(opts.count, len(found))
    if opts.sort:
        # Redis's qsort is glibc's merge sort: stable, like sorted().
        # (reverse=True keeps equal distances in scan order, as -cmp does).
        found.sort(key=lambda f: f[0], reverse=opts.sort == 2)
    found = found[:returned]
    conversion = shape.conversion
    if opts.store is not None:
        return _store_results(ctx, opts, flags, found, conversion)
    extra = opts.withdist + opts.withhash + opts.withcoord
    out = []
    for dist, score, member, lon, lat in found:
        if not extra:
            out.append(member)
            continue
        item = [member]
        if opts.withdist:
            item.append(geohash.fixed4(dist / conversion))
        if opts.withhash:
            item.append(_as_long_long(score))
        if opts.withcoord:
            item.append([_coord(ctx, lon), _coord(ctx, lat)])
        out.append(item)
    return out


def _delete_store(ctx, dst: bytes) -> None:
    db = ctx.db
    if db.delete(dst):
        ctx.server.dirty += 1
        ctx.server.keyspace.notify(db, "g", b"del", dst)


def _store_results(ctx, opts, flags, found, conversion) -> int:
    dst = opts.store
    if not found:
        _delete_store(ctx, dst)
        return 0
    z = ZSet.from_items((member, dist / conversion if opts.storedist else score)
                        for dist, score, member, _, _ in found)
    db = ctx.db
    server = ctx.server
    db.set(dst, z)
    if not _fits_listpack(z.dict, _limits(server)):
        _mark_skiplist(db, dst, z)
    server.dirty += len(found)
    server.keyspace.notify(db, "z", b"geosearchstore" if flags & SEARCH else b"georadiusstore",
                           dst)
    db.signal_ready(dst)
    return len(found)


def _georadius_keys(argv) -> list:
    """The source key, and the last STORE / STOREDIST destination."""
    stored = None
    i = 5
    while i < len(argv):
        if argv[i].lower() in (b"store", b"storedist") and i + 1 < len(argv):
            stored = i + 1
            i += 1
        i += 1
    return [1] if stored is None else [1, stored]


@command("georadius", -6, "write denyoom", keys=K1, key_finder=_georadius_keys, group=G,
         since="3.2.0")
def georadius(ctx, argv):
    return _search(ctx, argv, 1, BY_COORDS)


@command("georadius_ro", -6, "readonly", keys=K1, group=G, since="3.2.10")
def georadius_ro(ctx, argv):
    return _search(ctx, argv, 1, BY_COORDS | NO_STORE)


@command("georadiusbymember", -5, "write denyoom", keys=K1, key_finder=_georadius_keys,
         group=G, since="3.2.0")
def georadiusbymember(ctx, argv):
    return _search(ctx, argv, 1, BY_MEMBER)


@command("georadiusbymember_ro", -5, "readonly", keys=K1, group=G, since="3.2.10")
def georadiusbymember_ro(ctx, argv):
    return _search(ctx, argv, 1, BY_MEMBER | NO_STORE)


@command("geosearch", -7, "readonly", keys=K1, group=G, since="6.2.0")
def geosearch(ctx, argv):
    return _search(ctx, argv, 1, SEARCH)


@command("geosearchstore", -8, "write denyoom", keys=(1, 2, 1), group=G, since="6.2.0")
def geosearchstore(ctx, argv):
    return _search(ctx, argv, 2, SEARCH | SEARCH_STORE)
