"""Time our RDB writer/loader against redis-server SAVE and startup load, same data."""
import os, re, sys, time, random, shutil, tempfile
from collections import deque
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from procs import redis_server
from hakv.common import rdb
from hakv.common.types.zset import ZSet

def best(fn, n=3):
    times = []
    for _ in range(n):
        t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
    return min(times)

def redis_times(workdir, fill, compress="yes"):
    p = redis_server(workdir, None, "--dbfilename", "dump.rdb", "--rdbcompression", compress,
                     "--enable-debug-command", "yes").start()
    c = p.client()
    fill(c)
    save = best(lambda: c.save())
    c.close(); p.stop()
    loads = []
    for _ in range(3):
        p.start()
        m = re.findall(r"DB loaded from disk: ([0-9.]+) seconds", p.output())
        loads.append(float(m[-1]))
        p.stop()
    size = os.path.getsize(os.path.join(workdir, "dump.rdb"))
    return save, min(loads), size

import gc
def our_times(path, data_by_db, compress=True):
    dbs = [(dbid, d, {}) for dbid, d in data_by_db.items()]
    write = best(lambda: rdb.dump_to_file(path, dbs, {"redis-ver": "7.0.15"}, compress=compress))
    def load_into():
        out = {}
        gc.disable()  # as the server does while loading
        try:
            for ev in rdb.load_file(path, into=lambda db: out.setdefault(db, ({}, {}))):
                pass
        finally:
            gc.enable()
    def load_events():
        out = {}
        gc.disable()
        try:
            for ev in rdb.load_file(path):
                if ev.__class__ is rdb.Key:
                    out[ev.key] = ev.value
        finally:
            gc.enable()
    return write, best(load_into), best(load_events), os.path.getsize(path)

def report(name, r, o):
    save, rload, rsize = r
    write, load_into, load_ev, size = o
    print(f"{name}: redis SAVE {save:.3f}s load {rload:.3f}s ({rsize/1e6:.1f} MB) | "
          f"hakv write {write:.3f}s ({write/save:.1f}x) load(into) {load_into:.3f}s ({load_into/rload:.1f}x) "
          f"load(events) {load_ev:.3f}s ({load_ev/rload:.1f}x) ({size/1e6:.1f} MB)", flush=True)

def main():
    tmp = tempfile.mkdtemp()
    try:
        # 1M small strings, as DEBUG POPULATE makes them
        N = 1_000_000
        r = redis_times(os.path.join(tmp, "r1"), lambda c: c.execute_command("DEBUG", "POPULATE", N))
        data = {b"key:%d" % i: b"value:%d" % i for i in range(N)}
        o = our_times(os.path.join(tmp, "o1.rdb"), {0: data})
        report("1M strings", r, o)
        del data

        # mixed dataset
        rng = random.Random(1)
        mixed = {}
        for i in range(100_000):
            mixed[b"str:%d" % i] = (b"%d" % i) if i % 3 == 0 else (b"val-%d" % i) if i % 3 == 1 else (b"lorem ipsum dolor " * 5)
        for i in range(25_000):
            mixed[b"hash:%d" % i] = {b"field%d" % j: b"v%d" % (i * j) for j in range(10)}
            mixed[b"list:%d" % i] = deque(b"e%d" % (i + j) for j in range(10))
            mixed[b"set:%d" % i] = {b"%d" % (i + j) for j in range(10)} if i % 2 else {b"m%d" % (i + j) for j in range(10)}
            z = ZSet()
            for j in range(10): z.add(b"p%d" % j, rng.random() * 100)
            mixed[b"zset:%d" % i] = z
        for i in range(10):
            mixed[b"bighash:%d" % i] = {b"f%d" % j: b"value-%d" % j for j in range(10_000)}
            mixed[b"biglist:%d" % i] = deque(b"item-%d" % j for j in range(10_000))
            mixed[b"bigset:%d" % i] = {b"member-%d" % j for j in range(10_000)}
            z = ZSet()
            for j in range(10_000): z.add(b"player-%d" % j, float(j))
            mixed[b"bigzset:%d" % i] = z
        def fill(c):
            pipe = c.pipeline(transaction=False)
            n = 0
            for k, v in mixed.items():
                if isinstance(v, bytes): pipe.set(k, v)
                elif isinstance(v, deque): pipe.rpush(k, *v)
                elif isinstance(v, dict): pipe.hset(k, mapping=v)
                elif isinstance(v, set): pipe.sadd(k, *v)
                else: pipe.zadd(k, dict(v.items()))
                n += 1
                if n % 2000 == 0: pipe.execute()
            pipe.execute()
        for compress in (True, False):
            r = redis_times(os.path.join(tmp, "r2%s" % compress), fill, "yes" if compress else "no")
            o = our_times(os.path.join(tmp, "o2.rdb"), {0: mixed}, compress)
            report(f"mixed {len(mixed)} keys compress={compress}", r, o)
    finally:
        shutil.rmtree(tmp)

main()
