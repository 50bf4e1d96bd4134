"""Parts of an RDB file decoded ahead of the loader, by a helper process.

Redis stores small hashes, lists, sets and sorted sets as one string each (a
listpack, an intset), LZF-compressed when over 20 bytes.  Decompressing and
decoding those is over half of loading such a dump in pure Python, and the
loader cannot hand it to a thread (the GIL).  But the bytes are all in the
file: a helper process walks the file's records, decompresses every LZF
string and decodes the compact values among them with rdb.py's own decoders
(PREFETCH_DECODERS), and streams the results to the loader with marshal
(unpacked in C); the loader takes them in file order instead of doing the
work -- on another core.  Uncompressed strings are left to the loader (taking
a result costs it about what decoding one does), and a helper that meets no
LZF string in the first MiBs (a dump hakv wrote) stops.

The same helper also computes the file's CRC64 (``checksum_stop``: of its
first that many bytes), a block at a time as its walk goes by, so a load has
one helper process, not two (on 2 cores, the loader keeps one to itself).

Public API (rdb.load_file and the server's startup load use it)::

    ahead = Prefetch.start(fileobj, checksum_stop=None)
                                      # None for a file under MIN_FILE_SIZE or if it fails
    parser = rdb.RdbParser(..., prefetch=ahead)   # fed that file from its first byte
    ...
    ahead.checksum() -> int | None    # once the parser is done: crc64(file[:checksum_stop])
                                      # (waits for it; None if the helper failed)
    ahead.close()                     # in any case
    ahead.missed                      # strings the loader decoded itself

    ahead.take(start, kind) -> (length, value) | MISS   # the parser's side
    ahead.untake()

Exactness: a result names the string it was made from -- its file offset,
its length (the caller compares it with the string it is reading) -- and what
was made of it (kind: the RDB type whose decoder ran, or RAW for a
decompressed LZF string, keyed from its lengths on).  The decoders are
deterministic, so a result that matches is the value the loader would have
made.  Otherwise (the helper is behind, stopped at a record type it does not
walk, died, or a decoder refused the string) the loader does the work
itself, and raises its usual errors.  The helper reads the loader's own open
file (the descriptor is passed on), so both see the same bytes even if the
path is renamed over meanwhile.

Neither waits for the other.  The loader reads what has arrived without
blocking (when nothing has, it goes on alone for a while before looking
again), and each time it fetches a batch it writes its file offset into a
page it shares with the helper.  From that the helper keeps its pace: when
it is behind, it walks without decoding to a little past the loader; with a
short lead it only decompresses (faster, so it gets ahead); with a longer one
it decodes too.

Helper protocol (stdout): batches of a length (4 bytes, little-endian) and
that many bytes of marshal data: (keys, values), two lists, a key being
(file offset, kind) and a value (length, what was made).  Length 0 ends
them; with a checksum asked for, its 8 bytes (little-endian) follow once
computed.  The loader's checksum() writes LOADER_DONE into the shared page:
the helper stops walking and only finishes the checksum.
"""

from __future__ import annotations

import fcntl
import marshal
import mmap
import os
import struct
import subprocess
import sys

from hakv.common import lzf, rdb
from hakv.common.crc64 import crc64

__all__ = ["Prefetch", "MISS", "RAW", "MIN_FILE_SIZE"]

MIN_FILE_SIZE = 8 << 20      # smaller files: not worth a process (~0.1 s of CPU to start)
RAW = rdb.PREFETCH_RAW       # kind of a plain decompressed LZF string
MISS = rdb.PREFETCH_MISS     # take(): not prefetched, do the work
_BATCH_BYTES = 64 << 10      # the helper sends a batch per this many bytes of the file
_HEADER = struct.Struct("<I")
_PROGRESS = struct.Struct("<q")  # the loader's file offset, in the shared page
_PIPE_SIZE = 1 << 20
_F_SETPIPE_SZ = 1031         # fcntl.F_SETPIPE_SZ (Linux)
_RECHECK_AFTER = 256 << 10   # loader: bytes to read alone before looking at the pipe again
_CHECK_EVERY = 32 << 10      # helper: bytes walked between looks at the loader's position
_GIVE_UP_AFTER = 4 << 20     # helper: stop if no LZF string was seen in this many bytes
_LEAD = 1 << 20              # helper behind the loader: resume this far past it
# Helper ahead by less than this: decompress only (faster), so that it gets
# ahead; more, and it decodes too.  (Its lead is bounded by the pipe, ~1 MiB.)
_DECODE_LEAD = 256 << 10
_END_KEY = (-1, -2)      # after a batch's last key: no bounds check on the fast path
_LOADER_DONE = 1 << 62   # in the shared page: the loader needs no more results
_CRC_STEP = 1 << 20      # helper: checksum the file in blocks of this size (lane-sized)
_CRC_MAX_LAG = 8 << 20   # ... and not more than this far behind its walk (~0.1 s of work)


class Prefetch:
    """The loader's side: results arriving from the helper, taken in file order."""

    __slots__ = ("base", "checksum_stop", "_proc", "_fd", "_progress", "_pending", "_keys",
                 "_values", "_i", "_ended", "_broken", "_quiet_until", "missed")

    def __init__(self, proc, progress, checksum_stop: int | None = None):
        self.checksum_stop = checksum_stop  # checksum() covers the file's first bytes up to it
        self._proc = proc
        self._fd = proc.stdout.fileno()
        os.set_blocking(self._fd, False)
        self._progress = progress   # shared with the helper: where the loader is
        self.base = 0               # file offset of the parser's buffer start (set by it)
        self._pending = bytearray() # bytes read from the pipe, not yet a whole batch
        self._keys: list = [_END_KEY]
        self._values: list = []
        self._i = 0
        self._ended = False         # the helper sent its last batch (or failed)
        self._broken = False        # ... it failed: no checksum to expect
        self._quiet_until = -1      # don't poll the pipe before this file offset
        self.missed = 0             # strings the loader had to decode itself

    @classmethod
    def start(cls, fileobj, checksum_stop: int | None = None) -> "Prefetch | None":
        """A helper for the file open as `fileobj` (binary, read from its
        start); with `checksum_stop`, it also computes the CRC64 of the
        file's first that many bytes (see checksum())."""
        progress_fd = -1
        try:
            fd = fileobj.fileno()
            if os.fstat(fd).st_size < MIN_FILE_SIZE:
                return None
            progress_fd = os.memfd_create("hakv-rdb-prefetch")
            os.ftruncate(progress_fd, mmap.PAGESIZE)
            progress = mmap.mmap(progress_fd, mmap.PAGESIZE)
            # -I: nothing from the environment or the cwd (common/types would
            # shadow the stdlib's types); hakv itself is installed.
            proc = subprocess.Popen(
                [sys.executable, "-I", "-m", "hakv.common.rdb_prefetch", str(fd),
                 str(progress_fd), str(-1 if checksum_stop is None else checksum_stop)],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                pass_fds=(fd, progress_fd), start_new_session=True)
        except (OSError, ValueError, AttributeError):
            return None
        finally:
            if progress_fd >= 0:
                os.close(progress_fd)
        try:
            fcntl.fcntl(proc.stdout.fileno(), _F_SETPIPE_SZ, _PIPE_SIZE)
        except OSError:
            pass
        return cls(proc, progress, checksum_stop)

    def take(self, start: int, kind: int):
        """(length, value): what the helper made (`kind`) of the string at
        buffer position `start` (file offset base + start) and how long that
        string was -- the caller checks it -- or MISS."""
        i = self._i
        if self._keys[i] == (self.base + start, kind):
            self._i = i + 1
            return self._values[i]
        return self._take_slow(self.base + start, kind)

    def untake(self) -> None:
        """Put back what take() just returned (the string turned out to be
        cut at the end of the bytes fed so far: the parser asks again)."""
        self._i -= 1

    def _take_slow(self, offset: int, kind: int):
        while True:
            keys, i = self._keys, self._i
            # Results for strings the loader has passed are of no use.
            while keys[i] is not _END_KEY and keys[i][0] < offset:
                i += 1
            self._i = i
            if keys[i] is not _END_KEY:
                if keys[i] == (offset, kind):
                    self._i = i + 1
                    return self._values[i]
                break  # the helper skipped this one (or made something else of it)
            if self._ended or offset < self._quiet_until:
                break
            _PROGRESS.pack_into(self._progress, 0, offset)  # tell the helper
            if not self._next_batch():
                self._quiet_until = offset + _RECHECK_AFTER
                break
        self.missed += 1
        return MISS

    def _next_batch(self) -> bool:
        """Load the next complete batch from the pipe, without blocking."""
        pending = self._pending
        while True:
            want = _PIPE_SIZE
            if len(pending) >= 4:
                total = 4 + _HEADER.unpack_from(pending)[0]
                if total == 4:
                    del pending[:4]  # (what follows is the checksum)
                    self._ended = True
                    return False
                if len(pending) >= total:
                    break
                want = max(want, total - len(pending))
            try:
                chunk = os.read(self._fd, want)
            except BlockingIOError:
                return False
            except OSError:
                self._end()
                return False
            if not chunk:
                self._end()
                return False
            pending += chunk
        with memoryview(pending) as view:
            try:
                keys, values = marshal.loads(view[4:total])
            except (ValueError, EOFError, TypeError):
                keys = values = None
        del pending[:total]
        if keys.__class__ is not list or values.__class__ is not list \
                or len(keys) != len(values):
            self._end()
            return False
        keys.append(_END_KEY)
        self._keys, self._values, self._i = keys, values, 0
        return True

    def _end(self) -> None:
        """The helper died or sent garbage: no more results, nor checksum."""
        self._ended = self._broken = True
        self._pending = bytearray()

    def checksum(self) -> int | None:
        """The CRC64 the helper computed (Prefetch.start's checksum_stop),
        once the loader is done with the results: waits for the helper,
        skipping results not taken.  None if none comes (the helper failed,
        or no checksum was asked for): the caller computes it itself."""
        _PROGRESS.pack_into(self._progress, 0, _LOADER_DONE)  # stop walking
        if self._broken:
            return None
        pending = self._pending
        os.set_blocking(self._fd, True)
        try:
            while True:
                chunk = os.read(self._fd, _PIPE_SIZE)
                if not chunk:
                    break
                pending += chunk
        except OSError:
            return None
        if not self._ended:  # skip the batches the loader did not need
            at = 0
            while len(pending) >= at + 4:
                size = _HEADER.unpack_from(pending, at)[0]
                at += 4 + size
                if size == 0:
                    break
            else:
                return None
            del pending[:at]
            self._ended = True
        if self._proc.wait() != 0 or len(pending) != 8:
            return None
        return int.from_bytes(pending, "little")

    def close(self) -> None:
        proc = self._proc
        self._ended = True
        if proc.poll() is None:
            proc.kill()
        try:
            proc.stdout.close()
        except OSError:
            pass
        proc.wait()
        self._progress.close()


# ---------------------------------------------------------------- the helper


class _Walker:
    """Walks an RDB's records in `buf` (from the start), sending what it
    decodes to `out` in batches."""

    def __init__(self, buf, progress, out, checksum_stop: int = -1):
        self.buf = buf
        self.progress = progress  # the page where the loader says where it is
        self.out = out
        self.crc_stop = checksum_stop  # checksum buf[:crc_stop] (-1: none)
        self.crc = 0
        self.crc_done = 0         # ... the bytes checksummed so far
        self.keys: list = []      # the batch being made: (offset, kind) ...
        self.values: list = []    # ... and (length, what was made of those bytes)
        self.send_at = _BATCH_BYTES
        self.skip_until = 0       # the loader is past this: walk without decoding
        self.compressed = False   # seen an LZF string yet?

    def send(self, pos: int) -> None:
        """Send the batch (the walk is at `pos`)."""
        if self.keys:
            data = marshal.dumps((self.keys, self.values))
            self.out.write(_HEADER.pack(len(data)) + data)
            del self.keys[:], self.values[:]  # (in place: walk() holds them)
        self.send_at = pos + _BATCH_BYTES

    def check_loader(self, pos: int) -> bool | None:
        """Adapt to the loader's pace: if it is past `pos`, skip up to a
        little beyond (walk without decoding: what the loader has passed is of
        no use); with a short lead only decompress (faster), with a long one
        also decode.  Returns whether to decode, None if the loader is done.
        Also checksums the blocks walked past: at once with a long lead (time
        the helper would spend blocked on a full pipe), else later, while
        the results the loader is about to need come first (up to
        _CRC_MAX_LAG behind: the loader waits for the rest at its end)."""
        loader = _PROGRESS.unpack_from(self.progress)[0]
        if loader == _LOADER_DONE:
            return None
        lead = pos - loader
        if lead < 0:
            self.skip_until = pos - lead + _LEAD
        behind = pos - self.crc_done
        if behind >= _CRC_STEP and self.crc_stop >= 0 and (
                lead >= _DECODE_LEAD or behind >= _CRC_MAX_LAG):
            self.checksum_to(pos)
        return lead >= _DECODE_LEAD

    def checksum_to(self, pos: int) -> None:
        """Checksum whole blocks up to `pos` (all up to crc_stop at the end)."""
        buf, crc, done = self.buf, self.crc, self.crc_done
        stop = min(pos, self.crc_stop)
        while done + _CRC_STEP <= stop:
            crc = crc64(buf[done:done + _CRC_STEP], crc)
            done += _CRC_STEP
        if pos >= self.crc_stop:
            crc = crc64(buf[done:self.crc_stop], crc)
            done = self.crc_stop
        self.crc, self.crc_done = crc, done

    def length(self, pos: int) -> tuple[int, int]:
        buf = self.buf
        b = buf[pos]
        if b < 0x40:
            return b, pos + 1
        if b < 0x80:
            return ((b & 0x3F) << 8) | buf[pos + 1], pos + 2
        if b == 0x80:
            return int.from_bytes(buf[pos + 1:pos + 5], "big"), pos + 5
        if b == 0x81:
            return int.from_bytes(buf[pos + 1:pos + 9], "big"), pos + 9
        raise ValueError("length")

    def string(self, pos: int, kind: int = RAW) -> int:
        """Skip the string at pos (returns the position after it); if it is
        LZF-compressed, decompress it, and decode that as `kind` (an RDB type
        with a prefetch decoder) unless kind is RAW.  (An uncompressed
        string is left to the loader: decoding one costs it about what
        taking the result would.)"""
        buf = self.buf
        b = buf[pos]
        if b < 0xC0:
            if b < 0x40:
                return pos + 1 + b
            n, start = self.length(pos)
            return start + n
        if b == 0xC3:
            self.compressed = True
            clen, p = self.length(pos + 1)
            ulen, p = self.length(p)
            stop = p + clen
            if pos >= self.skip_until:
                try:
                    data = lzf.decompress(buf[p:stop], ulen)
                except lzf.LzfError:
                    return stop  # the loader finds it and says so
                if kind == RAW:  # (from the lengths on: what rdb._read_lzf reads)
                    self._add(pos + 1, stop, RAW, data)
                else:
                    self._add(pos, stop, kind, data)
            return stop
        if b == 0xC0:
            return pos + 2
        if b == 0xC1:
            return pos + 3
        if b == 0xC2:
            return pos + 5
        raise ValueError("string")

    def _add(self, start: int, stop: int, kind: int, data: bytes) -> None:
        if kind != RAW:
            try:
                data = rdb.PREFETCH_DECODERS[kind](data)
            except rdb.RdbError:
                return  # refused: the loader finds it and says so
        self.keys.append((start, kind))
        self.values.append((stop - start, data))
        if stop >= self.send_at:
            self.send(stop)

    def walk(self) -> None:
        """Until EOF or a record this walk does not know."""
        buf, string, length = self.buf, self.string, self.length
        end = len(buf)
        decoders = rdb.PREFETCH_DECODERS
        keys, values = self.keys, self.values
        decompress, lzf_error, rdb_error = lzf.decompress, lzf.LzfError, rdb.RdbError
        by_count = {rdb.T_LIST: 1, rdb.T_SET: 1, rdb.T_HASH: 2, rdb.T_LIST_QUICKLIST: 1}
        t_string, quicklist_2, zset_2, zset_1 = (rdb.T_STRING, rdb.T_LIST_QUICKLIST_2,
                                                 rdb.T_ZSET_2, rdb.T_ZSET)
        skip_until = 0
        check_at = 0
        decode_blobs = True
        pos = 9  # after "REDIS" and the version
        while pos < end:
            t = buf[pos]
            if t >= 0xF4:
                pos = self.opcode(t, pos + 1)
                if pos < 0:
                    return
                continue
            if pos >= check_at:
                if pos > _GIVE_UP_AFTER and not self.compressed:
                    return  # a dump saved without LZF (as hakv's): nothing to do
                decode_blobs = self.check_loader(pos)
                if decode_blobs is None:
                    return  # the loader is done
                skip_until = self.skip_until
                check_at = pos + _CHECK_EVERY
            b = buf[pos + 1]  # the key
            pos = pos + 2 + b if b < 0x40 else string(pos + 1)
            if t == t_string:
                b = buf[pos]
                if b < 0x40:
                    pos += 1 + b
                elif b == 0xC2:
                    pos += 5
                else:
                    pos = string(pos)
                continue
            if t == quicklist_2:
                count, pos = length(pos)
                if count == 1 and buf[pos] == 2:  # one listpack node
                    pos += 1
                else:
                    for _ in range(count):
                        pos = string(length(pos)[1])
                    continue
            decode = decoders.get(t)
            if decode is not None:
                # The common case inline: an LZF string with short lengths.
                if buf[pos] != 0xC3:
                    pos = string(pos)
                    continue
                self.compressed = True
                if pos < skip_until or buf[pos + 1] >= 0x80:
                    pos = string(pos, t if decode_blobs else RAW)
                    continue
                b = buf[pos + 1]
                if b < 0x40:
                    clen, p = b, pos + 2
                else:
                    clen, p = ((b & 0x3F) << 8) | buf[pos + 2], pos + 3
                b = buf[p]
                if b < 0x40:
                    ulen, p = b, p + 1
                elif b < 0x80:
                    ulen, p = ((b & 0x3F) << 8) | buf[p + 1], p + 2
                else:
                    pos = string(pos, t)
                    continue
                stop = p + clen
                try:
                    value = decompress(buf[p:stop], ulen)
                    if decode_blobs:
                        value = decode(value)
                except (lzf_error, rdb_error):
                    pos = stop
                    continue  # the loader finds it and says so
                if decode_blobs:
                    keys.append((pos, t))
                    values.append((stop - pos, value))
                else:  # (from the lengths on: what rdb._read_lzf reads)
                    keys.append((pos + 1, RAW))
                    values.append((stop - pos - 1, value))
                pos = stop
                if stop >= self.send_at:
                    self.send(stop)
            elif t in by_count:
                count, pos = length(pos)
                for _ in range(count * by_count[t]):
                    pos = string(pos)
            elif t == zset_2:
                count, pos = length(pos)
                for _ in range(count):
                    pos = string(pos) + 8
            elif t == zset_1:
                count, pos = length(pos)
                for _ in range(count):
                    pos = string(pos)
                    n = buf[pos]
                    pos += 1 if n >= 253 else 1 + n
            else:
                return  # streams, modules: the loader refuses them anyway

    def opcode(self, t: int, pos: int) -> int:
        """Skip the rest of a non-key record; -1 to stop (EOF, or a record
        this walk does not know)."""
        length, string = self.length, self.string
        if t == rdb.OP_EXPIRETIME_MS:
            return pos + 8
        if t == rdb.OP_EXPIRETIME:
            return pos + 4
        if t == rdb.OP_FREQ:
            return pos + 1
        if t == rdb.OP_SELECTDB or t == rdb.OP_IDLE:
            return length(pos)[1]
        if t == rdb.OP_RESIZEDB:
            return length(length(pos)[1])[1]
        if t == rdb.OP_AUX:
            return string(string(pos))
        if t == rdb.OP_FUNCTION2:
            return string(pos)
        if t == rdb.OP_SLOT_INFO:
            for _ in range(3):
                pos = length(pos)[1]
            return pos
        return -1  # EOF, module AUX data, old function records


def _serve(fd: int, progress_fd: int, checksum_stop: int) -> int:
    import gc

    gc.disable()
    out = os.fdopen(1, "wb", buffering=0)
    try:
        size = os.fstat(fd).st_size
        buf = mmap.mmap(fd, size, prot=mmap.PROT_READ)
        progress = mmap.mmap(progress_fd, mmap.PAGESIZE, prot=mmap.PROT_READ)
        if checksum_stop > size:
            return 1  # the file is shorter than announced: no checksum
        walker = _Walker(buf, progress, out, checksum_stop)
        try:
            walker.walk()
        except (ValueError, IndexError, OverflowError):
            pass  # a record this walk cannot follow: the loader goes on alone
        walker.send(0)
        out.write(_HEADER.pack(0))
        if checksum_stop >= 0:
            walker.checksum_to(checksum_stop)
            out.write(walker.crc.to_bytes(8, "little"))
    except BrokenPipeError:
        pass  # the loader finished or gave up
    return 0


if __name__ == "__main__":
    sys.exit(_serve(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])))
